//! The real binary: `RunningServer` (a started server and its log lines,
//! dereferencing to a `TestClient`), and one-shot command-line runs.

use std::io::{BufRead, BufReader, Write};
use std::ops::Deref;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{TestClient, SETUP_TOKEN};

/// The environment of the binary on a free port with its data in
/// `data_dir`, waiting for setup with `SETUP_TOKEN`.
pub fn server_vars(data_dir: &str) -> [(&'static str, &str); 3] {
    [
        ("BIND", "127.0.0.1:0"),
        ("DATA_DIR", data_dir),
        ("INITIAL_SETUP_TOKEN", SETUP_TOKEN),
    ]
}

/// Runs the binary with `args`, `stdin` as its input, and waits for it.
pub fn run_cli(dir: &std::path::Path, vars: &[(&str, &str)], args: &[&str], stdin: &str) -> Output {
    let mut child = portico_command(dir, vars)
        .args(args)
        .stdin(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Runs the binary in `cwd` (at most 20 s); returns exit code and stderr.
pub fn run_to_exit(cwd: &std::path::Path, vars: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut child = portico_command(cwd, vars).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the server started with {vars:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The real binary, started in `cwd` with exactly `vars` as its environment.
/// It gets SIGKILL when the thread that started it ends (the test's), so a
/// test process that is killed leaves no server behind.
pub fn portico_command(cwd: &std::path::Path, vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_portico"));
    // SAFETY: prctl and getppid are async-signal-safe, as pre_exec requires.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() == 1 {
                return Err(std::io::Error::other("the test process has ended"));
            }
            Ok(())
        });
    }
    command
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("RUST_LOG", "info")
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// A running binary and the lines it has logged so far; it is killed when
/// dropped.
pub struct RunningServer {
    pub child: Child,
    /// A browser for this server; `RunningServer` dereferences to it.
    pub http: TestClient,
    pub lines: mpsc::Receiver<String>,
    /// The lines read while waiting for the address.
    pub start_log: String,
}

impl Deref for RunningServer {
    type Target = TestClient;

    fn deref(&self) -> &TestClient {
        &self.http
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RunningServer {
    /// Kills the server with SIGKILL (no chance to clean up) and reaps it.
    pub fn kill(&mut self) {
        self.child.kill().expect("the server was running");
        self.child.wait().unwrap();
    }

    /// Whether the process is still running (it has not exited or died).
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Everything logged up to now.
    pub fn drain_log(&self) -> String {
        let mut log = self.start_log.clone();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            log.push_str(&line);
            log.push('\n');
        }
        log
    }
}

/// Starts the binary and waits (at most 30 s) for its "listening" line.
pub fn start_server(cwd: &std::path::Path, vars: &[(&str, &str)]) -> RunningServer {
    start_server_with_args(cwd, vars, &[])
}

/// Starts the binary with command-line `args` and waits for its address.
pub fn start_server_with_args(
    cwd: &std::path::Path,
    vars: &[(&str, &str)],
    args: &[&str],
) -> RunningServer {
    launch_server(cwd, vars, args).listening()
}

/// A binary started but not yet listening: several can start at once
/// (`launch_server` each, then `listening` each).
pub struct LaunchedServer {
    child: Child,
    lines: mpsc::Receiver<String>,
}

/// Starts the binary with `args` without waiting for it.
pub fn launch_server(
    cwd: &std::path::Path,
    vars: &[(&str, &str)],
    args: &[&str],
) -> LaunchedServer {
    let mut child = portico_command(cwd, vars)
        .args(args)
        .spawn()
        .expect("the binary starts");
    let (sender, lines) = mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let sender = sender.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
    }
    LaunchedServer { child, lines }
}

impl LaunchedServer {
    /// Waits (at most 30 s) for the server's "listening" line.
    pub fn listening(self) -> RunningServer {
        let LaunchedServer { mut child, lines } = self;
        let mut start_log = String::new();
        let marker = "Portico is listening on ";
        let address = loop {
            let line = match lines.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => line,
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "the server logs its address within 30 s, and does not exit:\n{start_log}"
                    );
                }
            };
            start_log.push_str(&line);
            start_log.push('\n');
            if let Some(rest) = line.split(marker).nth(1) {
                // Text lines end the address with a space, JSON lines with a quote.
                break rest
                    .split(|c: char| c.is_whitespace() || c == '"')
                    .next()
                    .unwrap()
                    .to_owned();
            }
        };
        RunningServer {
            child,
            http: TestClient::new(address),
            lines,
            start_log,
        }
    }
}

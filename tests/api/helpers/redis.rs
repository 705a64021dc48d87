//! `TestRedis`: a throwaway `redis-server` of one test, on a unix socket in
//! a temporary directory (`--port 0`: no TCP port). It persists nothing
//! (`--save '' --appendonly no`) unless started with `persistent()`, which
//! writes an append-only file (as the compose file's Redis does) so that a
//! `stop()` and `restart()` on the same socket keeps what it held.
//! The server runs under a watchdog shell in its own process group that
//! reads orders from a pipe only this process holds: when the value is
//! dropped or the test process ends, however it ends, the pipe closes and
//! the watchdog stops the server and removes the directory.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const WATCHDOG: &str = r#"
dir="$1"; shift
mkdir -p "$dir"
server=
up() {
  redis-server --port 0 --unixsocket "$dir/redis.sock" --unixsocketperm 700 \
    --dir "$dir" --logfile "$dir/redis.log" "$@" </dev/null >>"$dir/redis.out" 2>&1 &
  server=$!
  echo up
}
down() {
  [ -n "$server" ] && kill "$server" 2>/dev/null
  [ -n "$server" ] && wait "$server"
  server=
}
up "$@"
while read -r order; do
  case "$order" in
    stop) down; echo down ;;
    start) up "$@" ;;
  esac
done
down
rm -rf "$dir"
"#;

/// A `redis-server` for one test; see the module's documentation.
pub struct TestRedis {
    dir: PathBuf,
    watchdog: Child,
    answers: BufReader<ChildStdout>,
}

impl TestRedis {
    /// A server that keeps nothing: a restart starts empty.
    pub fn start() -> Self {
        Self::with_args(&["--save", "", "--appendonly", "no"])
    }

    /// A server with an append-only file written at every command, so that
    /// what it acknowledged survives `stop()` and `restart()`.
    pub fn persistent() -> Self {
        Self::with_args(&[
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ])
    }

    fn with_args(args: &[&str]) -> Self {
        let installed = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        assert!(
            installed,
            "the several-instances tests need redis-server on the PATH: \
             `.ci/run` installs it (Debian: apt-get install redis-server)"
        );
        let dir = std::env::temp_dir().join(format!(
            "portico-test-redis-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let mut watchdog = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("portico-test-redis")
            .arg(&dir)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("cannot start the test Redis's watchdog shell");
        let answers = BufReader::new(watchdog.stdout.take().unwrap());
        let mut redis = Self {
            dir,
            watchdog,
            answers,
        };
        redis.expect_answer("up");
        redis.wait_until_ready();
        redis
    }

    /// `unix:///…/redis.sock`: the same address across restarts.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("redis.sock")
    }

    /// Stops the server (SIGTERM, as an operator or an orchestrator would)
    /// and waits until it has exited.
    pub fn stop(&mut self) {
        self.order("stop");
        self.expect_answer("down");
    }

    /// Starts the server again on the same socket and waits until it answers.
    pub fn restart(&mut self) {
        self.order("start");
        self.expect_answer("up");
        self.wait_until_ready();
    }

    /// Runs `redis-cli` against this server and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .arg("-s")
            .arg(self.socket())
            .args(args)
            .output()
            .expect("redis-cli runs");
        assert!(output.status.success(), "redis-cli {args:?}: {output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn order(&mut self, order: &str) {
        let stdin = self.watchdog.stdin.as_mut().expect("the watchdog's pipe");
        writeln!(stdin, "{order}").expect("the watchdog reads its orders");
        stdin.flush().unwrap();
    }

    fn expect_answer(&mut self, expected: &str) {
        let mut line = String::new();
        self.answers
            .read_line(&mut line)
            .expect("the watchdog answers");
        assert_eq!(line.trim(), expected, "the test Redis's watchdog");
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let answered = redis::Client::open(self.url())
                .and_then(|client| client.get_connection())
                .and_then(|mut conn| redis::cmd("PING").query::<String>(&mut conn));
            if answered.is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
        panic!("the test Redis did not answer within 20 s; its log:\n{log}");
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        drop(self.watchdog.stdin.take());
        let _ = self.watchdog.wait();
    }
}

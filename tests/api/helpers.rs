use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use portico::config::Settings;
use portico::startup::Application;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tempfile::TempDir;

pub const ADMIN_KEY: &str = "admin-0123456789abcdef0123456789abcdef";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    #[allow(dead_code)] // read by the dashboard tests (issue 3)
    pub data_dir: TempDir,
}

fn init_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        portico::telemetry::init("debug");
    }
}

/// Starts Portico on 127.0.0.1, port 0, with the given variables.
pub async fn spawn_app(vars: &[(&str, &str)]) -> TestApp {
    spawn_app_on("127.0.0.1:0", vars).await
}

pub async fn spawn_app_on(bind: &str, vars: &[(&str, &str)]) -> TestApp {
    init_logging();
    let data_dir = tempfile::tempdir().expect("temporary data dir");
    let mut map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    map.insert("BIND".into(), bind.into());
    map.insert("DATA_DIR".into(), data_dir.path().display().to_string());
    let settings = Settings::from_vars(&map).expect("test settings are valid");
    let app = Application::build(settings).await.expect("the app starts");
    let address = match app.address() {
        std::net::SocketAddr::V4(v4) => format!("http://{v4}"),
        std::net::SocketAddr::V6(v6) => format!("http://[{}]:{}", v6.ip(), v6.port()),
    };
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: test_client(),
        data_dir,
    }
}

pub fn test_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a reqwest client")
}

pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .headers(headers(pairs))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn me(&self, pairs: &[(&str, &str)]) -> reqwest::Response {
        self.get("/api/me", pairs).await
    }

    /// `GET /api/me` with `x-api-key`, returning the status and JSON body.
    pub async fn me_with_key(&self, key: &str) -> (u16, serde_json::Value) {
        let response = self.me(&[("x-api-key", key)]).await;
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON body"))
    }
}

/// Asserts the SPEC §4 error shape and returns the body.
pub async fn assert_error(
    response: reqwest::Response,
    status: u16,
    code: &str,
) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status, "status for {code}");
    let body: serde_json::Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["code"], code, "body: {body}");
    assert!(body["error"].is_string(), "body: {body}");
    body
}

/// The real binary, started in `cwd` with exactly `vars` as its environment.
pub fn portico_command(cwd: &std::path::Path, vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_portico"));
    command
        .current_dir(cwd)
        .env_clear()
        .env("RUST_LOG", "info")
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// A running binary and the lines it has logged so far.
pub struct RunningServer {
    pub child: Child,
    pub address: String,
    pub lines: mpsc::Receiver<String>,
    /// The lines read while waiting for the address.
    pub start_log: String,
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RunningServer {
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
    let mut child = portico_command(cwd, vars)
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
    drop(sender);
    let mut server = RunningServer {
        child,
        address: String::new(),
        lines,
        start_log: String::new(),
    };
    let marker = "Portico is listening on ";
    while server.address.is_empty() {
        let line = server
            .lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the server logs its address within 30 s, and does not exit");
        if let Some(rest) = line.split(marker).nth(1) {
            server.address = rest.split_whitespace().next().unwrap().to_owned();
        }
        server.start_log.push_str(&line);
        server.start_log.push('\n');
    }
    server
}

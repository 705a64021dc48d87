use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use std::sync::Arc;

use actix_web::dev::ServerHandle;
use portico::auth::hashing::Hasher;
use portico::auth::session::SessionLimits;
use portico::config::Settings;
use portico::jobs::{Step, Worker};
use portico::startup::Application;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tempfile::TempDir;

pub const ADMIN_KEY: &str = "admin-0123456789abcdef0123456789abcdef";

pub const SETUP_TOKEN: &str = "test-setup-token-0123456789";
pub const USERNAME: &str = "owner";
pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub cookies: Arc<Jar>,
    pub data_dir: TempDir,
    pub hasher: Arc<Hasher>,
    /// Runs the next job (`run_job`); the only worker when jobs run by hand.
    pub jobs: Worker,
    vars: HashMap<String, String>,
    limits: SessionLimits,
    jobs_by_hand: Option<Duration>,
    server: ServerHandle,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

fn init_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        if let Some(guard) = portico::telemetry::init("debug") {
            std::mem::forget(guard);
        }
    }
}

/// Starts Portico on 127.0.0.1, port 0, with the given variables. Unless
/// given, `PUBLIC_URL` is the server's real address and the setup token is
/// `SETUP_TOKEN`.
pub async fn spawn_app(vars: &[(&str, &str)]) -> TestApp {
    spawn_app_on("127.0.0.1:0", vars).await
}

pub async fn spawn_app_on(bind: &str, vars: &[(&str, &str)]) -> TestApp {
    spawn_app_with_limits(bind, vars, SessionLimits::default()).await
}

/// Like `spawn_app_on`, with session limits no variable can set.
pub async fn spawn_app_with_limits(
    bind: &str,
    vars: &[(&str, &str)],
    limits: SessionLimits,
) -> TestApp {
    spawn(bind, vars, limits, None).await
}

/// An app whose jobs run only when the test calls `run_job` (no workers),
/// with leases of `lease`: tests step the queue instead of polling it.
pub async fn spawn_app_with_jobs_by_hand(vars: &[(&str, &str)], lease: Duration) -> TestApp {
    spawn("127.0.0.1:0", vars, SessionLimits::default(), Some(lease)).await
}

async fn spawn(
    bind: &str,
    vars: &[(&str, &str)],
    limits: SessionLimits,
    jobs_by_hand: Option<Duration>,
) -> TestApp {
    init_logging();
    let data_dir = tempfile::tempdir().expect("temporary data dir");
    let listener = std::net::TcpListener::bind(bind).expect("a free port");
    let address = match listener.local_addr().unwrap() {
        std::net::SocketAddr::V4(v4) => format!("http://{v4}"),
        std::net::SocketAddr::V6(v6) => format!("http://[{}]:{}", v6.ip(), v6.port()),
    };
    let mut map: HashMap<String, String> = HashMap::from([
        ("PUBLIC_URL".to_owned(), address.clone()),
        ("INITIAL_SETUP_TOKEN".to_owned(), SETUP_TOKEN.to_owned()),
    ]);
    map.insert("DATA_DIR".into(), data_dir.path().display().to_string());
    map.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let (server, task, hasher, jobs) = start(&map, limits, jobs_by_hand, listener).await;
    let cookies = Arc::new(Jar::default());
    TestApp {
        address,
        client: client_with(cookies.clone()),
        cookies,
        data_dir,
        hasher,
        jobs,
        vars: map,
        limits,
        jobs_by_hand,
        server,
        task: Some(task),
    }
}

async fn start(
    vars: &HashMap<String, String>,
    limits: SessionLimits,
    jobs_by_hand: Option<Duration>,
    listener: std::net::TcpListener,
) -> (
    ServerHandle,
    tokio::task::JoinHandle<std::io::Result<()>>,
    Arc<Hasher>,
    Worker,
) {
    let mut vars = vars.clone();
    vars.insert("BIND".into(), listener.local_addr().unwrap().to_string());
    let mut settings = Settings::from_vars(&vars).expect("test settings are valid");
    settings.session_limits = limits;
    if let Some(lease) = jobs_by_hand {
        settings.start_job_workers = false;
        settings.job_lease = lease;
    }
    let app = Application::build_on(settings, listener)
        .await
        .expect("the app starts");
    let handle = app.handle();
    let hasher = app.hasher();
    let jobs = app.job_worker();
    (handle, tokio::spawn(app.run_until_stopped()), hasher, jobs)
}

impl TestApp {
    /// Stops the server gracefully and starts a new one on the same data
    /// directory and port; cookies are kept.
    pub async fn restart(&mut self) {
        self.restart_with(|_| {}).await;
    }

    /// Restarts with `edit` applied to the data directory while stopped.
    pub async fn restart_with(&mut self, edit: impl FnOnce(&TestApp)) {
        self.server.stop(true).await;
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        edit(self);
        let port_addr = self.address.trim_start_matches("http://").to_owned();
        let listener = std::net::TcpListener::bind(&port_addr).expect("the same port again");
        let (server, task, hasher, jobs) =
            start(&self.vars, self.limits, self.jobs_by_hand, listener).await;
        self.server = server;
        self.task = Some(task);
        self.hasher = hasher;
        self.jobs = jobs;
    }

    /// Restarts with some variables changed (an operator editing `.env`).
    pub async fn restart_with_vars(&mut self, vars: &[(&str, &str)]) {
        for (name, value) in vars {
            self.vars.insert((*name).to_owned(), (*value).to_owned());
        }
        self.restart().await;
    }

    /// The status of a login from a new client.
    pub async fn fresh_login_status(&self, password: &str) -> u16 {
        login_at(&self.fresh_client(), &self.address, password)
            .await
            .status()
            .as_u16()
    }

    pub fn data_file(&self, name: &str) -> std::path::PathBuf {
        self.data_dir.path().join(name)
    }

    /// A new client with no cookies, for a second browser.
    pub fn fresh_client(&self) -> reqwest::Client {
        test_client()
    }

    /// The session cookie the client holds, as a `Cookie` header value.
    pub fn session_cookie(&self) -> Option<String> {
        let url = self.address.parse().unwrap();
        let header = self.cookies.cookies(&url)?;
        header
            .to_str()
            .unwrap()
            .split("; ")
            .find(|c| c.starts_with("portico_session="))
            .map(str::to_owned)
    }

    /// POSTs a form as the dashboard's own pages do (same `Origin`).
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("origin", &self.address)
            .form(fields)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn setup(&self) -> reqwest::Response {
        self.post_form("/setup", &setup_fields(SETUP_TOKEN)).await
    }

    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.post_form("/login", &[("username", username), ("password", password)])
            .await
    }

    /// Creates the user (which logs in) and returns the CSRF token.
    pub async fn setup_and_login(&self) -> String {
        let response = self.setup().await;
        assert_eq!(response.status(), 303, "setup succeeds");
        self.csrf_token().await
    }

    pub async fn page(&self, path: &str) -> (u16, String) {
        let response = self.get(path, &[]).await;
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    pub async fn csrf_token(&self) -> String {
        let (status, html) = self.page("/dashboard/security").await;
        assert_eq!(status, 200, "logged in");
        csrf_in(&html)
    }

    /// Generates a key on Account Security and returns its plaintext.
    pub async fn generate_key(&self, csrf: &str, name: &str, role: &str, expiry: &str) -> String {
        let (status, html) = generate_key_at(&self.client, &self.address, csrf, name, role, expiry)
            .await
            .expect("the request is answered");
        assert_eq!(status, 303, "{html}");
        find_key(&html).expect("the new key is on the page")
    }
}

/// Sends the generate-key form as `client` (Origin `base`) and, when it
/// redirects, follows to the page that shows the key once. Returns the
/// form's status and the final page.
pub async fn generate_key_at(
    client: &reqwest::Client,
    base: &str,
    csrf: &str,
    name: &str,
    role: &str,
    expiry: &str,
) -> reqwest::Result<(u16, String)> {
    let response = client
        .post(format!("{base}/dashboard/security/keys"))
        .header("origin", base)
        .form(&[
            ("csrf_token", csrf),
            ("name", name),
            ("role", role),
            ("expiry", expiry),
        ])
        .send()
        .await?;
    let status = response.status().as_u16();
    let Some(location) = response.headers().get("location").cloned() else {
        return Ok((status, response.text().await?));
    };
    let page = client
        .get(format!("{base}{}", location.to_str().unwrap()))
        .send()
        .await?;
    Ok((status, page.text().await?))
}

/// The CSRF token of a logged-in page.
pub fn csrf_in(html: &str) -> String {
    extract(html, "name=\"csrf_token\" value=\"", "\"").expect("a CSRF token")
}

/// The CSRF token `client`'s session holds on the server at `base`.
pub async fn csrf_at(client: &reqwest::Client, base: &str) -> String {
    let page = client
        .get(format!("{base}/dashboard/security"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "logged in");
    csrf_in(&page.text().await.unwrap())
}

/// The text between `start` and the next `end`.
pub fn extract(html: &str, start: &str, end: &str) -> Option<String> {
    let from = html.find(start)? + start.len();
    let len = html[from..].find(end)?;
    Some(html[from..from + len].to_owned())
}

/// The first `ptk_<id>_<secret>` on a page.
pub fn find_key(html: &str) -> Option<String> {
    let start = html.find("ptk_")?;
    let key: String = html[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (key.len() > 50).then_some(key)
}

fn client_with(cookies: Arc<Jar>) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_provider(cookies)
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .expect("a reqwest client")
}

pub fn test_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
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

/// The setup form creating the owner with `token`.
pub fn setup_fields(token: &str) -> [(&'static str, &str); 4] {
    [
        ("token", token),
        ("username", USERNAME),
        ("password", PASSWORD),
        ("confirm", PASSWORD),
    ]
}

/// A password login of the owner from `client`, as the login page at
/// `base` sends it.
pub async fn login_at(client: &reqwest::Client, base: &str, password: &str) -> reqwest::Response {
    client
        .post(format!("{base}/login"))
        .header("origin", base)
        .form(&[("username", USERNAME), ("password", password)])
        .send()
        .await
        .unwrap()
}

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

/// A process's output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The real binary, started in `cwd` with exactly `vars` as its environment.
pub fn portico_command(cwd: &std::path::Path, vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_portico"));
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
    /// Registers `path` as a workspace with the admin key; returns its id.
    pub async fn register_workspace(&self, path: &std::path::Path) -> String {
        let response = test_client()
            .post(format!("{}/api/workspaces", self.address))
            .header("x-api-key", ADMIN_KEY)
            .json(&serde_json::json!({"name": "w", "path": path}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let workspace: serde_json::Value = response.json().await.unwrap();
        workspace["id"].as_str().unwrap().to_owned()
    }

    /// Queues a question with `key`; returns the job id.
    pub async fn ask(&self, key: &str, workspace_id: &str, question: &str) -> String {
        let response = test_client()
            .post(format!("{}/api/ask", self.address))
            .header("x-api-key", key)
            .json(&serde_json::json!({"workspaceId": workspace_id, "question": question}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        let queued: serde_json::Value = response.json().await.unwrap();
        queued["jobId"].as_str().unwrap().to_owned()
    }

    /// Creates the dashboard user through `/setup` (with `origin` as the
    /// `Origin` header); returns the logged-in client.
    pub async fn setup(&self, origin: &str, password: &str) -> reqwest::Client {
        let client = test_client();
        let response = client
            .post(format!("{}/setup", self.address))
            .header("origin", origin)
            .form(&[
                ("token", SETUP_TOKEN),
                ("username", USERNAME),
                ("password", password),
                ("confirm", password),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303, "setup succeeds");
        client
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
            // Text lines end the address with a space, JSON lines with a quote.
            server.address = rest
                .split(|c: char| c.is_whitespace() || c == '"')
                .next()
                .unwrap()
                .to_owned();
        }
        server.start_log.push_str(&line);
        server.start_log.push('\n');
    }
    server
}

/// Runs git in `dir`, panicking on failure.
pub fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A git repository on branch `main` whose `src/token_bucket.rs` holds the
/// answer to questions about refilling tokens, a git-ignored file that
/// would match too, and a branch `feature` with one more file.
pub fn answer_repo() -> TempDir {
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(
        root.join("src/token_bucket.rs"),
        "/// Refills the token bucket of a client.\n\
         pub fn refill_token_bucket(bucket: &mut TokenBucket, elapsed_secs: u64) {\n\
         \x20   let refill = elapsed_secs * bucket.refill_per_second;\n\
         \x20   bucket.tokens = (bucket.tokens + refill).min(bucket.capacity);\n\
         }\n",
    )
    .unwrap();
    std::fs::write(
        root.join("src/main.rs"),
        "fn main() {\n    println!(\"hello\");\n}\n",
    )
    .unwrap();
    std::fs::write(root.join("README.md"), "# Demo\n\nA demo project.\n").unwrap();
    std::fs::write(root.join(".gitignore"), "ignored_notes.txt\n").unwrap();
    std::fs::write(
        root.join("ignored_notes.txt"),
        "refill token bucket refill token bucket refill token bucket\n",
    )
    .unwrap();
    git(root, &["init", "--quiet"]);
    git(root, &["add", "."]);
    git(root, &["commit", "--quiet", "-m", "initial"]);
    git(root, &["checkout", "--quiet", "-b", "feature"]);
    std::fs::write(
        root.join("src/zebra_feature.rs"),
        "pub fn gallop_zebra_feature() -> &'static str {\n    \"zebras gallop on the feature branch\"\n}\n",
    )
    .unwrap();
    git(root, &["add", "."]);
    git(root, &["commit", "--quiet", "-m", "feature"]);
    git(root, &["checkout", "--quiet", "main"]);
    repo
}

impl TestApp {
    pub async fn post_json(
        &self,
        path: &str,
        key: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.fresh_client()
            .post(self.url(path))
            .header("x-api-key", key)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get_json(&self, path: &str, key: &str) -> (u16, serde_json::Value) {
        let response = self
            .fresh_client()
            .get(self.url(path))
            .header("x-api-key", key)
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// Registers `path` as a workspace with the admin key; returns its id.
    pub async fn register_workspace(&self, path: &std::path::Path) -> String {
        let body = serde_json::json!({"name": "demo", "path": path});
        let response = self.post_json("/api/workspaces", ADMIN_KEY, &body).await;
        assert_eq!(response.status(), 201);
        let workspace: serde_json::Value = response.json().await.unwrap();
        workspace["id"].as_str().unwrap().to_owned()
    }

    /// Queues a question; returns the job id.
    pub async fn ask(&self, key: &str, body: serde_json::Value) -> String {
        let response = self.post_json("/api/ask", key, &body).await;
        assert_eq!(response.status(), 202);
        let answer: serde_json::Value = response.json().await.unwrap();
        answer["jobId"].as_str().unwrap().to_owned()
    }

    /// Runs the next job to its end (`spawn_app_with_jobs_by_hand`).
    pub async fn run_job(&self) -> Step {
        self.jobs.run_one().await.expect("the job store works")
    }

    /// Polls a job until it is completed or failed (at most 60 s).
    pub async fn wait_for_job(&self, key: &str, id: &str) -> serde_json::Value {
        wait_for_job_at(&self.address, key, id).await
    }
}

/// `GET /api/jobs/{id}` on `base`; a job that is not there (a lost job)
/// fails the test at once.
pub async fn job_at(base: &str, key: &str, id: &str) -> serde_json::Value {
    let response = test_client()
        .get(format!("{base}/api/jobs/{id}"))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(status, 200, "job {id} is not there: {body}");
    body
}

/// Polls `GET /api/jobs/{id}` on `base` until the job is finished.
pub async fn wait_for_job_at(base: &str, key: &str, id: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let job = job_at(base, key, id).await;
        if job["status"] == "completed" || job["status"] == "failed" {
            return job;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "job {id} did not finish: {job}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A raw HTTP/1.1 request to `address` (`http://host:port`) that closes
/// its connection after the answer.
pub fn raw_request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Vec<u8> {
    let host = address.trim_start_matches("http://");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    request.into_bytes()
}

/// A raw form POST as the dashboard's pages send it (same `Origin`).
pub fn raw_form(
    address: &str,
    path: &str,
    headers: &[(&str, &str)],
    fields: &[(&str, &str)],
) -> Vec<u8> {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let mut all = vec![
        ("Origin", address),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    all.extend_from_slice(headers);
    raw_request(address, "POST", path, &all, &body)
}

/// An answer read off a raw connection.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl RawAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Sends every request on its own connection at the same moment, as a
/// barrier would: each is written but for its last byte, then the last
/// bytes go out together, in order (so the last request is released last).
/// Returns the answers in order.
pub async fn simultaneously(address: &str, requests: &[Vec<u8>]) -> Vec<RawAnswer> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = address.trim_start_matches("http://");
    let mut streams = Vec::with_capacity(requests.len());
    for request in requests {
        let mut stream = tokio::net::TcpStream::connect(host)
            .await
            .expect("connects");
        stream.set_nodelay(true).unwrap();
        stream
            .write_all(&request[..request.len() - 1])
            .await
            .unwrap();
        streams.push(stream);
    }
    // Every request is now complete but for one byte.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (stream, request) in streams.iter_mut().zip(requests) {
        stream
            .write_all(&request[request.len() - 1..])
            .await
            .unwrap();
    }
    let answers = streams.into_iter().map(|mut stream| async move {
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(120), stream.read_to_end(&mut raw))
            .await
            .expect("answered within 2 minutes")
            .expect("read the answer");
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        RawAnswer {
            status: head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            head: head.to_owned(),
            body: body.to_owned(),
        }
    });
    futures_util::future::join_all(answers).await
}

/// The TOTP code (RFC 6238: SHA-1, 6 digits, 30 s) of the base32 `secret`
/// at `unix_time`, computed independently of Portico's own code path.
pub fn totp_code(secret: &str, unix_time: u64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret).expect("a base32 secret");
    totp_rs::Builder::new()
        .with_secret(secret)
        .with_account_name("test")
        .build()
        .expect("a valid TOTP")
        .generate(unix_time)
        .to_string()
}

/// The TOTP code `steps` time steps from now.
pub fn totp_code_in(secret: &str, steps: i64) -> String {
    let now = chrono::Utc::now().timestamp() + steps * 30;
    totp_code(secret, u64::try_from(now).unwrap())
}

//! `TestApp`: Portico started in-process on port 0 with a fresh data
//! directory, restartable on the same port and data.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use portico::auth::hashing::Hasher;
use portico::auth::session::SessionLimits;
use portico::config::Settings;
use portico::jobs::{Step, Worker};
use portico::startup::Application;
use tempfile::TempDir;

use super::{TestClient, SETUP_TOKEN};

pub struct TestApp {
    /// The browser the test drives; `TestApp` dereferences to it.
    pub http: TestClient,
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

impl Deref for TestApp {
    type Target = TestClient;

    fn deref(&self) -> &TestClient {
        &self.http
    }
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
    TestApp {
        http: TestClient::new(address),
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
    // A restarted app may find the data directory still locked for a
    // moment, while the stopped one's last tasks drop their stores.
    let mut tries = 0;
    let app = loop {
        let attempt = listener.try_clone().expect("the listener clones");
        match Application::build_on(settings.clone(), attempt).await {
            Ok(app) => break app,
            Err(err) if tries < 40 && format!("{err:?}").contains("InUse") => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(err) => panic!("the app starts: {err:?}"),
        }
    };
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
        // Like the data-dir lock, the port may still be held for a moment
        // by the stopped app's last tasks on a loaded machine.
        let mut tries = 0;
        let listener = loop {
            match std::net::TcpListener::bind(&port_addr) {
                Ok(listener) => break listener,
                Err(err) if tries < 40 && err.kind() == std::io::ErrorKind::AddrInUse => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(err) => panic!("the same port again: {err}"),
            }
        };
        let (server, task, hasher, jobs) =
            start(&self.vars, self.limits, self.jobs_by_hand, listener).await;
        self.server = server;
        self.task = Some(task);
        self.hasher = hasher;
        self.jobs = jobs;
    }

    /// Stops the server and waits until it has let go of the data
    /// directory (its lock), which the caller keeps.
    pub async fn stop(mut self) -> TempDir {
        self.server.stop(true).await;
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        self.data_dir
    }

    /// Restarts with some variables changed (an operator editing `.env`).
    pub async fn restart_with_vars(&mut self, vars: &[(&str, &str)]) {
        for (name, value) in vars {
            self.vars.insert((*name).to_owned(), (*value).to_owned());
        }
        self.restart().await;
    }

    pub fn data_file(&self, name: &str) -> std::path::PathBuf {
        self.data_dir.path().join(name)
    }

    /// Runs the next job to its end (`spawn_app_with_jobs_by_hand`).
    pub async fn run_job(&self) -> Step {
        self.jobs.run_one().await.expect("the job store works")
    }

    /// Waits for job `id` to finish: with jobs run by hand, runs every
    /// queued job to its end first (no polling); otherwise polls like
    /// `TestClient::wait_for_job`, which this shadows.
    pub async fn wait_for_job(&self, key: &str, id: &str) -> serde_json::Value {
        if self.jobs_by_hand.is_none() {
            return self.http.wait_for_job(key, id).await;
        }
        while self.run_job().await != Step::Idle {}
        self.job(key, id).await
    }

    /// Queues a question and waits for it as `wait_for_job` does.
    pub async fn ask_and_wait(&self, key: &str, body: serde_json::Value) -> serde_json::Value {
        let id = self.ask(key, body).await;
        self.wait_for_job(key, &id).await
    }
}

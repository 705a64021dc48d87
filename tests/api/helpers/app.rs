//! `TestApp`: Portico started in-process on port 0 with a fresh data
//! directory, restartable on the same port and data.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use portico::auth::hashing::Hasher;
use portico::auth::session::SessionLimits;
use portico::config::Settings;
use portico::startup::Application;
use tempfile::TempDir;

use super::{TestClient, SETUP_TOKEN};

pub struct TestApp {
    /// The browser the test drives; `TestApp` dereferences to it.
    pub http: TestClient,
    pub data_dir: TempDir,
    pub hasher: Arc<Hasher>,
    vars: HashMap<String, String>,
    limits: SessionLimits,
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
    let (server, task, hasher) = start(&map, limits, listener).await;
    TestApp {
        http: TestClient::new(address),
        data_dir,
        hasher,
        vars: map,
        limits,
        server,
        task: Some(task),
    }
}

async fn start(
    vars: &HashMap<String, String>,
    limits: SessionLimits,
    listener: std::net::TcpListener,
) -> (
    ServerHandle,
    tokio::task::JoinHandle<std::io::Result<()>>,
    Arc<Hasher>,
) {
    let mut vars = vars.clone();
    vars.insert("BIND".into(), listener.local_addr().unwrap().to_string());
    let mut settings = Settings::from_vars(&vars).expect("test settings are valid");
    settings.session_limits = limits;
    let app = Application::build_on(settings, listener)
        .await
        .expect("the app starts");
    let handle = app.handle();
    let hasher = app.hasher();
    (handle, tokio::spawn(app.run_until_stopped()), hasher)
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
        let (server, task, hasher) = start(&self.vars, self.limits, listener).await;
        self.server = server;
        self.task = Some(task);
        self.hasher = hasher;
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
}

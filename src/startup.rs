//! Builds the application: takes the data directory, loads the stores,
//! binds the listener and wires every area. Reads as a table of contents.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_files::Files;
use actix_session::config::{BrowserSession, CookieContentSecurity, TtlExtensionPolicy};
use actix_session::SessionMiddleware;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{middleware, web, App, HttpServer};
use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};

use crate::api;
use crate::auth::activity::ActivityLog;
use crate::auth::dashboard_keys::Keys;
use crate::auth::env_keys::{EnvKeys, KeyIdSecret};
use crate::auth::hashing::Hasher;
use crate::auth::rate_limit::{Bounds, WindowCounter};
use crate::auth::session_store::FileSessionStore;
use crate::auth::totp::SecretCipher;
use crate::auth::users::Users;
use crate::auth::{random_alphanumeric, Gate};
use crate::body_deadline;
use crate::config::Settings;
use crate::dashboard::{self, DashboardState};
use crate::housekeeping;
use crate::jobs::engine::command::CommandEngine;
use crate::jobs::engine::sandbox::{self, kernel_abi, SandboxError};
use crate::jobs::engine::{Answerer, Engine};
use crate::jobs::{spawn_workers, FileJobStore, JobStore, Worker, WorkerId};
use crate::store::{write_atomic, DataDir, DataDirError};
use crate::workspaces::Registry;

/// A client must send a request's head within this time, or the
/// connection is closed (408): slow senders cannot hold connections.
const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(5);
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const KEEP_ALIVE: Duration = Duration::from_secs(30);
const SESSION_COOKIE: &str = "portico_session";
const SESSION_SECRET_FILE: &str = "session-secret";
const LOGIN_FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error("cannot listen on {addr}: {source}; set BIND to a free address and port")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("cannot load the data in DATA_DIR: {0:#}")]
    Data(anyhow::Error),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}

/// The long-lived parts of the application, shared by every worker.
#[derive(Clone)]
pub(crate) struct Services {
    pub(crate) gate: web::Data<Gate>,
    pub(crate) dashboard: web::Data<DashboardState>,
    pub(crate) sessions: FileSessionStore,
    pub(crate) keys: Arc<Keys>,
    pub(crate) activity: Arc<ActivityLog>,
    pub(crate) hasher: Arc<Hasher>,
    pub(crate) registry: web::Data<Registry>,
    pub(crate) queue: web::Data<dyn JobStore>,
}

pub struct Application {
    address: SocketAddr,
    server: Server,
    services: Services,
    /// A worker beside the spawned ones, for tests that run jobs by hand.
    jobs: Worker,
    _data_dir: DataDir,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let listener = TcpListener::bind(settings.bind).map_err(|source| StartupError::Bind {
            addr: settings.bind,
            source,
        })?;
        Self::build_on(settings, listener).await
    }

    /// Builds on a listener the caller bound (tests that need the port
    /// before the settings are complete).
    pub async fn build_on(
        mut settings: Settings,
        listener: TcpListener,
    ) -> Result<Self, StartupError> {
        let data_dir = DataDir::open(&settings.data_dir)?;
        let bind_addr = settings.bind;
        let bind_error = move |source| StartupError::Bind {
            addr: bind_addr,
            source,
        };
        let address = listener.local_addr().map_err(bind_error)?;
        settings.public_url = settings.public_url.with_bound(address);
        let (services, session_key) =
            load_services(&settings, data_dir.path()).map_err(StartupError::Data)?;
        announce_setup(&settings, &services.dashboard).await;
        let engine = match &settings.ask_command {
            Some(words) => Engine::Command(CommandEngine {
                words: words.clone(),
                timeout: settings.ask_timeout,
                sandbox: sandbox::prepare(&settings.ask_sandbox, data_dir.path(), kernel_abi)?,
                data_dir: data_dir.path().to_owned(),
            }),
            None => Engine::Builtin,
        };
        let answerer = Answerer {
            engine,
            registry: services.registry.clone().into_inner(),
            indexes: Default::default(),
        };
        let jobs = Worker {
            id: WorkerId::new(&WorkerId::instance(), 0),
            store: services.queue.clone().into_inner(),
            answerer: answerer.clone(),
        };
        if settings.start_job_workers {
            spawn_workers(
                services.queue.clone().into_inner(),
                answerer,
                settings.job_concurrency.get(),
            );
        }

        crate::metrics::install();
        let metrics_access = web::Data::new(crate::metrics::MetricsAccess::new(
            settings.metrics_token.clone(),
            settings.trusted_proxies.clone(),
        ));
        let secure_cookies = settings.public_url.is_https();
        let limits = settings.session_limits;
        let app_services = services.clone();
        let server = HttpServer::new(move || {
            let services = app_services.clone();
            let sessions =
                SessionMiddleware::builder(services.sessions.clone(), session_key.clone())
                    .cookie_name(SESSION_COOKIE.to_owned())
                    .cookie_http_only(true)
                    .cookie_same_site(SameSite::Strict)
                    .cookie_secure(secure_cookies)
                    .cookie_content_security(CookieContentSecurity::Private)
                    .session_lifecycle(
                        BrowserSession::default()
                            .state_ttl(actix_web::cookie::time::Duration::seconds(
                                i64::try_from(limits.store_ttl().as_secs()).unwrap_or(i64::MAX),
                            ))
                            .state_ttl_extension_policy(TtlExtensionPolicy::OnEveryRequest),
                    )
                    .build();
            App::new()
                .wrap(limits.identity_middleware())
                .wrap(sessions)
                .wrap(from_fn(dashboard::require_known_host))
                .wrap(from_fn(dashboard::require_allowed_address))
                .wrap(from_fn(body_deadline::bound_body_time))
                .wrap(security_headers())
                .wrap(middleware::from_fn(crate::metrics::track_requests))
                .app_data(metrics_access.clone())
                .app_data(services.gate)
                .app_data(services.dashboard)
                .app_data(services.registry)
                .app_data(services.queue)
                .app_data(web::Data::from(services.activity))
                .configure(api::json::extractor_configs)
                .configure(routes)
        })
        .client_request_timeout(REQUEST_HEAD_TIMEOUT)
        .client_disconnect_timeout(DISCONNECT_TIMEOUT)
        .keep_alive(KEEP_ALIVE)
        .listen(listener)
        .map_err(bind_error)?
        .run();

        housekeeping::spawn(services.clone());
        // Made now, so that the first unknown user name at login takes no
        // longer than any other.
        let hasher = services.hasher.clone();
        tokio::spawn(async move { hasher.dummy_hash().await });
        tracing::info!(
            address = %address,
            data_dir = %data_dir.path().display(),
            admin_key = services.dashboard.admin_key_configured,
            client_keys = services.dashboard.client_key_count,
            dashboard_keys = services.keys.count().await.unwrap_or_default(),
            "Portico is listening on http://{address}"
        );
        Ok(Self {
            address,
            server,
            services,
            jobs,
            _data_dir: data_dir,
        })
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops the server from outside, e.g. a test restarting it.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// The hasher, whose verification count tests and benchmarks read.
    pub fn hasher(&self) -> Arc<Hasher> {
        self.services.hasher.clone()
    }

    /// A worker on this application's queue: `run_one` answers the next
    /// job (tests with `start_job_workers` off drive the queue with it).
    pub fn job_worker(&self) -> Worker {
        self.jobs.clone()
    }

    /// Serves until the server stops, then writes what is still in memory.
    pub async fn run_until_stopped(self) -> io::Result<()> {
        let result = self.server.await;
        housekeeping::flush(&self.services).await;
        result
    }
}

/// Every route of the application: the JSON API, the dashboard and the
/// static files. Tests enumerate it to prove that no route is left open.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(api::configure)
        .configure(crate::metrics::configure)
        .configure(dashboard::configure)
        .service(Files::new("/static", static_dir()));
}

fn load_services(settings: &Settings, data_dir: &Path) -> anyhow::Result<(Services, Key)> {
    let hasher = Hasher::for_this_machine();
    let users = Arc::new(Users::load(data_dir, hasher.clone())?);
    let keys = Arc::new(Keys::load(data_dir, hasher.clone())?);
    let activity = Arc::new(ActivityLog::load(data_dir)?);
    let sessions = FileSessionStore::load(data_dir)?;
    let registry = web::Data::new(Registry::load(data_dir)?);
    let queue: Arc<dyn JobStore> = Arc::new(FileJobStore::load(data_dir, settings.job_lease)?);
    let queue = web::Data::from(queue);
    let env_keys = EnvKeys::new(
        settings.admin_api_key.as_ref(),
        &settings.valid_api_keys,
        &KeyIdSecret::load_or_create(data_dir)?,
    );
    let gate = Gate::new(
        settings,
        users.clone(),
        keys.clone(),
        activity.clone(),
        env_keys,
    );
    let session_key = session_key(settings, data_dir)?;
    let dashboard = DashboardState {
        public_url: settings.public_url.clone(),
        trusted_proxies: settings.trusted_proxies.clone(),
        allowlist: settings.allowed_ips.clone(),
        setup_token: settings
            .initial_setup_token
            .clone()
            .unwrap_or_else(|| SecretString::from(random_alphanumeric(32))),
        users,
        keys: keys.clone(),
        sessions: Arc::new(sessions.clone()),
        activity: activity.clone(),
        login_failures: WindowCounter::new(
            NonZeroU32::new(dashboard::MAX_FAILED_LOGINS).expect("non-zero"),
            LOGIN_FAILURE_WINDOW,
            Bounds::LOGIN_FAILURES,
        ),
        second_step_failures: WindowCounter::new(
            NonZeroU32::new(dashboard::MAX_WRONG_CODES).expect("non-zero"),
            LOGIN_FAILURE_WINDOW,
            Bounds::LOGIN_FAILURES,
        ),
        totp_cipher: SecretCipher::from_session_secret(session_key.master()),
        admin_key_configured: gate.env_keys().has_admin_key(),
        client_key_count: gate.env_keys().client_key_count(),
        one_time_keys: Default::default(),
    };
    Ok((
        Services {
            gate: web::Data::new(gate),
            dashboard: web::Data::new(dashboard),
            sessions,
            keys,
            activity,
            hasher,
            registry,
            queue,
        },
        session_key,
    ))
}

/// `SESSION_SECRET`, or a secret generated once and kept in the data dir.
fn session_key(settings: &Settings, data_dir: &Path) -> anyhow::Result<Key> {
    if let Some(secret) = &settings.session_secret {
        return Ok(Key::from(secret.expose_secret().as_bytes()));
    }
    let path = data_dir.join(SESSION_SECRET_FILE);
    let secret = match std::fs::read_to_string(&path) {
        Ok(secret) if secret.trim().len() >= 64 => secret.trim().to_owned(),
        _ => {
            let secret = random_alphanumeric(128);
            write_atomic(&path, secret.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            secret
        }
    };
    Ok(Key::from(secret.as_bytes()))
}

/// While no user exists, the start-up log carries the setup URL.
async fn announce_setup(settings: &Settings, dashboard: &DashboardState) {
    match dashboard.users.has_users().await {
        Ok(false) => {}
        Ok(true) => return,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "reading the users failed");
            return;
        }
    }
    let url = format!(
        "{}/setup?token={}",
        settings.public_url.origin(),
        dashboard.setup_token.expose_secret()
    );
    tracing::warn!("No dashboard user yet. Create it at {url}");
}

fn security_headers() -> middleware::DefaultHeaders {
    middleware::DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "same-origin"))
        .add((
            "Content-Security-Policy",
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ))
}

/// The stylesheet and script: beside the binary's crate in development,
/// or `./static` when running from an installed copy.
fn static_dir() -> std::path::PathBuf {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
    if built.is_dir() {
        built
    } else {
        std::path::PathBuf::from("static")
    }
}

//! Builds the application: takes the data directory, loads the stores,
//! binds the listener and wires every area. Reads as a table of contents.
//! Layer 6, the top of the map (README, "The module map"): only the
//! command line imports it.

mod services;
mod stores;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_files::Files;
use actix_session::config::{BrowserSession, CookieContentSecurity, TtlExtensionPolicy};
use actix_session::SessionMiddleware;
use actix_web::cookie::SameSite;
use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{middleware, web, App, HttpServer};

use crate::api;
use crate::auth::hashing::Hasher;
use crate::auth::usage::UsageCounter;
use crate::config::Settings;
use crate::dashboard;
use crate::housekeeping;
use crate::http::body_deadline;
use crate::http::dashboard_guard::require_allowed_address;
use crate::http::host_check::require_known_host;
use crate::http::store_failures::answer_store_failures;
use crate::jobs::engine::command::CommandEngine;
use crate::jobs::engine::sandbox::{self, kernel_abi, SandboxError};
use crate::jobs::engine::{Answerer, Engine};
use crate::jobs::{spawn_workers, Worker, WorkerId};
use crate::store::StoreProbe;
use crate::store::{DataDir, DataDirError};
use services::{announce_setup, build_services, Services};

/// A client must send a request's head within this time, or the
/// connection is closed (408): slow senders cannot hold connections.
const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(5);
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const KEEP_ALIVE: Duration = Duration::from_secs(30);
const SESSION_COOKIE: &str = "portico_session";

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
        let bind_addr = settings.bind;
        let bind_error = move |source| StartupError::Bind {
            addr: bind_addr,
            source,
        };
        let address = listener.local_addr().map_err(bind_error)?;
        settings.public_url = settings.public_url.with_bound(address);
        let hasher = Hasher::for_this_machine();
        let (data_dir, stores) = match &settings.redis {
            None => {
                let data_dir = DataDir::open(&settings.data_dir)?;
                let stores = stores::open_files(&settings, data_dir.path(), hasher.clone())
                    .map_err(StartupError::Data)?;
                (data_dir, stores)
            }
            Some(redis_settings) => {
                let data_dir = DataDir::open_unlocked(&settings.data_dir)?;
                let redis = stores::connect_redis(redis_settings).await;
                let stores = stores::open_redis(&settings, redis, data_dir.path(), hasher.clone())
                    .await
                    .map_err(StartupError::Data)?;
                (data_dir, stores)
            }
        };
        let store_probe = web::Data::new(match &stores.redis {
            Some(redis) => StoreProbe::redis(redis.clone()),
            None => StoreProbe::files(),
        });
        let store_name = if stores.redis.is_some() {
            "redis"
        } else {
            "file"
        };
        let (services, session_key) = build_services(&settings, stores, hasher);
        announce_setup(&settings, &services.accounts).await;
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
        let metrics_access = web::Data::new(crate::http::metrics_access::MetricsAccess::new(
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
                .wrap(crate::auth::session::identity_middleware(limits))
                .wrap(sessions)
                .wrap(from_fn(answer_store_failures))
                .wrap(from_fn(require_known_host))
                .wrap(from_fn(require_allowed_address))
                .wrap(from_fn(body_deadline::bound_body_time))
                .wrap(security_headers())
                .wrap(middleware::from_fn(
                    crate::http::request_metrics::track_requests,
                ))
                .app_data(metrics_access.clone())
                .app_data(store_probe.clone())
                .app_data(services.gate)
                .app_data(services.site)
                .app_data(services.accounts)
                .app_data(services.key_pages)
                .app_data(services.overview)
                .app_data(services.workspace_pages)
                .app_data(services.registry)
                .app_data(services.queue)
                .app_data(services.usage)
                .app_data(web::Data::from(services.activity))
                .app_data(web::Data::from(services.keys))
                .configure(crate::http::json::extractor_configs)
                .configure(routes)
        })
        .client_request_timeout(REQUEST_HEAD_TIMEOUT)
        .client_disconnect_timeout(DISCONNECT_TIMEOUT)
        .keep_alive(KEEP_ALIVE)
        .listen(listener)
        .map_err(bind_error)?
        .run();

        housekeeping::spawn(services.chores());
        UsageCounter::spawn_flushing(&services.usage.clone().into_inner());
        // Made now, so that the first unknown user name at login takes no
        // longer than any other.
        let hasher = services.hasher.clone();
        tokio::spawn(async move { hasher.dummy_hash().await });
        tracing::info!(
            address = %address,
            data_dir = %data_dir.path().display(),
            store = store_name,
            admin_key = services.overview.admin_key_configured,
            client_keys = services.overview.client_key_count,
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
        housekeeping::flush(&self.services.chores()).await;
        self.services.usage.flush().await;
        result
    }
}

/// Every route of the application: the JSON API, the dashboard and the
/// static files. Tests enumerate it to prove that no route is left open.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(api::configure)
        .configure(api::metrics::configure)
        .configure(dashboard::configure)
        .service(Files::new("/static", static_dir()));
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

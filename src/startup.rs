//! Builds the application: takes the data directory, binds the listener and
//! wires every area. Reads as a table of contents of Portico.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{middleware, web, App, HttpServer};

use crate::api;
use crate::auth::Gate;
use crate::config::Settings;
use crate::store::{DataDir, DataDirError};

const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error("cannot listen on {addr}: {source}; set BIND to a free address and port")]
    Bind { addr: SocketAddr, source: io::Error },
}

pub struct Application {
    address: SocketAddr,
    server: Server,
    _data_dir: DataDir,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let data_dir = DataDir::open(&settings.data_dir)?;
        let bind_error = |source| StartupError::Bind {
            addr: settings.bind,
            source,
        };
        let listener = TcpListener::bind(settings.bind).map_err(bind_error)?;
        let address = listener.local_addr().map_err(bind_error)?;

        let gate = web::Data::new(Gate::new(&settings));
        spawn_pruning(gate.clone());
        let (admin_key, client_keys) = (
            gate.env_keys().has_admin_key(),
            gate.env_keys().client_key_count(),
        );

        let server = HttpServer::new(move || {
            App::new()
                .wrap(middleware::DefaultHeaders::new().add(("X-Content-Type-Options", "nosniff")))
                .app_data(gate.clone())
                .configure(api::json::extractor_configs)
                .configure(api::configure)
        })
        .listen(listener)
        .map_err(bind_error)?
        .run();

        tracing::info!(
            address = %address,
            data_dir = %data_dir.path().display(),
            admin_key,
            client_keys,
            "Portico is listening on http://{address}"
        );
        Ok(Self {
            address,
            server,
            _data_dir: data_dir,
        })
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub async fn run_until_stopped(self) -> io::Result<()> {
        let Self {
            server, _data_dir, ..
        } = self;
        let result = server.await;
        drop(_data_dir);
        result
    }
}

fn spawn_pruning(gate: web::Data<Gate>) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(PRUNE_INTERVAL);
        loop {
            ticks.tick().await;
            gate.prune();
        }
    });
}

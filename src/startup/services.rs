//! The long-lived parts of the application: the stores loaded from the
//! data directory, the gate, the dashboard's per-part state, and the
//! session key; built once by `Application::build_on`.

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_web::cookie::Key;
use actix_web::web;
use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};

use crate::auth::activity::ActivityLog;
use crate::auth::dashboard_keys::Keys;
use crate::auth::env_keys::{EnvKeys, KeyIdSecret};
use crate::auth::hashing::Hasher;
use crate::auth::rate_limit::{Bounds, WindowCounter};
use crate::auth::session_store::FileSessionStore;
use crate::auth::totp::SecretCipher;
use crate::auth::usage::{FileUsageStore, UsageCounter};
use crate::auth::users::Users;
use crate::auth::Gate;
use crate::config::Settings;
use crate::core::random_alphanumeric;
use crate::dashboard::{self, Accounts, KeyPages, Overview, WorkspacePages};
use crate::housekeeping;
use crate::http::site::Site;
use crate::jobs::{FileJobStore, JobStore};
use crate::store::write_atomic;
use crate::workspaces::Registry;

const SESSION_SECRET_FILE: &str = "session-secret";
const LOGIN_FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// The long-lived parts of the application, shared by every worker.
#[derive(Clone)]
pub(super) struct Services {
    pub(super) gate: web::Data<Gate>,
    pub(super) site: web::Data<Site>,
    pub(super) accounts: web::Data<Accounts>,
    pub(super) key_pages: web::Data<KeyPages>,
    pub(super) overview: web::Data<Overview>,
    pub(super) workspace_pages: web::Data<WorkspacePages>,
    pub(super) sessions: FileSessionStore,
    pub(super) keys: Arc<Keys>,
    pub(super) activity: Arc<ActivityLog>,
    pub(super) hasher: Arc<Hasher>,
    pub(super) registry: web::Data<Registry>,
    pub(super) queue: web::Data<dyn JobStore>,
    pub(super) usage: web::Data<UsageCounter>,
}

impl Services {
    pub(super) fn chores(&self) -> housekeeping::Services {
        housekeeping::Services {
            activity: self.activity.clone(),
            sessions: self.sessions.clone(),
            keys: self.keys.clone(),
            queue: self.queue.clone().into_inner(),
        }
    }
}

pub(super) fn load_services(
    settings: &Settings,
    data_dir: &Path,
) -> anyhow::Result<(Services, Key)> {
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
        None,
    );
    let usage = web::Data::new(UsageCounter::new(
        Arc::new(FileUsageStore::load(data_dir)?),
        keys.clone(),
        settings.usage_counting,
    ));
    let session_key = session_key(settings, data_dir)?;
    let login_failures = Arc::new(WindowCounter::new(
        NonZeroU32::new(dashboard::MAX_FAILED_LOGINS).expect("non-zero"),
        LOGIN_FAILURE_WINDOW,
        Bounds::LOGIN_FAILURES,
    ));
    let admin_key_configured = gate.env_keys().has_admin_key();
    let client_key_count = gate.env_keys().client_key_count();
    let site = Site {
        public_url: settings.public_url.clone(),
        trusted_proxies: settings.trusted_proxies.clone(),
        allowlist: settings.allowed_ips.clone(),
        users: users.clone(),
    };
    let accounts = Accounts {
        public_url: settings.public_url.clone(),
        trusted_proxies: settings.trusted_proxies.clone(),
        setup_token: settings
            .initial_setup_token
            .clone()
            .unwrap_or_else(|| SecretString::from(random_alphanumeric(32))),
        users: users.clone(),
        activity: activity.clone(),
        login_failures: login_failures.clone(),
        second_step_failures: WindowCounter::new(
            NonZeroU32::new(dashboard::MAX_WRONG_CODES).expect("non-zero"),
            LOGIN_FAILURE_WINDOW,
            Bounds::LOGIN_FAILURES,
        ),
        totp_cipher: SecretCipher::from_session_secret(session_key.master()),
    };
    let key_pages = KeyPages {
        trusted_proxies: settings.trusted_proxies.clone(),
        users: users.clone(),
        sessions: Arc::new(sessions.clone()),
        keys: keys.clone(),
        activity: activity.clone(),
        login_failures,
        admin_key_configured,
        client_key_count,
        one_time_keys: Default::default(),
    };
    let overview = Overview {
        public_url: settings.public_url.clone(),
        users,
        keys: keys.clone(),
        admin_key_configured,
        client_key_count,
    };
    let workspace_pages = WorkspacePages {
        trusted_proxies: settings.trusted_proxies.clone(),
        activity: activity.clone(),
    };
    Ok((
        Services {
            gate: web::Data::new(gate),
            site: web::Data::new(site),
            accounts: web::Data::new(accounts),
            key_pages: web::Data::new(key_pages),
            overview: web::Data::new(overview),
            workspace_pages: web::Data::new(workspace_pages),
            sessions,
            keys,
            activity,
            hasher,
            registry,
            queue,
            usage,
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
pub(super) async fn announce_setup(settings: &Settings, accounts: &Accounts) {
    match accounts.users.has_users().await {
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
        accounts.setup_token.expose_secret()
    );
    tracing::warn!("No dashboard user yet. Create it at {url}");
}

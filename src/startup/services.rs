//! The long-lived parts of the application: the stores (files or Redis,
//! `stores.rs`), the gate, the dashboard's per-part state, and the
//! session key; built once by `Application::build_on`.

use std::sync::Arc;

use actix_web::cookie::Key;
use actix_web::web;
use secrecy::ExposeSecret;

use super::stores::Stores;
use crate::auth::activity::ActivityLog;
use crate::auth::dashboard_keys::Keys;
use crate::auth::env_keys::EnvKeys;
use crate::auth::hashing::Hasher;
use crate::auth::session_backend::Sessions;
use crate::auth::totp::SecretCipher;
use crate::auth::usage::UsageCounter;
use crate::auth::Gate;
use crate::config::Settings;
use crate::dashboard::{Accounts, KeyPages, OneTimeKeys, Overview, WorkspacePages};
use crate::housekeeping;
use crate::http::site::Site;
use crate::jobs::JobStore;
use crate::store::redis::Redis;
use crate::workspaces::Registry;

/// The long-lived parts of the application, shared by every worker.
#[derive(Clone)]
pub(super) struct Services {
    pub(super) gate: web::Data<Gate>,
    pub(super) site: web::Data<Site>,
    pub(super) accounts: web::Data<Accounts>,
    pub(super) key_pages: web::Data<KeyPages>,
    pub(super) overview: web::Data<Overview>,
    pub(super) workspace_pages: web::Data<WorkspacePages>,
    pub(super) sessions: Sessions,
    pub(super) keys: Arc<Keys>,
    pub(super) activity: Arc<ActivityLog>,
    pub(super) hasher: Arc<Hasher>,
    pub(super) registry: web::Data<Registry>,
    pub(super) queue: web::Data<dyn JobStore>,
    pub(super) usage: web::Data<UsageCounter>,
    /// Redis mode: whose shared secrets housekeeping writes back.
    pub(super) redis: Option<Redis>,
}

impl Services {
    pub(super) fn chores(&self) -> housekeeping::Services {
        housekeeping::Services {
            activity: self.activity.clone(),
            sessions: self.sessions.clone(),
            keys: self.keys.clone(),
            queue: self.queue.clone().into_inner(),
            redis: self.redis.clone(),
        }
    }
}

pub(super) fn build_services(
    settings: &Settings,
    stores: Stores,
    hasher: Arc<Hasher>,
) -> (Services, Key) {
    let Stores {
        users,
        keys,
        activity,
        sessions,
        registry,
        queue,
        usage,
        key_id_secret,
        session_secret,
        setup_token,
        login_failures,
        second_step_failures,
        redis,
    } = stores;
    let registry = web::Data::new(registry);
    let queue = web::Data::from(queue);
    let env_keys = EnvKeys::new(
        settings.admin_api_key.as_ref(),
        &settings.valid_api_keys,
        &key_id_secret,
    );
    let one_time_keys = OneTimeKeys::new(redis.clone());
    let gate = Gate::new(
        settings,
        users.clone(),
        keys.clone(),
        activity.clone(),
        env_keys,
        redis.clone(),
    );
    let usage = web::Data::new(UsageCounter::new(
        usage,
        keys.clone(),
        settings.usage_counting,
    ));
    let session_key = Key::from(session_secret.expose_secret().as_bytes());
    let login_failures = Arc::new(login_failures);
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
        setup_token,
        users: users.clone(),
        activity: activity.clone(),
        login_failures: login_failures.clone(),
        second_step_failures,
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
        one_time_keys,
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
    (
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
            redis,
        },
        session_key,
    )
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

//! What each part of the dashboard shares, one small struct per part, each
//! holding only the stores and settings its pages use. `startup` builds
//! them from the same `Arc`s, so a store is shared, never copied.

use std::sync::Arc;

use secrecy::SecretString;

use super::one_time::OneTimeKeys;
use crate::auth::activity::ActivityLog;
use crate::auth::dashboard_keys::Keys;
use crate::auth::failure_counter::FailureCounter;
use crate::auth::session_store::SessionPurge;
use crate::auth::totp::SecretCipher;
use crate::auth::users::Users;
use crate::config::PublicUrl;
use crate::core::address::TrustedProxies;

/// Setup, login, the second step and two-factor settings.
#[derive(Debug)]
pub struct Accounts {
    pub public_url: PublicUrl,
    pub trusted_proxies: TrustedProxies,
    pub setup_token: SecretString,
    pub users: Arc<Users>,
    pub activity: Arc<ActivityLog>,
    /// Failed logins per user name and per address, and wrong setup
    /// tokens per address (the same address key as logins).
    pub login_failures: Arc<FailureCounter>,
    /// Second-step attempts per user (every attempt counts, reserved
    /// before the code is checked).
    pub second_step_failures: FailureCounter,
    pub totp_cipher: SecretCipher,
}

/// Account Security: keys, the password change and the activity tables.
#[derive(Debug)]
pub struct KeyPages {
    pub trusted_proxies: TrustedProxies,
    pub users: Arc<Users>,
    pub sessions: Arc<dyn SessionPurge>,
    pub keys: Arc<Keys>,
    pub activity: Arc<ActivityLog>,
    /// The same counter as `Accounts::login_failures`: a wrong current
    /// password is a failed login.
    pub login_failures: Arc<FailureCounter>,
    pub admin_key_configured: bool,
    pub client_key_count: usize,
    /// Generated keys waiting for their one display.
    pub one_time_keys: OneTimeKeys,
}

/// The overview page.
#[derive(Debug)]
pub struct Overview {
    pub public_url: PublicUrl,
    pub users: Arc<Users>,
    pub keys: Arc<Keys>,
    pub admin_key_configured: bool,
    pub client_key_count: usize,
}

/// The workspaces page (the registry itself is its own app data).
#[derive(Debug)]
pub struct WorkspacePages {
    pub trusted_proxies: TrustedProxies,
    pub activity: Arc<ActivityLog>,
}

//! Who may reach the pages outside `/api` and under which names: what the
//! dashboard's guards (`host_check`, `dashboard_guard`) need.

use std::sync::Arc;

use crate::auth::users::Users;
use crate::config::PublicUrl;
use crate::core::address::{IpAllowlist, TrustedProxies};

/// Who may reach the dashboard and who is logged in: for the guards
/// around every page.
#[derive(Debug)]
pub struct Site {
    pub public_url: PublicUrl,
    pub trusted_proxies: TrustedProxies,
    pub allowlist: IpAllowlist,
    pub users: Arc<Users>,
}

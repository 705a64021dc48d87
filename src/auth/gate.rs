//! The gate's decision for the `/api` scope: allowlist, then the principal
//! in the order of SPEC §2, then the failed-attempt throttle and the hourly
//! quota. The middleware that asks it is `http::gate`.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServiceRequest;

use super::activity::ActivityLog;
use super::api_key::ApiKey;
use super::dashboard_keys::{KeyCheck, Keys};
use super::env_keys::EnvKeys;
use super::principal::Principal;
use super::rate_limit::{address_key, Bounds, Quota, WindowCounter};
use super::session;
use super::usage;
use super::users::Users;
use crate::config::{PublicUrl, Settings};
use crate::core::address::{IpAllowlist, TrustedProxies};
use crate::store::StoreError;

/// More failed key checks than this from one address within the window
/// are refused without checking (SPEC §4).
const MAX_FAILED_ATTEMPTS: u32 = 20;
const FAILED_ATTEMPT_WINDOW: Duration = Duration::from_secs(15 * 60);
const QUOTA_WINDOW: Duration = Duration::from_secs(3600);

/// Why the gate turned a request away; the API answers each with its own
/// error code (SPEC §4).
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("the address is outside ALLOWED_IPS or the key's allowlist")]
    IpNotAllowed,
    #[error("a session's state-changing request came from another site")]
    CrossSite,
    #[error("no API key")]
    MissingKey,
    #[error("an unknown API key")]
    InvalidKey,
    #[error("an expired API key")]
    ExpiredKey,
    #[error("too many failed attempts from this address")]
    AuthThrottled { retry_after_secs: u64 },
    #[error("the hourly quota is used up")]
    RateLimited(Quota),
    #[error(transparent)]
    Storage(#[from] StoreError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[derive(Debug)]
pub struct Gate {
    allowlist: IpAllowlist,
    trusted_proxies: TrustedProxies,
    public_url: PublicUrl,
    users: Arc<Users>,
    keys: Arc<Keys>,
    env_keys: EnvKeys,
    activity: Arc<ActivityLog>,
    quotas: WindowCounter,
    failures: WindowCounter,
}

impl Gate {
    pub fn new(
        settings: &Settings,
        users: Arc<Users>,
        keys: Arc<Keys>,
        activity: Arc<ActivityLog>,
        env_keys: EnvKeys,
    ) -> Self {
        Self {
            allowlist: settings.allowed_ips.clone(),
            trusted_proxies: settings.trusted_proxies.clone(),
            public_url: settings.public_url.clone(),
            users,
            keys,
            env_keys,
            activity,
            quotas: WindowCounter::new(settings.api_rate_limit, QUOTA_WINDOW, Bounds::QUOTAS),
            failures: WindowCounter::new(
                NonZeroU32::new(MAX_FAILED_ATTEMPTS).expect("non-zero"),
                FAILED_ATTEMPT_WINDOW,
                Bounds::API_FAILURES,
            ),
        }
    }

    pub fn env_keys(&self) -> &EnvKeys {
        &self.env_keys
    }

    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.trusted_proxies
    }

    pub fn public_url(&self) -> &PublicUrl {
        &self.public_url
    }

    pub fn activity(&self) -> &ActivityLog {
        &self.activity
    }

    /// Who the request is from, and the quota it leaves when key-based.
    /// `cross_site_write` is the origin check's verdict on the request,
    /// which refuses a session (a key is not sent by a browser on its own).
    pub async fn authenticate(
        &self,
        req: &ServiceRequest,
        addr: IpAddr,
        cross_site_write: bool,
    ) -> Result<(Principal, Option<Quota>), Refusal> {
        if !self.allowlist.allows(addr) {
            return Err(Refusal::IpNotAllowed);
        }
        if let Some(logged_in) = session::current(req, &self.users).await? {
            if cross_site_write {
                return Err(Refusal::CrossSite);
            }
            return Ok((logged_in.principal(), None));
        }
        let presented = ApiKey::from_headers(req.headers());
        if let Ok(None) = presented {
            return Err(Refusal::MissingKey);
        }
        // The attempt takes its slot before the key is checked, so
        // simultaneous guesses cannot all pass a check made before any of
        // them failed (SPEC §4).
        let attempt = self
            .failures
            .reserve(&address_key(addr))
            .map_err(|throttled| Refusal::AuthThrottled {
                retry_after_secs: throttled.reset_secs,
            })?;
        let identified = match presented {
            Ok(Some(key)) => usage::attribute(req, &key, self.identify(&key).await),
            _ => Err(Refusal::InvalidKey),
        };
        let principal = match identified {
            Ok(principal) => {
                attempt.refund();
                principal
            }
            Err(err @ (Refusal::InvalidKey | Refusal::ExpiredKey)) => {
                attempt.keep();
                return Err(err);
            }
            Err(err) => {
                attempt.refund();
                return Err(err);
            }
        };
        // A key's own allowlist narrows the global one (SPEC §4).
        if !principal.scope.allows_address(addr) {
            return Err(Refusal::IpNotAllowed);
        }
        let quota = match principal.scope.hourly_limit {
            Some(limit) => self
                .quotas
                .try_acquire_limited(principal.id.as_bytes(), limit.get()),
            None => self.quotas.try_acquire(principal.id.as_bytes()),
        }
        .map_err(Refusal::RateLimited)?;
        Ok((principal, Some(quota)))
    }

    /// A dashboard key first, then the environment keys.
    async fn identify(&self, key: &ApiKey) -> Result<Principal, Refusal> {
        match self.keys.check(key.secret()).await? {
            KeyCheck::Valid(principal) => Ok(principal),
            KeyCheck::Invalid => Err(Refusal::InvalidKey),
            KeyCheck::Expired => Err(Refusal::ExpiredKey),
            KeyCheck::NotStored => self.env_keys.find(key).ok_or(Refusal::InvalidKey),
        }
    }
}

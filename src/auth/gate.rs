//! The gate's decision for the `/api` scope: allowlist, then the principal
//! in the order of SPEC §2, then the failed-attempt throttle and the hourly
//! quota. The middleware that asks it is `http::gate`. With a shared store
//! the limits live in Redis (`gate_shared.rs`); without, in this process.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use actix_identity::IdentityExt;
use actix_web::dev::ServiceRequest;

use super::activity::ActivityLog;
use secrecy::SecretString;

use super::api_key::ApiKey;
use super::dashboard_keys::{KeyCheck, Keys, Lookup, Unverified};
use super::env_keys::EnvKeys;
use super::principal::Principal;
use super::rate_limit::{address_key, Bounds, FailureThrottle, Quota, SharedLimits, WindowCounter};
use super::session;
use super::usage;
use super::users::Users;
use crate::config::{PublicUrl, Settings};
use crate::core::address::{IpAllowlist, TrustedProxies};
use crate::store::redis::Redis;
use crate::store::StoreError;

#[path = "gate_shared.rs"]
mod shared;

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
    /// The limits of this process: the only ones without Redis, and the
    /// environment keys' fallback while Redis is unreachable.
    quotas: WindowCounter,
    failures: FailureThrottle,
    /// The limits every instance shares, in Redis mode.
    shared: Option<SharedLimits>,
}

/// An anyhow error from a store is the store's (503 when unavailable).
fn refusal(err: anyhow::Error) -> Refusal {
    match err.downcast::<StoreError>() {
        Ok(store) => Refusal::Storage(store),
        Err(other) => Refusal::Unexpected(other),
    }
}

fn throttled(quota: Quota) -> Refusal {
    Refusal::AuthThrottled {
        retry_after_secs: quota.reset_secs,
    }
}

impl Gate {
    pub fn new(
        settings: &Settings,
        users: Arc<Users>,
        keys: Arc<Keys>,
        activity: Arc<ActivityLog>,
        env_keys: EnvKeys,
        shared: Option<Redis>,
    ) -> Self {
        let max_failures = NonZeroU32::new(MAX_FAILED_ATTEMPTS).expect("non-zero");
        Self {
            allowlist: settings.allowed_ips.clone(),
            trusted_proxies: settings.trusted_proxies.clone(),
            public_url: settings.public_url.clone(),
            users,
            keys,
            env_keys,
            activity,
            quotas: WindowCounter::for_trusted_keys(
                settings.api_rate_limit,
                QUOTA_WINDOW,
                Bounds::QUOTAS,
            ),
            failures: FailureThrottle::new(
                max_failures,
                FAILED_ATTEMPT_WINDOW,
                Bounds::API_FAILURES,
            ),
            shared: shared.map(|redis| {
                SharedLimits::new(
                    &redis,
                    max_failures,
                    FAILED_ATTEMPT_WINDOW,
                    settings.api_rate_limit,
                    QUOTA_WINDOW,
                )
            }),
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
        self.authenticate_key(req, addr).await
    }

    /// `authenticate`'s decision when it needs no wait: no session on the
    /// request (decided as `session::current` does, by the identity it
    /// carries), no Redis, and a key refused before any check or known
    /// valid without argon2 and without a write (an environment key, a
    /// dashboard key cached as verified). `None` for anything else, having
    /// done nothing: `authenticate` then decides from the start.
    pub fn decide_now(
        &self,
        req: &ServiceRequest,
        addr: IpAddr,
    ) -> Option<Result<(Principal, Option<Quota>), Refusal>> {
        if !self.allowlist.allows(addr) {
            return Some(Err(Refusal::IpNotAllowed));
        }
        if self.shared.is_some() || req.get_identity().is_ok() {
            return None;
        }
        let key = match ApiKey::from_headers(req.headers()) {
            Ok(Some(key)) => key,
            Ok(None) => return Some(Err(Refusal::MissingKey)),
            Err(_) => return None,
        };
        let principal = match self.keys.lookup_now(key.expose())? {
            KeyCheck::NotStored => self.env_keys.find(&key)?,
            KeyCheck::Valid(principal) => principal,
            KeyCheck::Expired | KeyCheck::Invalid => return None,
        };
        Some(self.admit_known(req, principal, &address_key(addr), addr))
    }

    /// A request without a session: its API key.
    async fn authenticate_key(
        &self,
        req: &ServiceRequest,
        addr: IpAddr,
    ) -> Result<(Principal, Option<Quota>), Refusal> {
        let key = match ApiKey::from_headers(req.headers()) {
            Ok(Some(key)) => key,
            Ok(None) => return Err(Refusal::MissingKey),
            Err(_) => return Err(self.count_failure(addr, Refusal::InvalidKey).await),
        };
        match &self.shared {
            Some(shared) => self.authenticate_shared(shared, req, &key, addr).await,
            None => self.authenticate_locally(req, &key, addr).await,
        }
    }

    /// Without Redis. A key known valid without argon2 (an environment key,
    /// a secret verified before) takes no throttle slot: it is refused only
    /// when the address has the limit of confirmed failures on record. Any
    /// other key takes its slot *before* it is checked, so simultaneous
    /// guesses cannot all pass a check made before any of them failed
    /// (SPEC §4); a slot taken by an attempt still in flight is waited for.
    async fn authenticate_locally(
        &self,
        req: &ServiceRequest,
        key: &ApiKey<'_>,
        addr: IpAddr,
    ) -> Result<(Principal, Option<Quota>), Refusal> {
        let addr_key = address_key(addr);
        let found = match self.keys.lookup(key.expose()).await.map_err(refusal)? {
            Lookup::Decided(KeyCheck::NotStored) => match self.env_keys.find(key) {
                Some(principal) => Found::Known(principal),
                None => Found::Failed(Refusal::InvalidKey),
            },
            Lookup::Decided(check) => match judge(check) {
                Ok(principal) => Found::Known(principal),
                Err(failure) => Found::Failed(failure),
            },
            Lookup::Unverified(unverified) => Found::Unverified(unverified),
        };
        let principal = match found {
            Found::Known(principal) => return self.admit_known(req, principal, &addr_key, addr),
            Found::Failed(failure) => {
                let attempt = self.failures.reserve(addr_key).await.map_err(throttled)?;
                attempt.keep();
                // Passes the failure on, noting an expired key's use.
                usage::attribute(req, key, Err(failure))?
            }
            Found::Unverified(unverified) => {
                let attempt = self.failures.reserve(addr_key).await.map_err(throttled)?;
                let identified = self
                    .keys
                    .verify(&SecretString::from(key.expose()), unverified)
                    .await
                    .map_err(refusal)
                    .and_then(judge);
                match usage::attribute(req, key, identified) {
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
                }
            }
        };
        self.admit(req, principal, addr)
    }

    /// Without Redis, a key known valid without argon2: refused only when
    /// the address has the limit of confirmed failures on record.
    fn admit_known(
        &self,
        req: &ServiceRequest,
        principal: Principal,
        addr_key: &[u8; 17],
        addr: IpAddr,
    ) -> Result<(Principal, Option<Quota>), Refusal> {
        if let Some(quota) = self.failures.known_key_refusal(addr_key) {
            return Err(throttled(quota));
        }
        self.admit(req, principal, addr)
    }

    /// Without Redis, a valid key: its own allowlist, then its quota.
    fn admit(
        &self,
        req: &ServiceRequest,
        principal: Principal,
        addr: IpAddr,
    ) -> Result<(Principal, Option<Quota>), Refusal> {
        // A key's own allowlist narrows the global one (SPEC §4).
        if !principal.scope.allows_address(addr) {
            return Err(usage::refused(req, &principal, Refusal::IpNotAllowed));
        }
        match self.charge_locally(&principal) {
            Ok(quota) => Ok((principal, Some(quota))),
            Err(refusal) => Err(usage::refused(req, &principal, refusal)),
        }
    }

    fn charge_locally(&self, principal: &Principal) -> Result<Quota, Refusal> {
        match principal.scope.hourly_limit {
            Some(limit) => self
                .quotas
                .try_acquire_limited(principal.id.as_bytes(), limit.get()),
            None => self.quotas.try_acquire(principal.id.as_bytes()),
        }
        .map_err(Refusal::RateLimited)
    }

    /// A request that failed before any secret could be checked (an
    /// unreadable key header) still counts as a failed attempt.
    async fn count_failure(&self, addr: IpAddr, failure: Refusal) -> Refusal {
        let addr_key = address_key(addr);
        if let Some(shared) = &self.shared {
            match shared.reserve(&addr_key).await {
                Ok(Ok(attempt)) => {
                    return match attempt.keep().await {
                        Ok(()) => failure,
                        Err(err) => Refusal::Storage(err),
                    }
                }
                Ok(Err(quota)) => return throttled(quota),
                // Counted here while Redis is away.
                Err(_) => {}
            }
        }
        match self.failures.reserve(addr_key).await {
            Ok(attempt) => {
                attempt.keep();
                failure
            }
            Err(quota) => throttled(quota),
        }
    }
}

/// What the gate knows of a key before any argon2 verification.
enum Found {
    /// Valid without verifying anything: takes no throttle slot.
    Known(Principal),
    /// A failure found without verifying anything: counted.
    Failed(Refusal),
    /// Needs argon2: takes a throttle slot first.
    Unverified(Unverified),
}

/// A dashboard-key check as the gate's answer.
fn judge(check: KeyCheck) -> Result<Principal, Refusal> {
    match check {
        KeyCheck::Valid(principal) => Ok(principal),
        KeyCheck::Expired => Err(Refusal::ExpiredKey),
        KeyCheck::Invalid | KeyCheck::NotStored => Err(Refusal::InvalidKey),
    }
}

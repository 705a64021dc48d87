//! The gate on the `/api` scope: allowlist, then the principal in the order
//! of SPEC §2, then the failed-attempt throttle and the hourly quota. It puts
//! the `Principal` into the request for the handlers.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderMap;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};

use super::activity::ActivityLog;
use super::address::{address_text, client_address, IpAllowlist, TrustedProxies};
use super::api_key::ApiKey;
use super::dashboard_keys::{KeyCheck, Keys};
use super::env_keys::EnvKeys;
use super::principal::Principal;
use super::rate_limit::{address_key, Bounds, Quota, WindowCounter};
use super::session;
use super::usage::{self, UsageCounter};
use super::users::Users;
use crate::config::{PublicUrl, Settings};
use crate::error::ApiError;

/// More failed key checks than this from one address within the window
/// are refused without checking (SPEC §4).
const MAX_FAILED_ATTEMPTS: u32 = 20;
const FAILED_ATTEMPT_WINDOW: Duration = Duration::from_secs(15 * 60);
const QUOTA_WINDOW: Duration = Duration::from_secs(3600);

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

    /// Who the request is from, and the quota it leaves when key-based.
    async fn authenticate(
        &self,
        req: &ServiceRequest,
        addr: IpAddr,
    ) -> Result<(Principal, Option<Quota>), ApiError> {
        if !self.allowlist.allows(addr) {
            return Err(ApiError::IpNotAllowed);
        }
        if let Some(logged_in) = session::current(req, &self.users).await? {
            if is_cross_site_write(req, &self.public_url) {
                return Err(ApiError::CrossSite);
            }
            return Ok((logged_in.principal(), None));
        }
        let presented = ApiKey::from_headers(req.headers());
        if let Ok(None) = presented {
            return Err(ApiError::MissingKey);
        }
        // The attempt takes its slot before the key is checked, so
        // simultaneous guesses cannot all pass a check made before any of
        // them failed (SPEC §4).
        let attempt = self
            .failures
            .reserve(&address_key(addr))
            .map_err(|throttled| ApiError::AuthThrottled {
                retry_after_secs: throttled.reset_secs,
            })?;
        let identified = match presented {
            Ok(Some(key)) => usage::attribute(req, &key, self.identify(&key).await),
            _ => Err(ApiError::InvalidKey),
        };
        let principal = match identified {
            Ok(principal) => {
                attempt.refund();
                principal
            }
            Err(err @ (ApiError::InvalidKey | ApiError::ExpiredKey)) => {
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
            return Err(ApiError::IpNotAllowed);
        }
        let quota = match principal.scope.hourly_limit {
            Some(limit) => self
                .quotas
                .try_acquire_limited(principal.id.as_bytes(), limit.get()),
            None => self.quotas.try_acquire(principal.id.as_bytes()),
        }
        .map_err(ApiError::RateLimited)?;
        Ok((principal, Some(quota)))
    }

    /// A dashboard key first, then the environment keys.
    async fn identify(&self, key: &ApiKey) -> Result<Principal, ApiError> {
        match self.keys.check(key.secret()).await? {
            KeyCheck::Valid(principal) => Ok(principal),
            KeyCheck::Invalid => Err(ApiError::InvalidKey),
            KeyCheck::Expired => Err(ApiError::ExpiredKey),
            KeyCheck::NotStored => self.env_keys.find(key).ok_or(ApiError::InvalidKey),
        }
    }
}

/// A state-changing request that a browser marks as coming from another
/// site, or whose `Origin` is not `PUBLIC_URL`.
pub fn is_cross_site_write(req: &ServiceRequest, public_url: &PublicUrl) -> bool {
    let safe = matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS");
    !safe && !is_same_origin(req.headers(), public_url, true)
}

/// Whether `Origin` (or, failing that, `Referer`) is one `PUBLIC_URL` accepts.
/// Without either header the answer is `allow_missing`; `Sec-Fetch-Site:
/// cross-site` is never same-origin.
pub fn is_same_origin(headers: &HeaderMap, public_url: &PublicUrl, allow_missing: bool) -> bool {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if header("sec-fetch-site").is_some_and(|site| site == "cross-site") {
        return false;
    }
    if let Some(origin) = header("origin") {
        return public_url.accepts_origin(origin);
    }
    match header("referer").and_then(|referer| url::Url::parse(referer).ok()) {
        Some(referer) => public_url.accepts_origin(&referer.origin().ascii_serialization()),
        None => allow_missing,
    }
}

/// The middleware function wrapped around the `/api` scope.
pub async fn require_principal(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let gate = req
        .app_data::<web::Data<Gate>>()
        .cloned()
        .expect("the gate is registered as app data");
    let usage = req
        .app_data::<web::Data<UsageCounter>>()
        .map(|counter| counter.clone().into_inner());
    let addr = client_address(req.peer_addr(), req.headers(), &gate.trusted_proxies);
    let mut addr_buffer = [0u8; 45];
    let client = address_text(addr, &mut addr_buffer);
    match gate.authenticate(&req, addr).await {
        Ok((principal, quota)) => {
            crate::metrics::auth_attempt("allowed");
            tracing::info!(
                target: "portico::auth",
                message = "authentication attempt",
                outcome = "allowed",
                principal = &*principal.id,
                client,
                method = req.method().as_str(),
                path = req.path(),
            );
            req.extensions_mut().insert(principal);
            let mut response = next.call(req).await?.map_into_boxed_body();
            if let Some(quota) = quota {
                let headers = response.headers_mut();
                for (name, value) in quota.headers() {
                    headers.insert(name, value);
                }
            }
            usage::observe(usage.as_deref(), &response);
            Ok(response)
        }
        Err(err) => {
            gate.activity.anonymous_failure(err.code(), addr);
            crate::metrics::auth_attempt(err.code());
            tracing::info!(
                target: "portico::auth",
                message = "authentication attempt",
                outcome = "denied",
                code = err.code(),
                client,
                method = req.method().as_str(),
                path = req.path(),
            );
            let response = req.error_response(err);
            usage::observe(usage.as_deref(), &response);
            Ok(response)
        }
    }
}

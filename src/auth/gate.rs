//! The gate on the `/api` scope: allowlist, then the principal in the order
//! of SPEC §2, then the failed-attempt throttle and the hourly quota. It puts
//! the `Principal` and the `ClientAddr` into the request for the handlers.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};

use super::address::{client_address, IpAllowlist, TrustedProxies};
use super::api_key::ApiKey;
use super::env_keys::EnvKeys;
use super::principal::Principal;
use super::rate_limit::{Quota, WindowCounter};
use crate::config::Settings;
use crate::error::ApiError;

/// More failed key checks than this from one address within the window
/// are refused without checking (SPEC §4).
const MAX_FAILED_ATTEMPTS: u32 = 20;
const FAILED_ATTEMPT_WINDOW: Duration = Duration::from_secs(15 * 60);
const QUOTA_WINDOW: Duration = Duration::from_secs(3600);

/// The address the request came from, as resolved by the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

#[derive(Debug)]
pub struct Gate {
    allowlist: IpAllowlist,
    trusted_proxies: TrustedProxies,
    env_keys: EnvKeys,
    quotas: WindowCounter<String>,
    failures: WindowCounter<IpAddr>,
}

impl Gate {
    pub fn new(settings: &Settings) -> Self {
        Self {
            allowlist: settings.allowed_ips.clone(),
            trusted_proxies: settings.trusted_proxies.clone(),
            env_keys: EnvKeys::new(settings.admin_api_key.as_ref(), &settings.valid_api_keys),
            quotas: WindowCounter::new(settings.api_rate_limit, QUOTA_WINDOW),
            failures: WindowCounter::new(
                NonZeroU32::new(MAX_FAILED_ATTEMPTS).expect("non-zero"),
                FAILED_ATTEMPT_WINDOW,
            ),
        }
    }

    pub fn env_keys(&self) -> &EnvKeys {
        &self.env_keys
    }

    /// Drops counters whose windows have passed.
    pub fn prune(&self) {
        self.quotas.prune();
        self.failures.prune();
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
        let throttle_key = throttle_key(addr);
        let presented = ApiKey::from_headers(req.headers());
        if let Ok(None) = presented {
            return Err(ApiError::MissingKey);
        }
        let throttled = self.failures.peek(&throttle_key);
        if throttled.remaining == 0 {
            return Err(ApiError::AuthThrottled {
                retry_after_secs: throttled.reset_secs,
            });
        }
        let principal = presented.ok().flatten().and_then(|key| self.identify(&key));
        let Some(principal) = principal else {
            // A failure is counted even when it is the last allowed one.
            let _ = self.failures.try_acquire(&throttle_key);
            return Err(ApiError::InvalidKey);
        };
        let quota = self
            .quotas
            .try_acquire(principal.id.as_str())
            .map_err(ApiError::RateLimited)?;
        Ok((principal, Some(quota)))
    }

    fn identify(&self, key: &ApiKey) -> Option<Principal> {
        self.env_keys.find(key)
    }
}

/// Failures are counted per address, and per /64 for IPv6, where one
/// client usually holds a whole prefix.
fn throttle_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
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
    let addr = client_address(req.peer_addr(), req.headers(), &gate.trusted_proxies);
    match gate.authenticate(&req, addr).await {
        Ok((principal, quota)) => {
            tracing::info!(
                target: "portico::auth",
                outcome = "allowed",
                principal = %principal.id,
                client = %addr,
                method = %req.method(),
                path = %req.path(),
                "authentication attempt"
            );
            req.extensions_mut().insert(principal);
            req.extensions_mut().insert(ClientAddr(addr));
            let mut response = next.call(req).await?.map_into_boxed_body();
            if let Some(quota) = quota {
                let headers = response.headers_mut();
                for (name, value) in quota.headers() {
                    headers.insert(name, value);
                }
            }
            Ok(response)
        }
        Err(err) => {
            tracing::info!(
                target: "portico::auth",
                outcome = "denied",
                code = err.code(),
                client = %addr,
                method = %req.method(),
                path = %req.path(),
                "authentication attempt"
            );
            Ok(req.error_response(err))
        }
    }
}

//! The gate in Redis mode (SPEC §7): limits exact across instances, and a
//! cached argon2 result trusted only while the key's record is at the
//! version it was verified against. A key verified before, or an
//! environment key, costs one round trip (`SharedLimits::admit`); anything
//! else takes a shared throttle slot, is looked up and verified, and is
//! charged. Redis unreachable: environment keys go on with this process's
//! own counters; dashboard keys answer 503 `store-unavailable`, never 401.

use std::net::IpAddr;
use std::num::NonZeroU32;

use actix_web::dev::ServiceRequest;

use super::{judge, refusal, throttled, Gate, Refusal};
use secrecy::SecretString;

use crate::auth::api_key::ApiKey;
use crate::auth::dashboard_keys::{KeyCheck, Keys, Lookup};
use crate::auth::principal::Principal;
use crate::auth::rate_limit::{address_key, Admission, Quota, SharedLimits};
use crate::auth::usage;

impl Gate {
    pub(super) async fn authenticate_shared(
        &self,
        shared: &SharedLimits,
        req: &ServiceRequest,
        key: &ApiKey<'_>,
        addr: IpAddr,
    ) -> Result<(Principal, Option<Quota>), Refusal> {
        let addr_key = address_key(addr);
        if let (Some(cached), Some(versions)) =
            (self.keys.cached(key.expose()), self.keys.versions_key())
        {
            if cached.principal.scope.allows_address(addr) {
                let limit = cached.principal.scope.hourly_limit.map(NonZeroU32::get);
                let record = Some((versions, cached.id.as_str(), cached.version));
                let client = cached.principal.id.clone();
                match shared
                    .admit(&addr_key, client.as_bytes(), limit, record)
                    .await?
                {
                    Admission::Admitted(quota) => {
                        self.keys.note_use(&cached.id).await.map_err(refusal)?;
                        return Ok((cached.principal, Some(quota)));
                    }
                    Admission::Throttled(quota) => return Err(throttled(quota)),
                    Admission::RateLimited(quota) => {
                        let limited = Refusal::RateLimited(quota);
                        return Err(usage::refused(req, &cached.principal, limited));
                    }
                    Admission::Stale => self.keys.forget_stale(&cached.id, cached.version),
                }
            } else if self.keys.version(&cached.id).await? == Some(cached.version) {
                // The key's own allowlist, current, refuses the address.
                return Err(Refusal::IpNotAllowed);
            } else {
                self.keys.forget_stale(&cached.id, cached.version);
            }
        }
        if !Keys::has_stored_form(key.expose()) {
            return match self.env_keys.find(key) {
                Some(principal) => self.admit_env_key(shared, principal, addr).await,
                None => Err(self.count_failure(addr, Refusal::InvalidKey).await),
            };
        }
        let principal = self.verify_shared(shared, req, key, addr).await?;
        match Self::charge_shared(shared, &principal, addr).await {
            Ok(quota) => Ok((principal, Some(quota))),
            Err(refusal) => Err(usage::refused(req, &principal, refusal)),
        }
    }

    /// The quota of a key just verified, after its own allowlist, which
    /// narrows the global one (SPEC §4).
    async fn charge_shared(
        shared: &SharedLimits,
        principal: &Principal,
        addr: IpAddr,
    ) -> Result<Quota, Refusal> {
        if !principal.scope.allows_address(addr) {
            return Err(Refusal::IpNotAllowed);
        }
        let limit = principal.scope.hourly_limit.map(NonZeroU32::get);
        match shared.charge(principal.id.as_bytes(), limit).await? {
            Admission::Admitted(quota) => Ok(quota),
            Admission::RateLimited(quota) => Err(Refusal::RateLimited(quota)),
            other => Err(Refusal::Unexpected(anyhow::anyhow!(
                "charging a quota in Redis answered {other:?}"
            ))),
        }
    }

    /// An environment key: one round trip, or this process's counters
    /// while Redis is unreachable (the README says so: limits are then
    /// per instance).
    async fn admit_env_key(
        &self,
        shared: &SharedLimits,
        principal: Principal,
        addr: IpAddr,
    ) -> Result<(Principal, Option<Quota>), Refusal> {
        if !principal.scope.allows_address(addr) {
            return Err(Refusal::IpNotAllowed);
        }
        let addr_key = address_key(addr);
        let client = principal.id.clone();
        match shared.admit(&addr_key, client.as_bytes(), None, None).await {
            Ok(Admission::Admitted(quota)) => Ok((principal, Some(quota))),
            Ok(Admission::Throttled(quota)) => Err(throttled(quota)),
            Ok(Admission::RateLimited(quota)) => Err(Refusal::RateLimited(quota)),
            Ok(Admission::Stale) => Err(Refusal::Unexpected(anyhow::anyhow!(
                "Redis found an environment key's record stale"
            ))),
            Err(err) => {
                tracing::debug!(error = %err, "Redis unreachable: an environment key is limited by this instance alone");
                if let Some(quota) = self.failures.known_key_refusal(&addr_key) {
                    return Err(throttled(quota));
                }
                let quota = self.charge_locally(&principal)?;
                Ok((principal, Some(quota)))
            }
        }
    }

    /// A key in the dashboard form not verified before (or whose record
    /// moved on): a shared throttle slot first, then the record and argon2.
    async fn verify_shared(
        &self,
        shared: &SharedLimits,
        req: &ServiceRequest,
        key: &ApiKey<'_>,
        addr: IpAddr,
    ) -> Result<Principal, Refusal> {
        let attempt = shared
            .reserve(&address_key(addr))
            .await?
            .map_err(throttled)?;
        let identified = match self.keys.lookup(key.expose()).await.map_err(refusal) {
            Ok(Lookup::Decided(KeyCheck::NotStored)) => {
                self.env_keys.find(key).ok_or(Refusal::InvalidKey)
            }
            Ok(Lookup::Decided(check)) => judge(check),
            Ok(Lookup::Unverified(unverified)) => self
                .keys
                .verify(&SecretString::from(key.expose()), unverified)
                .await
                .map_err(refusal)
                .and_then(judge),
            Err(err) => Err(err),
        };
        match usage::attribute(req, key, identified) {
            Ok(principal) => match attempt.refund().await {
                Ok(()) => Ok(principal),
                Err(err) => Err(usage::refused(req, &principal, err.into())),
            },
            Err(err @ (Refusal::InvalidKey | Refusal::ExpiredKey)) => {
                attempt.keep().await?;
                Err(err)
            }
            Err(err) => {
                // Most likely Redis went away: the slot ends with its window.
                if let Err(unresolved) = attempt.refund().await {
                    tracing::debug!(error = %unresolved, "a throttle slot stays pending in Redis");
                }
                Err(err)
            }
        }
    }
}

#[cfg(test)]
#[path = "gate_shared_tests.rs"]
mod tests;

//! The security layer: who is calling (sessions, dashboard keys, env keys,
//! in the order of SPEC §2), from where (client address, allowlist), how
//! often (quotas, throttling), and what happened (the activity log).
//! Layer 2, a domain area (README, "The module map"): no handlers; the
//! HTTP side of the gate is `http::gate`.

pub mod activity;
pub mod activity_records;
pub mod activity_store;
pub mod activity_store_redis;
pub mod api_key;
pub mod dashboard_keys;
pub mod env_keys;
pub mod failure_counter;
pub mod gate;
pub mod hashing;
pub mod key_admin;
pub mod offline_keys;
pub mod principal;
pub mod rate_limit;
#[cfg(test)]
mod redis_outage_tests;
pub mod scope;
pub mod session;
pub mod session_backend;
pub mod session_store;
pub mod session_store_redis;
pub mod totp;
pub mod two_factor;
pub mod usage;
pub mod user_store;
pub mod user_store_redis;
pub mod users;

pub use gate::Gate;
pub use principal::{Principal, PrincipalKind, Role};
pub use scope::{Permission, Scope, ScopeChanges};

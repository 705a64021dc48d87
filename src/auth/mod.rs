//! The security layer: who is calling (sessions, dashboard keys, env keys,
//! in the order of SPEC §2), from where (client address, allowlist), how
//! often (quotas, throttling), and what happened (the activity log).

pub mod activity;
pub mod activity_store;
pub mod activity_store_redis;
pub mod address;
pub mod api_key;
pub mod dashboard_keys;
pub mod env_keys;
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
pub mod session_store;
pub mod session_store_redis;
pub mod totp;
pub mod two_factor;
pub mod user_store;
pub mod user_store_redis;
pub mod users;

use rand::rngs::OsRng;
use rand::{Rng, TryRngCore};

pub use gate::Gate;
pub use principal::{Principal, PrincipalKind, Role};
pub use scope::{Permission, Scope, ScopeChanges};

fn random_from(alphabet: &[u8], len: usize) -> String {
    let mut rng = OsRng.unwrap_err();
    (0..len)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

/// `len` characters of `[a-z0-9]` from the operating system's CSPRNG.
pub fn random_token(len: usize) -> String {
    random_from(b"abcdefghijklmnopqrstuvwxyz0123456789", len)
}

/// `len` characters of `[A-Za-z0-9]` from the operating system's CSPRNG.
pub fn random_alphanumeric(len: usize) -> String {
    random_from(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        len,
    )
}

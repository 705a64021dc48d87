//! The security layer: who is calling (principals and their order), from
//! where (client address, allowlist), and how often (quotas, throttling).

pub mod address;
pub mod api_key;
pub mod env_keys;
pub mod gate;
pub mod principal;
pub mod rate_limit;

pub use gate::{ClientAddr, Gate};
pub use principal::{Principal, PrincipalKind, Role};

//! HTTP integration tests: each starts the real application on port 0 with a
//! fresh data directory.

mod allowlist;
mod api_keys;
mod browser;
mod config_startup;
mod crash;
mod dashboard_keys;
mod dashboard_setup;
mod errors;
mod helpers;
mod login_throttling;
mod parsers;
mod rate_limits;

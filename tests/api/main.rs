//! HTTP integration tests: each starts the real application on port 0 with a
//! fresh data directory.

mod allowlist;
mod api_keys;
mod config_startup;
mod errors;
mod helpers;
mod parsers;
mod rate_limits;

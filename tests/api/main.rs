//! HTTP integration tests: each starts the real application on port 0 with a
//! fresh data directory.

mod allowlist;
mod api_keys;
mod ask_command;
mod ask_flow;
mod ask_inputs;
mod attacks;
mod browser;
mod browser_daily;
mod census;
mod cli;
mod concurrency;
mod config_startup;
mod crash;
mod crash_rounds;
mod dashboard_daily;
mod dashboard_jobs;
mod dashboard_keys;
mod dashboard_setup;
mod errors;
mod fairness;
mod faults;
mod first_run;
mod flood;
mod helpers;
mod job_recovery;
mod login_throttling;
mod parsers;
mod races;
mod rate_limits;
mod readme;
mod repo_credentials;
mod sandbox;

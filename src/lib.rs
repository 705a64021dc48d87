//! Portico: a self-hosted gate in front of a code-question API.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod core;
pub mod dashboard;
mod housekeeping;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod workspaces;

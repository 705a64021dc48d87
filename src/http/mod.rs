//! The HTTP layer between the domain areas and the two front ends (`api`,
//! `dashboard`): the API's error shape, JSON extractors, the body deadline,
//! HTML rendering with the dashboard's one error type,
//! origin checks, the guards (the `/api` gate middleware, the dashboard's
//! host, address and login guards) and who may read `/metrics`.
//! No routes live here. Layer 3 (README, "The module map").

pub mod body_deadline;
pub mod dashboard_guard;
pub mod error;
pub mod gate;
pub mod host_check;
pub mod html;
pub mod json;
pub mod metrics_access;
pub mod origin;
pub mod refusal_pages;
pub mod request_metrics;
pub mod site;
pub mod store_failures;

pub use error::ApiError;

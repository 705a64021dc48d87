//! The HTTP layer between the domain areas and the two front ends (`api`,
//! `dashboard`): the API's error shape, JSON extractors, the body deadline,
//! origin checks and the `/api` gate middleware. No routes live here.

pub mod body_deadline;
pub mod error;
pub mod gate;
pub mod json;
pub mod origin;

pub use error::ApiError;

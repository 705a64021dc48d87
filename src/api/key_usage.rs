//! `GET /api/keys/{id}/usage`: a dashboard key's requests per hour for the
//! last seven days, allowed and denied by reason (`auth::usage`).

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::resource;
use super::schemas::ErrorBody;
use crate::auth::usage::{hour_start, Counts, Hour, Outcome, UsageCounter};
use crate::http::ApiError;

/// The usage route sits with its handler; `keys` keeps the record routes.
pub fn api_routes(cfg: &mut super::GatedRoutes) {
    cfg.service(resource("/keys/{id}/usage").get(usage));
}

/// Requests the gate refused, by the error code it answered.
#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct DeniedCounts {
    pub rate_limited: u32,
    pub insufficient_scope: u32,
    pub admin_required: u32,
    pub ip_not_allowed: u32,
    pub expired_api_key: u32,
    pub too_many_jobs: u32,
}

impl From<&Counts> for DeniedCounts {
    fn from(counts: &Counts) -> Self {
        Self {
            rate_limited: counts.get(Outcome::RateLimited),
            insufficient_scope: counts.get(Outcome::InsufficientScope),
            admin_required: counts.get(Outcome::AdminRequired),
            ip_not_allowed: counts.get(Outcome::IpNotAllowed),
            expired_api_key: counts.get(Outcome::ExpiredKey),
            too_many_jobs: counts.get(Outcome::TooManyJobs),
        }
    }
}

/// One hour of one key.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HourUsage {
    /// The start of the hour (UTC).
    pub hour: DateTime<Utc>,
    /// Requests that passed the gate and the key's scope.
    pub allowed: u32,
    pub denied: DeniedCounts,
}

/// A key's usage: 168 hours, oldest first, and their totals.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyUsage {
    pub key_id: String,
    /// The start of the oldest hour.
    pub from: DateTime<Utc>,
    /// The end of the newest hour (the current one, still counting).
    pub to: DateTime<Utc>,
    pub allowed: u32,
    pub denied: DeniedCounts,
    pub hours: Vec<HourUsage>,
}

impl KeyUsage {
    pub fn new(key_id: &str, series: &[(Hour, Counts)]) -> Self {
        let mut total = Counts::default();
        for (_, counts) in series {
            total.add(counts);
        }
        let first = series.first().map_or(0, |(hour, _)| *hour);
        let last = series.last().map_or(0, |(hour, _)| *hour);
        Self {
            key_id: key_id.to_owned(),
            from: hour_start(first),
            to: hour_start(last + 1),
            allowed: total.allowed(),
            denied: DeniedCounts::from(&total),
            hours: series
                .iter()
                .map(|(hour, counts)| HourUsage {
                    hour: hour_start(*hour),
                    allowed: counts.allowed(),
                    denied: counts.into(),
                })
                .collect(),
        }
    }
}

/// A key's requests per hour for the last seven days.
#[utoipa::path(get, path = "/api/keys/{id}/usage", tag = "keys",
    params(("id" = String, Path, description = "The key's public id")),
    responses(
        (status = 200, description = "168 hourly buckets, oldest first", body = KeyUsage),
        (status = 401, description = "No or a bad key", body = ErrorBody),
        (status = 403, description = "The caller's scope lacks keys:manage", body = ErrorBody),
        (status = 404, description = "No such key", body = ErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = [])))]
pub async fn usage(
    manager: super::keys::KeyManager,
    counter: web::Data<UsageCounter>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    manager.require()?;
    // A key wider than the caller's own scope is absent to it.
    manager
        .admin()
        .find(&manager.actor(), &id)
        .await
        .map_err(ApiError::storage)?
        .ok_or(ApiError::Missing("Key"))?;
    let series = counter.series(&id).await?.ok_or(ApiError::Missing("Key"))?;
    Ok(HttpResponse::Ok().json(KeyUsage::new(&id, &series)))
}

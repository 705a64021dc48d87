//! Wrapped around the session layer: when the session store cannot be
//! read or written (Redis down, a full disk), actix-session fails the
//! request with a bare 500; this answers 503 instead — the JSON error
//! `store-unavailable` under `/api`, the error page elsewhere — so a
//! cookie holder sees the same answer as everyone else while the store is
//! away (SPEC §7), and the cause goes to the log only.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web;

use super::error::{ApiError, FILES_UNAVAILABLE, REDIS_UNAVAILABLE};
use super::html::DashboardError;
use crate::store::StoreProbe;

pub async fn answer_store_failures(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let api = req.path() == "/api" || req.path().starts_with("/api/");
    let health = req.path() == "/api/health";
    let redis = req
        .app_data::<web::Data<StoreProbe>>()
        .is_some_and(|probe| probe.is_redis());
    match next.call(req).await {
        Ok(response) => Ok(response.map_into_boxed_body()),
        Err(err) if err.as_response_error().status_code() == StatusCode::INTERNAL_SERVER_ERROR => {
            if health {
                tracing::error!(error = %err, "the session store could not be used");
                Err(HealthDown.into())
            } else if api {
                tracing::error!(error = %err, "the session store could not be used");
                let message = if redis {
                    REDIS_UNAVAILABLE
                } else {
                    FILES_UNAVAILABLE
                };
                Err(ApiError::StoreUnavailable(message).into())
            } else {
                Err(DashboardError::Storage {
                    what: "reading or saving the session",
                    detail: err.to_string(),
                    redis,
                }
                .into())
            }
        }
        Err(err) => Err(err),
    }
}

/// `/api/health` sent with a cookie whose session could not be loaded:
/// the store is down, and the answer keeps the health shape.
#[derive(Debug, thiserror::Error)]
#[error("the store does not answer")]
struct HealthDown;

impl actix_web::ResponseError for HealthDown {
    fn status_code(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }

    fn error_response(&self) -> actix_web::HttpResponse {
        actix_web::HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "ok": false,
            "timestamp": chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "store": crate::store::StoreState::Unavailable,
        }))
    }
}

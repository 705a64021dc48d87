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
use actix_web::{web, ResponseError};

use super::error::{ApiError, FILES_UNAVAILABLE, REDIS_UNAVAILABLE};
use super::html::DashboardError;
use crate::store::StoreProbe;

pub async fn answer_store_failures(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let request = req.request().clone();
    let redis = req
        .app_data::<web::Data<StoreProbe>>()
        .is_some_and(|probe| probe.is_redis());
    match next.call(req).await {
        Ok(response) => Ok(response.map_into_boxed_body()),
        Err(err) if err.as_response_error().status_code() == StatusCode::INTERNAL_SERVER_ERROR => {
            let api = request.path() == "/api" || request.path().starts_with("/api/");
            let response = if api {
                tracing::error!(error = %err, "the session store could not be used");
                ApiError::StoreUnavailable(if redis {
                    REDIS_UNAVAILABLE
                } else {
                    FILES_UNAVAILABLE
                })
                .error_response()
            } else {
                DashboardError::Storage {
                    what: "reading or saving the session",
                    detail: err.to_string(),
                    redis,
                }
                .error_response()
            };
            Ok(ServiceResponse::new(request, response))
        }
        Err(err) => Err(err),
    }
}

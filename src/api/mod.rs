//! The JSON API (SPEC §5). Everything under `/api` but `/api/health` sits
//! behind the gate, so a route added here cannot be left open.

pub mod json;

use actix_web::middleware::from_fn;
use actix_web::{web, HttpResponse};
use chrono::{SecondsFormat, Utc};
use serde_json::json;

use crate::auth::gate::require_principal;
use crate::auth::Principal;
use crate::error::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/health")
            .route(web::get().to(health))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::scope("/api")
            .wrap(from_fn(require_principal))
            .service(
                web::resource("/me")
                    .route(web::get().to(me))
                    .default_service(web::to(method_not_allowed)),
            )
            .default_service(web::to(not_found)),
    );
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "ok": true,
        "timestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
    }))
}

async fn me(principal: Principal) -> HttpResponse {
    HttpResponse::Ok().json(principal)
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

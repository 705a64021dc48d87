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
use crate::{jobs, workspaces};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/health")
            .route(web::get().to(health))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::scope("/api")
            .wrap(from_fn(require_principal))
            .service(resource("/me").get(me))
            .configure(workspaces::api_routes)
            .configure(jobs::api_routes)
            .default_service(web::to(not_found)),
    );
}

/// A resource whose other methods answer 405 in the API's error shape.
pub fn resource(path: &str) -> ApiResource {
    ApiResource(web::resource(path).default_service(web::to(method_not_allowed)))
}

pub struct ApiResource(actix_web::Resource);

impl ApiResource {
    pub fn get<F, Args>(self, handler: F) -> Self
    where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        Self(self.0.route(web::get().to(handler)))
    }

    pub fn post<F, Args>(self, handler: F) -> Self
    where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        Self(self.0.route(web::post().to(handler)))
    }

    pub fn delete<F, Args>(self, handler: F) -> Self
    where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        Self(self.0.route(web::delete().to(handler)))
    }
}

impl actix_web::dev::HttpServiceFactory for ApiResource {
    fn register(self, config: &mut actix_web::dev::AppService) {
        self.0.register(config);
    }
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

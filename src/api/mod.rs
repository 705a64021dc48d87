//! The JSON API (SPEC §5). Everything under `/api` but `/api/health`,
//! `/api/openapi.json` and `/api/docs` sits behind the gate (the areas add
//! their routes only through `GatedRoutes`, the gated part of the one
//! service at `/api`, `routes.rs`), so a route added here cannot be left
//! open.
//! Layer 4 (README, "The module map"): uses `http` and the domain areas,
//! never `dashboard`.

pub mod health;
pub mod jobs;
pub mod key_usage;
pub mod keys;
pub mod metrics;
pub mod openapi;
mod routes;
pub mod schemas;
pub mod workspaces;

use actix_web::body::BoxBody;
use actix_web::http::header::{HeaderValue, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{web, HttpResponse};

use crate::auth::Principal;
use crate::http::ApiError;
use routes::Api;
pub use routes::{resource, ApiResource, GatedRoutes};

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Health first and on its own, routed by actix; the rest of `/api` is
    // one service (`routes.rs`): the public resources, then the gate.
    cfg.service(
        web::resource("/api/health")
            .route(web::get().to(health::health))
            .default_service(web::to(method_not_allowed)),
    )
    .service(Api {
        public: vec![
            resource("/openapi.json").get(openapi_json),
            resource("/docs").get(docs_page),
        ],
        gated: {
            let mut gated = GatedRoutes::default();
            gated.service(resource("/me").get(me));
            keys::api_routes(&mut gated);
            key_usage::api_routes(&mut gated);
            workspaces::api_routes(&mut gated);
            jobs::api_routes(&mut gated);
            gated
        },
    });
}

/// Who the caller is.
#[utoipa::path(get, path = "/api/me", tag = "meta",
    responses(
        (status = 200, description = "The principal", body = Principal),
        (status = 401, description = "No or a bad key", body = schemas::ErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = [])))]
pub(crate) async fn me(principal: Principal) -> Result<HttpResponse, ApiError> {
    let body = principal_body(&principal).map_err(|err| ApiError::Unexpected(err.into()))?;
    // The response and its one header made directly: no builder, and a
    // static header value rather than one printed from a `Mime`.
    let mut response = HttpResponse::with_body(StatusCode::OK, BoxBody::new(body));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// The principal's JSON (`Principal::write_json`: serde_json's bytes, its
/// fixed field names not escaped one by one) in one exact-size allocation:
/// written on the stack and copied once, through a `Vec` only when longer.
fn principal_body(principal: &Principal) -> serde_json::Result<Bytes> {
    let mut stack = StackBuf {
        bytes: [0; 384],
        len: 0,
    };
    if principal.write_json(&mut stack).is_ok() {
        return Ok(Bytes::copy_from_slice(&stack.bytes[..stack.len]));
    }
    let mut body = Vec::with_capacity(1024);
    principal.write_json(&mut body)?;
    Ok(Bytes::from(body))
}

/// Bytes on the stack, up to `N`: a write past the end fails whole.
struct StackBuf<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> std::io::Write for StackBuf<N> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.write_all(data).map(|()| data.len())
    }

    #[inline]
    fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        let end = self.len + data.len();
        let slot = self
            .bytes
            .get_mut(self.len..end)
            .ok_or(std::io::ErrorKind::WriteZero)?;
        slot.copy_from_slice(data);
        self.len = end;
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// This document, generated from the code.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub(crate) async fn openapi_json() -> HttpResponse {
    openapi::json_response()
}

/// A page that renders this document, with Portico's own assets.
#[utoipa::path(get, path = "/api/docs", tag = "meta",
    responses((status = 200, description = "An HTML page", content_type = "text/html")))]
pub(crate) async fn docs_page() -> HttpResponse {
    openapi::docs_response()
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::auth::{Role, Scope};

    #[test]
    fn the_body_of_me_is_serde_jsons_whether_it_fits_on_the_stack_or_not() {
        let mut principal = Principal::client_key("0123456789ab");
        for workspaces in [0, 1, 20, 200] {
            let mut scope = Scope::for_role(Role::Client);
            scope.workspaces = Some((0..workspaces).map(|i| format!("w\"{i}")).collect());
            principal.scope = Arc::new(scope);
            assert_eq!(
                principal_body(&principal).unwrap(),
                serde_json::to_vec(&principal).unwrap(),
                "{workspaces} workspaces"
            );
        }
    }
}

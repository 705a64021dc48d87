//! The JSON API (SPEC §5). Everything under `/api` but `/api/health`,
//! `/api/openapi.json` and `/api/docs` sits behind the gate (the areas add
//! their routes only through `GatedRoutes`, inside the gated scope), so a
//! route added here cannot be left open.
//! Layer 4 (README, "The module map"): uses `http` and the domain areas,
//! never `dashboard`.

pub mod health;
pub mod jobs;
pub mod key_usage;
pub mod keys;
pub mod metrics;
pub mod openapi;
pub mod schemas;
pub mod workspaces;

use actix_web::body::BoxBody;
use actix_web::http::header::{HeaderValue, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{web, HttpResponse};

use crate::auth::Principal;
use crate::http::gate::RequirePrincipal;
use crate::http::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/health")
            .route(web::get().to(health::health))
            .default_service(web::to(method_not_allowed)),
    )
    .service(public_resource("/api/openapi.json").route(web::get().to(openapi_json)))
    .service(public_resource("/api/docs").route(web::get().to(docs_page)))
    .service(
        web::scope("/api")
            .wrap(RequirePrincipal)
            .configure(|cfg| {
                let mut gated = GatedRoutes(cfg);
                gated.service(resource("/me").get(me));
                keys::api_routes(&mut gated);
                key_usage::api_routes(&mut gated);
                workspaces::api_routes(&mut gated);
                jobs::api_routes(&mut gated);
            })
            .default_service(web::to(not_found)),
    );
}

/// Where the API's areas add their routes: inside the gated scope, and only
/// as `ApiResource`s, whose other methods answer 405 in the API's shape.
/// (Registering each resource at the application's level with the gate
/// around it instead saved about 1,100 instructions per API request, but
/// every other request then tried the API's patterns first: about 8,800
/// more for `/login`, 8,000 for `/metrics`; README, "Performance".)
pub struct GatedRoutes<'a>(&'a mut web::ServiceConfig);

impl GatedRoutes<'_> {
    pub fn service(&mut self, resource: ApiResource) -> &mut Self {
        self.0.service(resource);
        self
    }
}

/// A resource of the gated scope (`path` after `/api`) whose other methods
/// answer 405 in the API's error shape.
pub fn resource(path: &str) -> ApiResource {
    ApiResource(public_resource(path))
}

fn public_resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
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

    pub fn patch<F, Args>(self, handler: F) -> Self
    where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        Self(self.0.route(web::patch().to(handler)))
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

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
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

//! The `Host` check on every request but `/api/health` (SPEC §1.1): a name
//! that is not Portico's gets 421, so a page on another site cannot rebind
//! its DNS name to this server and read it with the user's browser.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::Next;
use actix_web::web;

use super::html::error_page_with_link;
use super::site::Site;
use super::ApiError;

/// Open to any name: container and load-balancer probes use the pod's
/// address, and the answer reveals nothing.
const OPEN_PATH: &str = "/api/health";

pub async fn require_known_host(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let state = req
        .app_data::<web::Data<Site>>()
        .cloned()
        .expect("the site state is registered");
    // HTTP/1.0 requests may lack the header; browsers always send it.
    let host = req
        .headers()
        .get(header::HOST)
        .map(|value| value.to_str().unwrap_or("?").to_owned());
    let known = host
        .as_deref()
        .is_none_or(|host| state.public_url.accepts_host(host));
    if known || req.path() == OPEN_PATH {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let host = host.unwrap_or_default();
    tracing::warn!(
        host = %host.escape_debug(),
        accepted = ?state.public_url.names(),
        path = %req.path().escape_debug(),
        "refused a request for a host name that is not Portico's"
    );
    if req.path().starts_with("/api/") {
        return Ok(req.error_response(ApiError::UnknownHost(host)));
    }
    let message = format!(
        "This Portico answers to {} only, not to '{host}'. Open {} instead; if you \
         reach Portico through another name, set PUBLIC_URL to that address.",
        state.public_url.names().join(", "),
        state.public_url.origin(),
    );
    let page = error_page_with_link(
        StatusCode::MISDIRECTED_REQUEST,
        "Unknown host name",
        &message,
        state.public_url.origin(),
        &format!("Open {}", state.public_url.origin()),
    );
    Ok(req.into_response(page))
}

//! The guard on every logged-in page and form: a valid session or a
//! redirect to `/login`; and for every state-changing request, a same-site
//! `Origin` and the session's CSRF token, or 403 with nothing changed.
//! Before any of it, `ALLOWED_IPS` for every page outside `/api`.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use std::future::{ready, Ready};

use super::html::{redirect, Nav, CURRENT_NAV};
use super::origin::is_same_origin;
use super::refusal_pages::{foreign_origin_page, ip_not_allowed_page, stale_form_page};
use super::site::Site;
use crate::auth::session::{self, LoggedIn};
use crate::core::address::client_address;
use crate::core::secrets_match;

const CSRF_FIELD: &str = "csrf_token";

/// `ALLOWED_IPS` covers the dashboard too (SPEC §2): setup, login, every
/// page and form, unknown URLs. Wrapped around the whole application; `/api`
/// is left to its gate (which answers in JSON and keeps `/api/health` open),
/// and the stylesheet stays reachable so the refusal page has its look.
pub async fn require_allowed_address(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let path = req.path();
    let exempt = path == "/api" || path.starts_with("/api/") || path.starts_with("/static/");
    if !exempt {
        let state = req
            .app_data::<web::Data<Site>>()
            .cloned()
            .expect("the site state is registered");
        if !state.allowlist.allows_all() {
            let addr = client_address(req.peer_addr(), req.headers(), &state.trusted_proxies);
            if !state.allowlist.allows(addr) {
                tracing::info!(
                    target: "portico::auth",
                    outcome = "denied",
                    code = "ip-not-allowed",
                    client = %addr,
                    method = req.method().as_str(),
                    path = req.path(),
                    "dashboard request"
                );
                return Ok(req.into_response(ip_not_allowed_page()));
            }
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

pub async fn require_login(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let state = req
        .app_data::<web::Data<Site>>()
        .cloned()
        .expect("the site state is registered");
    let logged_in = match session::current(&req, &state.users).await {
        Ok(Some(logged_in)) => logged_in,
        Ok(None) => return Ok(req.into_response(redirect("/login"))),
        Err(err) => {
            let page = super::html::storage_failure("reading the users", &err.into());
            return Ok(req.into_response(page));
        }
    };
    if !matches!(req.method().as_str(), "GET" | "HEAD") {
        let body = req.extract::<web::Bytes>().await?;
        let token = form_urlencoded::parse(&body)
            .find(|(name, _)| name == CSRF_FIELD)
            .map(|(_, value)| value.into_owned());
        let token_ok = token.is_some_and(|token| {
            secrets_match(
                &token,
                &secrecy::SecretString::from(logged_in.csrf_token.clone()),
            )
        });
        if !is_same_origin(req.headers(), &state.public_url, false) {
            let page = foreign_origin_page(&state.public_url, req.headers());
            return Ok(req.into_response(page));
        }
        if !token_ok {
            tracing::warn!(path = %req.path(), "refused a form without a valid CSRF token");
            return Ok(req.into_response(stale_form_page()));
        }
        req.set_payload(Payload::from(body));
    }
    let nav = Nav {
        username: logged_in.user.username.clone(),
        csrf_token: logged_in.csrf_token.clone(),
        active: "",
    };
    req.extensions_mut().insert(logged_in);
    // Error pages rendered while handling this request show the nav bar.
    let response = CURRENT_NAV.scope(nav, next.call(req)).await?;
    Ok(response.map_into_boxed_body())
}

impl FromRequest for LoggedIn {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<LoggedIn>()
                .cloned()
                .ok_or_else(|| actix_web::error::ErrorInternalServerError("Internal server error")),
        )
    }
}

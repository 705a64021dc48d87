//! The server-rendered dashboard (SPEC §6): first-run setup, login and
//! logout, the overview and Account Security. Everything works without
//! JavaScript; every page under `/dashboard` needs a valid session.

mod guard;
mod jobs;
mod login;
mod pages;
mod security;
mod setup;
mod workspaces;

use std::sync::Arc;

use actix_web::http::header::{self, CacheDirective};
use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{web, HttpResponse};
use askama::Template;
use secrecy::SecretString;

use crate::auth::activity::ActivityLog;
use crate::auth::address::TrustedProxies;
use crate::auth::dashboard_keys::KeyStore;
use crate::auth::rate_limit::WindowCounter;
use crate::auth::session_store::FileSessionStore;
use crate::auth::users::UserStore;
use crate::config::PublicUrl;

pub use guard::require_login;
pub use jobs::markdown_to_safe_html;
pub use login::MAX_FAILED_LOGINS;

/// The largest form the dashboard reads (a question is at most 32 KiB).
const FORM_LIMIT: usize = 64 * 1024;

/// What the dashboard's handlers share.
#[derive(Debug)]
pub struct DashboardState {
    pub public_url: PublicUrl,
    pub trusted_proxies: TrustedProxies,
    pub setup_token: SecretString,
    pub users: Arc<UserStore>,
    pub keys: Arc<KeyStore>,
    pub sessions: FileSessionStore,
    pub activity: Arc<ActivityLog>,
    /// Failed logins per user name and per address, and wrong setup
    /// tokens per address (the same address key as logins).
    pub login_failures: WindowCounter,
    pub admin_key_configured: bool,
    pub client_key_count: usize,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::FormConfig::default()
            .limit(FORM_LIMIT)
            .error_handler(|err, _| {
                let page = error_page(
                    StatusCode::BAD_REQUEST,
                    "The form could not be read",
                    "A field is missing or too long. Go back, reload the page and try again.",
                );
                actix_web::error::InternalError::from_response(err, page).into()
            }),
    )
    .route("/", web::get().to(pages::root))
    .service(
        web::resource("/setup")
            .route(web::get().to(setup::form))
            .route(web::post().to(setup::submit)),
    )
    .service(
        web::resource("/login")
            .route(web::get().to(login::form))
            .route(web::post().to(login::submit)),
    )
    .service(
        web::resource("/logout")
            .wrap(from_fn(require_login))
            .route(web::post().to(login::logout)),
    )
    .service(
        web::scope("/dashboard")
            .wrap(from_fn(require_login))
            .route("", web::get().to(pages::overview))
            .route("/ask", web::post().to(jobs::ask))
            .route("/jobs/{id}", web::get().to(jobs::job))
            .route("/queue", web::get().to(jobs::queue_page))
            .route("/workspaces", web::get().to(workspaces::page))
            .route("/workspaces", web::post().to(workspaces::add))
            .route(
                "/workspaces/{id}/remove",
                web::post().to(workspaces::remove),
            )
            .route("/security", web::get().to(security::page))
            .route("/security/keys", web::post().to(security::generate))
            .route(
                "/security/keys/{id}/revoke",
                web::post().to(security::revoke),
            )
            .route(
                "/security/password",
                web::post().to(security::change_password),
            )
            .default_service(web::to(pages::not_found)),
    );
}

/// The navigation bar of a logged-in page.
#[derive(Debug, Clone)]
pub struct Nav {
    pub username: String,
    pub csrf_token: String,
    pub active: &'static str,
}

/// A one-time message at the top of a page.
#[derive(Debug, Clone)]
pub struct Flash {
    pub kind: &'static str,
    pub message: String,
}

impl Flash {
    pub fn error(message: impl Into<String>) -> Option<Self> {
        Some(Self {
            kind: "error",
            message: message.into(),
        })
    }

    pub fn success(message: impl Into<String>) -> Option<Self> {
        Some(Self {
            kind: "success",
            message: message.into(),
        })
    }
}

/// Renders a page with `status`; pages are never cached, since some carry
/// a CSRF token or a key shown once.
pub fn render(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(html) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header(header::CacheControl(vec![CacheDirective::NoStore]))
            .body(html),
        Err(err) => {
            tracing::error!(error = %err, "a page failed to render");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("Internal server error")
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    nav: Option<Nav>,
    flash: Option<Flash>,
    title: &'a str,
    message: &'a str,
    back_href: &'a str,
    back_label: &'a str,
}

/// A page that says what went wrong and where to go next.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    render(
        status,
        &ErrorPage {
            nav: None,
            flash: None,
            title,
            message,
            back_href: "/dashboard",
            back_label: "Back to the dashboard",
        },
    )
}

/// The 403 page for a form from another origin: says which origin Portico
/// expects, since opening it under another name (localhost for 127.0.0.1)
/// is the usual cause.
pub fn foreign_origin_page(public_url: &PublicUrl) -> HttpResponse {
    error_page(
        StatusCode::FORBIDDEN,
        "Request refused",
        &format!(
            "This form was not sent from a page of this Portico, or it has expired. \
             Open Portico at {} and try again; if that is not the address you use, \
             set PUBLIC_URL to it.",
            public_url.origin()
        ),
    )
}

pub fn redirect(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header(header::CacheControl(vec![CacheDirective::NoStore]))
        .finish()
}

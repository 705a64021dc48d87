//! The server-rendered dashboard (SPEC §6): first-run setup, login and
//! logout, the overview and Account Security. Everything works without
//! JavaScript; every page under `/dashboard` needs a valid session.

mod confirm;
mod guard;
mod host_check;
mod jobs;
mod key_scope;
mod login;
mod one_time;
mod pages;
mod second_step;
mod security;
mod setup;
mod two_factor;
mod workspaces;

use std::sync::Arc;

use actix_web::http::header::{self, CacheDirective, HeaderMap};
use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{web, HttpResponse};
use askama::Template;
use secrecy::SecretString;

use crate::auth::activity::ActivityLog;
use crate::auth::address::{IpAllowlist, TrustedProxies};
use crate::auth::dashboard_keys::Keys;
use crate::auth::rate_limit::WindowCounter;
use crate::auth::session_store::SessionPurge;
use crate::auth::totp::SecretCipher;
use crate::auth::users::Users;
use crate::config::PublicUrl;

pub use guard::{require_allowed_address, require_login};
pub use host_check::require_known_host;
pub use jobs::markdown_to_safe_html;
pub use login::MAX_FAILED_LOGINS;
pub use second_step::MAX_WRONG_CODES;

/// The largest form the dashboard reads (a question is at most 32 KiB).
const FORM_LIMIT: usize = 64 * 1024;

/// What the dashboard's handlers share.
#[derive(Debug)]
pub struct DashboardState {
    pub public_url: PublicUrl,
    pub trusted_proxies: TrustedProxies,
    pub allowlist: IpAllowlist,
    pub setup_token: SecretString,
    pub users: Arc<Users>,
    pub keys: Arc<Keys>,
    pub sessions: Arc<dyn SessionPurge>,
    pub activity: Arc<ActivityLog>,
    /// Failed logins per user name and per address, and wrong setup
    /// tokens per address (the same address key as logins).
    pub login_failures: WindowCounter,
    /// Second-step attempts per user (every attempt counts, reserved
    /// before the code is checked).
    pub second_step_failures: WindowCounter,
    pub totp_cipher: SecretCipher,
    pub admin_key_configured: bool,
    pub client_key_count: usize,
    /// Generated keys waiting for their one display.
    pub one_time_keys: one_time::OneTimeKeys,
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
        web::resource("/login/code")
            .route(web::get().to(second_step::second_step_form))
            .route(web::post().to(second_step::second_step_submit)),
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
            .route("/jobs/{id}/cancel", web::post().to(jobs::cancel))
            .route("/queue", web::get().to(jobs::queue_page))
            .route("/workspaces", web::get().to(workspaces::page))
            .route("/workspaces", web::post().to(workspaces::add))
            .route(
                "/workspaces/{id}/remove",
                web::get().to(workspaces::confirm_remove),
            )
            .route(
                "/workspaces/{id}/remove",
                web::post().to(workspaces::remove),
            )
            .route("/security", web::get().to(security::page))
            .route("/security/keys", web::post().to(security::generate))
            .route(
                "/security/keys/{id}/revoke",
                web::get().to(security::confirm_revoke),
            )
            .route(
                "/security/keys/{id}/revoke",
                web::post().to(security::revoke),
            )
            .route(
                "/security/keys/{id}/roll",
                web::get().to(security::confirm_roll),
            )
            .route("/security/keys/{id}/roll", web::post().to(security::roll))
            .route("/security/keys/{id}/scope", web::get().to(key_scope::form))
            .route("/security/keys/{id}/scope", web::post().to(key_scope::save))
            .route(
                "/security/password",
                web::post().to(security::change_password),
            )
            .configure(two_factor::configure)
            .default_service(web::to(pages::not_found)),
    )
    .route("/favicon.ico", web::get().to(pages::favicon))
    .default_service(web::to(pages::not_found_anywhere));
}

/// The navigation bar of a logged-in page.
#[derive(Debug, Clone)]
pub struct Nav {
    pub username: String,
    pub csrf_token: String,
    pub active: &'static str,
}

tokio::task_local! {
    /// The nav bar of the logged-in request being handled, if any.
    static CURRENT_NAV: Nav;
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
    error_page_with_link(
        status,
        title,
        message,
        "/dashboard",
        "Back to the dashboard",
    )
}

/// An error page whose link leads somewhere other than the dashboard.
pub fn error_page_with_link(
    status: StatusCode,
    title: &str,
    message: &str,
    back_href: &str,
    back_label: &str,
) -> HttpResponse {
    render(
        status,
        &ErrorPage {
            nav: CURRENT_NAV.try_with(Nav::clone).ok(),
            flash: None,
            title,
            message,
            back_href,
            back_label,
        },
    )
}

/// The 403 page for an address outside `ALLOWED_IPS`.
pub fn ip_not_allowed_page() -> HttpResponse {
    error_page_with_link(
        StatusCode::FORBIDDEN,
        "Access denied from this IP address",
        "This Portico only answers the addresses in its ALLOWED_IPS setting, \
         and yours is not one of them. Connect from an allowed network, or \
         ask its administrator to add your address.",
        "/",
        "Try again",
    )
}

/// The 403 page for a form from another origin: says where the form came
/// from and which addresses Portico accepts, logs the refusal, and links to
/// the address to use.
pub fn foreign_origin_page(public_url: &PublicUrl, headers: &HeaderMap) -> HttpResponse {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let why = if header("sec-fetch-site") == Some("cross-site") {
        "your browser reports that it was sent from another site".to_owned()
    } else if let Some(origin) = header("origin") {
        format!("it was sent from a page at {origin}")
    } else if let Some(referer) = header("referer") {
        format!("it was sent from the page {referer}")
    } else {
        "it carried neither an Origin nor a Referer header (a privacy extension may remove \
         them), so Portico cannot tell where it came from"
            .to_owned()
    };
    tracing::warn!(
        reason = %why.escape_debug(),
        accepted = %public_url.describe(),
        "refused a form from another origin"
    );
    error_page_with_link(
        StatusCode::FORBIDDEN,
        "Form refused: wrong address",
        &format!(
            "Portico refused this form because {why}. It accepts forms only from {}. \
             Open Portico at {} and send the form again; if you reach Portico through \
             another address, set PUBLIC_URL to it.",
            public_url.describe(),
            public_url.origin()
        ),
        public_url.origin(),
        &format!("Open {}", public_url.origin()),
    )
}

/// The 403 page for a logged-in form whose CSRF token is missing or stale.
pub fn stale_form_page() -> HttpResponse {
    error_page(
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form's security token is missing or belongs to an earlier login (the page \
         was opened before you logged in again). Nothing was changed: reload the page and \
         send the form again.",
    )
}

pub fn redirect(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header(header::CacheControl(vec![CacheDirective::NoStore]))
        .finish()
}

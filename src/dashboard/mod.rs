//! The server-rendered dashboard (SPEC §6): first-run setup, login and
//! logout, the overview and Account Security. Everything works without
//! JavaScript; every page under `/dashboard` needs a valid session.
//! Layer 4 (README, "The module map"): uses `http` and the domain areas,
//! never `api`.

mod confirm;
mod guard;
mod host_check;
mod job_rows;
mod jobs;
mod key_scope;
mod login;
mod one_time;
mod pages;
mod second_step;
mod security;
mod setup;
mod state;
mod two_factor;
mod workspaces;

use actix_web::http::header::HeaderMap;
use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{web, HttpResponse};

use crate::config::PublicUrl;

pub use crate::http::html::{
    error_page, error_page_with_link, redirect, render, DashboardError, Flash, Nav,
};
pub use guard::{require_allowed_address, require_login};
pub use host_check::require_known_host;
pub use jobs::markdown_to_safe_html;
pub use login::MAX_FAILED_LOGINS;
pub use second_step::MAX_WRONG_CODES;
pub use state::{Accounts, KeyPages, Overview, Site, WorkspacePages};

/// The largest form the dashboard reads (a question is at most 32 KiB).
const FORM_LIMIT: usize = 64 * 1024;

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

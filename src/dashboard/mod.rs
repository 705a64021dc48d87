//! The server-rendered dashboard (SPEC §6): first-run setup, login and
//! logout, the overview and Account Security. Everything works without
//! JavaScript; every page under `/dashboard` needs a valid session.
//! Layer 4 (README, "The module map"): uses `http` and the domain areas,
//! never `api`.

mod confirm;
mod job_rows;
mod jobs;
mod key_scope;
mod key_usage;
mod login;
mod one_time;
mod pages;
mod second_step;
mod security;
mod setup;
mod state;
mod two_factor;
mod usage_chart;
mod workspaces;

use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::web;

use crate::http::dashboard_guard::require_login;

pub use crate::http::html::{
    error_page, error_page_with_link, redirect, render, storage_failure, DashboardError, Flash, Nav,
};
pub use crate::http::refusal_pages::foreign_origin_page;
pub use jobs::markdown_to_safe_html;
pub use login::{user_failures_key, MAX_FAILED_LOGINS};
pub use one_time::OneTimeKeys;
pub use second_step::MAX_WRONG_CODES;
pub use state::{Accounts, KeyPages, Overview, WorkspacePages};

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
            .route("/security/keys/{id}/usage", web::get().to(key_usage::page))
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

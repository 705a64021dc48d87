//! The confirmation step before a destructive form, without JavaScript:
//! the list links to a page that names the item and holds the real form.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use askama::Template;

use super::pages::nav;
use super::{render, Flash, Nav};
use crate::auth::session::LoggedIn;

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage<'a> {
    nav: Option<Nav>,
    flash: Option<Flash>,
    csrf_token: &'a str,
    title: &'a str,
    message: &'a str,
    action: &'a str,
    button: &'a str,
    cancel_href: &'a str,
}

/// What the confirmation page asks, and where its form goes.
pub struct Confirm<'a> {
    pub active: &'static str,
    pub title: &'a str,
    pub message: &'a str,
    pub action: &'a str,
    pub button: &'a str,
    pub cancel_href: &'a str,
}

pub fn confirm_page(logged_in: &LoggedIn, confirm: Confirm<'_>) -> HttpResponse {
    render(
        StatusCode::OK,
        &ConfirmPage {
            nav: Some(nav(logged_in, confirm.active)),
            flash: None,
            csrf_token: &logged_in.csrf_token,
            title: confirm.title,
            message: confirm.message,
            action: confirm.action,
            button: confirm.button,
            cancel_href: confirm.cancel_href,
        },
    )
}

//! The overview page and the dashboard's fallbacks.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;

use super::{error_page, redirect, render, DashboardState, Flash, Nav};
use crate::auth::session::{self, LoggedIn};

#[derive(Template)]
#[template(path = "dashboard.html")]
struct OverviewPage {
    nav: Option<Nav>,
    flash: Option<Flash>,
    key_count: usize,
    admin_key_configured: bool,
    client_key_count: usize,
    public_url: String,
}

/// `/`: the dashboard when logged in, else setup or login.
pub async fn root(session: Session, state: web::Data<DashboardState>) -> HttpResponse {
    if !state.users.has_users() {
        redirect("/setup")
    } else if session::current(&session, &state.users).is_some() {
        redirect("/dashboard")
    } else {
        redirect("/login")
    }
}

pub async fn overview(
    logged_in: LoggedIn,
    session: Session,
    state: web::Data<DashboardState>,
) -> HttpResponse {
    render(
        StatusCode::OK,
        &OverviewPage {
            nav: Some(nav(&logged_in, "overview")),
            flash: session::take_flash(&session).and_then(Flash::success),
            key_count: state.keys.len(),
            admin_key_configured: state.admin_key_configured,
            client_key_count: state.client_key_count,
            public_url: state.public_url.origin().to_owned(),
        },
    )
}

pub async fn not_found() -> HttpResponse {
    error_page(
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is no such page in the dashboard.",
    )
}

pub fn nav(logged_in: &LoggedIn, active: &'static str) -> Nav {
    Nav {
        username: logged_in.user.username.clone(),
        csrf_token: logged_in.csrf_token.clone(),
        active,
    }
}

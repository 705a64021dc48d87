//! The overview page and the dashboard's fallbacks.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::job_rows::{queue_unavailable, rows, JobRow};
use super::storage_failure;
use super::{error_page, redirect, render, Flash, Nav, Overview};
use crate::auth::session::{self, LoggedIn};
use crate::jobs::{JobStore, QueueCounts};
use crate::workspaces::{Registry, Workspace};

const OVERVIEW_JOBS: usize = 10;

#[derive(Template)]
#[template(path = "dashboard.html")]
struct OverviewPage {
    nav: Option<Nav>,
    flash: Option<Flash>,
    csrf_token: String,
    workspaces: Vec<Workspace>,
    counts: QueueCounts,
    jobs: Vec<JobRow>,
    key_count: usize,
    admin_key_configured: bool,
    client_key_count: usize,
    public_url: String,
    ask: AskInput,
}

/// What the ask form showed; kept when the question is refused.
#[derive(Default)]
pub struct AskInput {
    pub workspace_id: String,
    pub source_branch: String,
    pub question: String,
}

/// `/`: the dashboard when logged in, else setup or login.
pub async fn root(req: HttpRequest, state: web::Data<Overview>) -> HttpResponse {
    match state.users.has_users().await {
        Ok(true) => {}
        Ok(false) => return redirect("/setup"),
        Err(err) => return storage_failure("reading the users", &err.into()),
    }
    match session::current(&req, &state.users).await {
        Ok(Some(_)) => redirect("/dashboard"),
        Ok(None) => redirect("/login"),
        Err(err) => storage_failure("reading the users", &err.into()),
    }
}

pub async fn overview(
    logged_in: LoggedIn,
    session: Session,
    state: web::Data<Overview>,
    queue: web::Data<dyn JobStore>,
    registry: web::Data<Registry>,
) -> HttpResponse {
    let flash = session::take_flash(&session).and_then(Flash::success);
    overview_page(
        StatusCode::OK,
        &logged_in,
        &state,
        queue.get_ref(),
        &registry,
        flash,
        AskInput::default(),
    )
    .await
}

/// The overview, also shown again with the ask form's input and an error.
pub async fn overview_page(
    status: StatusCode,
    logged_in: &LoggedIn,
    state: &Overview,
    queue: &dyn JobStore,
    registry: &Registry,
    flash: Option<Flash>,
    ask: AskInput,
) -> HttpResponse {
    let (mut recent, counts) = match (queue.list(&|_| true).await, queue.counts(&|_| true).await) {
        (Ok(recent), Ok(counts)) => (recent, counts),
        (Err(err), _) | (_, Err(err)) => return queue_unavailable(&err),
    };
    recent.truncate(OVERVIEW_JOBS);
    let workspaces = match registry.list().await {
        Ok(workspaces) => workspaces,
        Err(err) => return storage_failure("reading the workspaces", &err.into()),
    };
    let key_count = match state.keys.count().await {
        Ok(count) => count,
        Err(err) => return storage_failure("reading the keys", &err.into()),
    };
    render(
        status,
        &OverviewPage {
            nav: Some(nav(logged_in, "overview")),
            flash,
            csrf_token: logged_in.csrf_token.clone(),
            counts,
            jobs: rows(&recent, &workspaces),
            workspaces,
            key_count,
            admin_key_configured: state.admin_key_configured,
            client_key_count: state.client_key_count,
            public_url: state.public_url.origin().to_owned(),
            ask,
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

/// Any other unknown address: a styled 404, with the nav bar when logged in.
pub async fn not_found_anywhere(req: HttpRequest, state: web::Data<Overview>) -> HttpResponse {
    let page = || {
        error_page(
            StatusCode::NOT_FOUND,
            "Page not found",
            "There is no page at this address. Check the link, or start from the dashboard.",
        )
    };
    match session::current(&req, &state.users).await {
        Ok(Some(logged_in)) => crate::http::html::CURRENT_NAV.sync_scope(nav(&logged_in, ""), page),
        Ok(None) => page(),
        Err(err) => storage_failure("reading the users", &err.into()),
    }
}

/// Browsers ask for `/favicon.ico` on their own; the icon is an SVG.
pub async fn favicon() -> HttpResponse {
    redirect("/static/favicon.svg")
}

pub fn nav(logged_in: &LoggedIn, active: &'static str) -> Nav {
    Nav {
        username: logged_in.user.username.clone(),
        csrf_token: logged_in.csrf_token.clone(),
        active,
    }
}

//! The Workspaces page: list, add (a directory or a repository to clone)
//! and remove.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::pages::nav;
use super::{error_page, redirect, render, DashboardState, Flash, Nav};
use crate::auth::activity::AccountAction;
use crate::auth::address::client_address;
use crate::auth::session::{self, LoggedIn};
use crate::workspaces::{NewWorkspace, Registry, WorkspaceError};

struct WorkspaceRow {
    id: String,
    name: String,
    path: String,
    repo_url: String,
    branch: String,
}

#[derive(Template)]
#[template(path = "workspaces.html")]
struct WorkspacesPage {
    nav: Option<Nav>,
    flash: Option<Flash>,
    csrf_token: String,
    workspaces: Vec<WorkspaceRow>,
}

fn page_with(
    status: StatusCode,
    logged_in: &LoggedIn,
    registry: &Registry,
    flash: Option<Flash>,
) -> HttpResponse {
    let workspaces = registry
        .list()
        .into_iter()
        .map(|w| WorkspaceRow {
            id: w.id.as_str().to_owned(),
            name: w.name,
            path: w.path.display().to_string(),
            repo_url: w.repo_url.unwrap_or_default(),
            branch: w.target_branch.unwrap_or_default(),
        })
        .collect();
    render(
        status,
        &WorkspacesPage {
            nav: Some(nav(logged_in, "workspaces")),
            flash,
            csrf_token: logged_in.csrf_token.clone(),
            workspaces,
        },
    )
}

pub async fn page(
    logged_in: LoggedIn,
    session: Session,
    registry: web::Data<Registry>,
) -> HttpResponse {
    let flash = session::take_flash(&session).and_then(Flash::success);
    page_with(StatusCode::OK, &logged_in, &registry, flash)
}

#[derive(Deserialize)]
pub struct AddForm {
    name: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    repo_url: String,
    #[serde(default)]
    branch: String,
}

pub async fn add(
    req: HttpRequest,
    logged_in: LoggedIn,
    session: Session,
    state: web::Data<DashboardState>,
    registry: web::Data<Registry>,
    form: web::Form<AddForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let (path, repo_url, branch) = (form.path.trim(), form.repo_url.trim(), form.branch.trim());
    let request = match (path.is_empty(), repo_url.is_empty()) {
        (false, true) => NewWorkspace::Directory {
            name: form.name,
            path: path.to_owned(),
        },
        (true, false) => NewWorkspace::Clone {
            name: form.name,
            repo_url: repo_url.to_owned(),
            branch: Some(branch.to_owned()).filter(|b| !b.is_empty()),
        },
        _ => {
            let flash = Flash::error("Give either a directory or a repository URL.");
            return page_with(StatusCode::BAD_REQUEST, &logged_in, &registry, flash);
        }
    };
    match registry.add(request).await {
        Ok(workspace) => {
            let addr = client_address(req.peer_addr(), req.headers(), &state.trusted_proxies);
            state.activity.account(
                AccountAction::WorkspaceAdded,
                &logged_in.user.username,
                addr,
                Some(&workspace.name),
            );
            session::set_flash(
                &session,
                &format!("The workspace “{}” was added.", workspace.name),
            );
            redirect("/dashboard/workspaces")
        }
        Err(WorkspaceError::Invalid { field, message }) => {
            let flash = Flash::error(format!("{field}: {message}"));
            page_with(StatusCode::BAD_REQUEST, &logged_in, &registry, flash)
        }
        Err(WorkspaceError::Storage(err)) => {
            tracing::error!(error = format!("{err:#}"), "adding a workspace failed");
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Not saved",
                "Portico could not write to its data directory, so nothing was changed.",
            )
        }
    }
}

pub async fn remove(
    req: HttpRequest,
    logged_in: LoggedIn,
    session: Session,
    state: web::Data<DashboardState>,
    registry: web::Data<Registry>,
    id: web::Path<String>,
) -> HttpResponse {
    let name = registry.get(&id).map(|workspace| workspace.name);
    match registry.remove(&id).await {
        Ok(true) => {
            let addr = client_address(req.peer_addr(), req.headers(), &state.trusted_proxies);
            state.activity.account(
                AccountAction::WorkspaceRemoved,
                &logged_in.user.username,
                addr,
                name.as_deref(),
            );
            session::set_flash(&session, "The workspace was removed.");
            redirect("/dashboard/workspaces")
        }
        Ok(false) => error_page(
            StatusCode::NOT_FOUND,
            "No such workspace",
            "It may have been removed already.",
        ),
        Err(_) => error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Not saved",
            "Portico could not write to its data directory, so nothing was changed.",
        ),
    }
}

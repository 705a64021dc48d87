//! The Workspaces page: list, add (a directory or a repository to clone)
//! and remove.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::confirm::{confirm_page, Confirm};
use super::pages::nav;
use super::storage_failure;
use super::{redirect, render, DashboardError, Flash, Nav, WorkspacePages};
use crate::auth::activity::AccountAction;
use crate::auth::session::{self, LoggedIn};
use crate::core::address::client_address;
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
    form: AddForm,
}

async fn page_with(
    status: StatusCode,
    logged_in: &LoggedIn,
    registry: &Registry,
    flash: Option<Flash>,
    form: AddForm,
) -> HttpResponse {
    let workspaces = match registry.list().await {
        Ok(workspaces) => workspaces,
        Err(err) => return storage_failure("reading the workspaces", &err.into()),
    };
    let workspaces = workspaces
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
            form,
        },
    )
}

pub async fn page(
    logged_in: LoggedIn,
    session: Session,
    registry: web::Data<Registry>,
) -> HttpResponse {
    let flash = session::take_flash(&session).and_then(Flash::success);
    page_with(
        StatusCode::OK,
        &logged_in,
        &registry,
        flash,
        AddForm::default(),
    )
    .await
}

/// The add form's fields; kept when the form is refused.
#[derive(Deserialize, Default)]
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
    state: web::Data<WorkspacePages>,
    registry: web::Data<Registry>,
    form: web::Form<AddForm>,
) -> Result<HttpResponse, DashboardError> {
    let form = form.into_inner();
    let (path, repo_url, branch) = (form.path.trim(), form.repo_url.trim(), form.branch.trim());
    let request = match (path.is_empty(), repo_url.is_empty()) {
        (false, true) => NewWorkspace::Directory {
            name: form.name.clone(),
            path: path.to_owned(),
        },
        (true, false) => NewWorkspace::Clone {
            name: form.name.clone(),
            repo_url: repo_url.to_owned(),
            branch: Some(branch.to_owned()).filter(|b| !b.is_empty()),
        },
        _ => {
            let flash = Flash::error("Give either a directory or a repository URL.");
            return Ok(
                page_with(StatusCode::BAD_REQUEST, &logged_in, &registry, flash, form).await,
            );
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
            Ok(redirect("/dashboard/workspaces"))
        }
        Err(WorkspaceError::Invalid { field, message }) => {
            let flash = Flash::error(format!("{}: {message}", field_label(field)));
            Ok(page_with(StatusCode::BAD_REQUEST, &logged_in, &registry, flash, form).await)
        }
        Err(WorkspaceError::Storage(err)) => {
            Err(DashboardError::storage("adding a workspace", &err))
        }
    }
}

/// The form's name for a field the registry reports in API terms.
fn field_label(field: &str) -> &str {
    match field {
        "name" => "Name",
        "path" => "Directory on the server",
        "repoUrl" => "Repository URL",
        "branch" => "Branch",
        other => other,
    }
}

fn no_such_workspace() -> DashboardError {
    DashboardError::NotFound {
        title: "No such workspace",
        message: "It may have been removed already.",
    }
}

/// `GET …/remove`: asks before removing, naming the workspace and saying
/// whether its clone is deleted.
pub async fn confirm_remove(
    logged_in: LoggedIn,
    registry: web::Data<Registry>,
    id: web::Path<String>,
) -> Result<HttpResponse, DashboardError> {
    let workspace = match registry.get(&id).await {
        Ok(Some(workspace)) => workspace,
        Ok(None) => return Err(no_such_workspace()),
        Err(err) => {
            return Err(DashboardError::storage(
                "reading the workspaces",
                &err.into(),
            ))
        }
    };
    let what_happens = if workspace.repo_url.is_some() {
        "Its clone in the data directory is deleted."
    } else {
        "The directory itself is left untouched."
    };
    let message = format!(
        "Remove the workspace “{}” ({})? {what_happens} Its past jobs stay in the queue's history.",
        workspace.name,
        workspace.path.display()
    );
    Ok(confirm_page(
        &logged_in,
        Confirm {
            active: "workspaces",
            title: "Remove this workspace?",
            message: &message,
            action: &format!("/dashboard/workspaces/{}/remove", workspace.id.as_str()),
            button: &format!("Remove “{}”", workspace.name),
            cancel_href: "/dashboard/workspaces",
        },
    ))
}

pub async fn remove(
    req: HttpRequest,
    logged_in: LoggedIn,
    session: Session,
    state: web::Data<WorkspacePages>,
    registry: web::Data<Registry>,
    id: web::Path<String>,
) -> Result<HttpResponse, DashboardError> {
    let name = match registry.get(&id).await {
        Ok(workspace) => workspace.map(|w| w.name),
        Err(err) => {
            return Err(DashboardError::storage(
                "reading the workspaces",
                &err.into(),
            ))
        }
    };
    match registry.remove(&id).await {
        Ok(true) => {
            let name = name.unwrap_or_else(|| id.to_string());
            let addr = client_address(req.peer_addr(), req.headers(), &state.trusted_proxies);
            state.activity.account(
                AccountAction::WorkspaceRemoved,
                &logged_in.user.username,
                addr,
                Some(&name),
            );
            session::set_flash(&session, &format!("The workspace “{name}” was removed."));
            Ok(redirect("/dashboard/workspaces"))
        }
        Ok(false) => Err(no_such_workspace()),
        Err(err) => Err(DashboardError::storage(
            "removing a workspace",
            &anyhow::Error::new(err),
        )),
    }
}

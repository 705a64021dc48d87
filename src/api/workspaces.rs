//! `GET/POST /api/workspaces` and `DELETE /api/workspaces/{id}`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::resource;
use crate::auth::activity::{AccountAction, ActivityLog};
use crate::auth::{Gate, Permission, Principal};
use crate::core::address::client_address;
use crate::http::json::ApiJson;
use crate::http::ApiError;
use crate::workspaces::{NewWorkspace, Registry, Workspace, WorkspaceError};

pub fn api_routes(cfg: &mut super::GatedRoutes) {
    cfg.service(resource("/workspaces").get(list).post(create))
        .service(resource("/workspaces/{id}").delete(remove));
}

impl From<WorkspaceError> for ApiError {
    fn from(err: WorkspaceError) -> Self {
        match err {
            WorkspaceError::Invalid { field, message } => ApiError::invalid_field(field, message),
            WorkspaceError::Storage(err) => ApiError::storage(err),
        }
    }
}

#[utoipa::path(get, path = "/api/workspaces", tag = "workspaces",
    responses(
        (status = 200, description = "Every workspace in the caller's scope", body = Vec<Workspace>),
        (status = 401, description = "No or a bad key", body = super::schemas::ErrorBody),
        (status = 403, description = "The key's scope lacks workspaces:read", body = super::schemas::ErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = [])))]
pub(crate) async fn list(
    principal: Principal,
    registry: web::Data<Registry>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Permission::WorkspacesRead)?;
    let mut workspaces = registry.list().await?;
    workspaces.retain(|workspace| principal.reaches_workspace(workspace.id.as_str()));
    Ok(HttpResponse::Ok().json(workspaces))
}

/// Either `path` (an existing directory) or `repoUrl` (and `branch`) to clone.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CreateBody {
    name: String,
    path: Option<String>,
    repo_url: Option<String>,
    branch: Option<String>,
}

impl CreateBody {
    fn into_request(self) -> Result<NewWorkspace, ApiError> {
        match (self.path, self.repo_url) {
            (Some(path), None) if self.branch.is_none() => Ok(NewWorkspace::Directory {
                name: self.name,
                path,
            }),
            (Some(_), None) => Err(ApiError::invalid_field(
                "branch",
                "goes with repoUrl, not path",
            )),
            (None, Some(repo_url)) => Ok(NewWorkspace::Clone {
                name: self.name,
                repo_url,
                branch: self.branch,
            }),
            _ => Err(ApiError::bad_request(
                "Give either path (an existing directory) or repoUrl (a git repository to clone)",
                json!({ "path": "give path or repoUrl", "repoUrl": "give path or repoUrl" }),
            )),
        }
    }
}

/// Notes a workspace change in the audit trail, by the key's name.
fn record(req: &HttpRequest, principal: &Principal, action: AccountAction, name: Option<&str>) {
    let (Some(activity), Some(gate)) = (
        req.app_data::<web::Data<ActivityLog>>(),
        req.app_data::<web::Data<Gate>>(),
    ) else {
        return;
    };
    let addr = client_address(req.peer_addr(), req.headers(), gate.trusted_proxies());
    activity.account(action, &principal.name, addr, name);
}

#[utoipa::path(post, path = "/api/workspaces", tag = "workspaces", request_body = CreateBody,
    responses(
        (status = 201, description = "Registered", body = Workspace),
        (status = 400, description = "An invalid field, named in details", body = super::schemas::ErrorBody),
        (status = 401, description = "No or a bad key", body = super::schemas::ErrorBody),
        (status = 403, description = "Not an admin, or the key's scope lacks workspaces:write", body = super::schemas::ErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = [])))]
pub(crate) async fn create(
    req: HttpRequest,
    principal: Principal,
    registry: web::Data<Registry>,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Permission::WorkspacesWrite)?;
    // A key held to some workspaces cannot add others it would not reach.
    if principal.scope.workspaces.is_some() {
        return Err(ApiError::HeldToWorkspaces);
    }
    let workspace = registry.add(body.into_request()?).await?;
    tracing::info!(workspace = %workspace.id.as_str(), by = %principal.id, "a workspace was added");
    record(
        &req,
        &principal,
        AccountAction::WorkspaceAdded,
        Some(&workspace.name),
    );
    Ok(HttpResponse::Created().json(workspace))
}

#[utoipa::path(delete, path = "/api/workspaces/{id}", tag = "workspaces",
    params(("id" = String, Path, description = "The workspace id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No or a bad key", body = super::schemas::ErrorBody),
        (status = 403, description = "Not an admin, or the key's scope lacks workspaces:write", body = super::schemas::ErrorBody),
        (status = 404, description = "No such workspace", body = super::schemas::ErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = [])))]
pub(crate) async fn remove(
    req: HttpRequest,
    principal: Principal,
    registry: web::Data<Registry>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Permission::WorkspacesWrite)?;
    if !principal.reaches_workspace(&path) {
        return Err(ApiError::Missing("Workspace"));
    }
    let name = registry.get(&path).await?.map(|workspace| workspace.name);
    if registry.remove(&path).await? {
        record(
            &req,
            &principal,
            AccountAction::WorkspaceRemoved,
            name.as_deref(),
        );
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::Missing("Workspace"))
    }
}

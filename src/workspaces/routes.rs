//! `GET/POST /api/workspaces` and `DELETE /api/workspaces/{id}`.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::{NewWorkspace, Registry, WorkspaceError};
use crate::api::json::ApiJson;
use crate::api::resource;
use crate::auth::Principal;
use crate::error::ApiError;

pub fn api_routes(cfg: &mut web::ServiceConfig) {
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

async fn list(registry: web::Data<Registry>) -> HttpResponse {
    HttpResponse::Ok().json(registry.list())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateBody {
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

async fn create(
    principal: Principal,
    registry: web::Data<Registry>,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    principal.require_admin()?;
    let workspace = registry.add(body.into_request()?).await?;
    tracing::info!(workspace = %workspace.id.as_str(), by = %principal.id, "a workspace was added");
    Ok(HttpResponse::Created().json(workspace))
}

async fn remove(
    principal: Principal,
    registry: web::Data<Registry>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require_admin()?;
    if registry.remove(&path).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::Missing("Workspace"))
    }
}

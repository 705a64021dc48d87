//! `POST /api/ask`, `GET /api/jobs`, `GET/DELETE /api/jobs/{id}` and
//! `GET /api/queue/status`. A client sees only its own jobs; an admin all.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::resource;
use crate::auth::{Permission, Principal};
use crate::http::json::ApiJson;
use crate::http::ApiError;
use crate::jobs::{
    submit_question, AskError, AskField, AskRequest, Job, JobId, JobStatus, JobStore,
    MAX_UNFINISHED_PER_OWNER,
};
use crate::workspaces::Registry;

const DEFAULT_LIST_LIMIT: usize = 50;
const MAX_LIST_LIMIT: usize = 500;
const RECENT_JOBS: usize = 10;

pub fn api_routes(cfg: &mut super::GatedRoutes) {
    cfg.service(resource("/ask").post(ask))
        .service(resource("/jobs").get(list))
        .service(resource("/jobs/{id}").get(get).delete(cancel))
        .service(resource("/queue/status").get(status));
}

/// Own jobs (an admin's: all), and only in workspaces of the principal's scope.
fn visible_to(principal: &Principal) -> impl Fn(&Job) -> bool + '_ {
    move |job| {
        (principal.is_admin() || *job.owner_id == *principal.id)
            && principal.reaches_workspace(&job.workspace_id)
    }
}

impl From<AskError> for ApiError {
    fn from(err: AskError) -> Self {
        match err {
            AskError::Invalid(problems) => ApiError::bad_request(
                "The question is not valid",
                Value::Object(
                    problems
                        .into_iter()
                        .map(|(field, problem)| (field.json_name().to_owned(), json!(problem)))
                        .collect::<Map<_, _>>(),
                ),
            ),
            AskError::NoSuchBranch(branch) => ApiError::invalid_field(
                AskField::SourceBranch.json_name(),
                format!("there is no branch '{branch}' in this workspace"),
            ),
            AskError::NoSuchWorkspace => ApiError::Missing("Workspace"),
            AskError::TooManyJobs => ApiError::TooManyJobs(MAX_UNFINISHED_PER_OWNER),
            AskError::Registry(err) => err.into(),
            AskError::Storage(err) => ApiError::storage(err),
        }
    }
}

#[utoipa::path(post, path = "/api/ask", tag = "jobs", request_body = AskRequest,
    responses(
        (status = 202, description = "Queued", body = super::schemas::AskAccepted),
        (status = 400, description = "An invalid field, named in details", body = super::schemas::ErrorBody),
        (status = 401, description = "No or a bad key", body = super::schemas::ErrorBody),
        (status = 403, description = "The key's scope lacks the permission", body = super::schemas::ErrorBody),
        (status = 404, description = "No such workspace", body = super::schemas::ErrorBody),
        (status = 429, description = "Rate limited or too many pending jobs", body = super::schemas::ErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = [])))]
pub(crate) async fn ask(
    principal: Principal,
    queue: web::Data<dyn JobStore>,
    registry: web::Data<Registry>,
    ApiJson(request): ApiJson<AskRequest>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Permission::Ask)?;
    let (job, workspace) = submit_question(queue.get_ref(), &registry, &principal, request).await?;
    Ok(HttpResponse::Accepted().json(json!({
        "success": true,
        "queued": true,
        "jobId": job.id,
        "message": "Job queued - poll /api/jobs/:jobId for results",
        "workspace": {
            "id": workspace.id,
            "name": workspace.name,
            "targetBranch": job.source_branch.or(workspace.target_branch),
        },
    })))
}

/// The job if `principal` may see it; anyone else gets the same 404 as
/// for a job that does not exist.
async fn visible_job(
    queue: &dyn JobStore,
    principal: &Principal,
    id: &str,
) -> Result<Job, ApiError> {
    let Some(id) = JobId::parse(id) else {
        return Err(ApiError::Missing("Job"));
    };
    queue
        .get(&id)
        .await?
        .filter(|job| visible_to(principal)(job))
        .ok_or(ApiError::Missing("Job"))
}

#[utoipa::path(get, path = "/api/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "The job id")),
    responses(
        (status = 200, description = "The job", body = Job),
        (status = 401, description = "No or a bad key", body = super::schemas::ErrorBody),
        (status = 403, description = "The key's scope lacks the permission", body = super::schemas::ErrorBody),
        (status = 404, description = "No such job, or not the caller's", body = super::schemas::ErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = [])))]
pub(crate) async fn get(
    principal: Principal,
    queue: web::Data<dyn JobStore>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Permission::JobsRead)?;
    Ok(HttpResponse::Ok().json(visible_job(queue.get_ref(), &principal, &id).await?))
}

#[utoipa::path(delete, path = "/api/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "The job id")),
    responses(
        (status = 200, description = "The cancelled job", body = Job),
        (status = 401, description = "No or a bad key", body = super::schemas::ErrorBody),
        (status = 403, description = "The key's scope lacks the permission", body = super::schemas::ErrorBody),
        (status = 404, description = "No such job, or not the caller's", body = super::schemas::ErrorBody),
        (status = 409, description = "The job is no longer pending", body = super::schemas::ErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = [])))]
pub(crate) async fn cancel(
    principal: Principal,
    queue: web::Data<dyn JobStore>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Permission::Ask)?;
    let job = visible_job(queue.get_ref(), &principal, &id).await?;
    match queue
        .cancel(&job.id, &principal.id)
        .await
        .map_err(ApiError::storage)?
    {
        Ok(Some(job)) => Ok(HttpResponse::Ok().json(job)),
        Ok(None) => Err(ApiError::Missing("Job")),
        Err(job) => Err(ApiError::Conflict(format!(
            "Only a pending job can be cancelled; this one is {}",
            job.status.as_str()
        ))),
    }
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    status: Option<String>,
    limit: Option<String>,
}

#[utoipa::path(get, path = "/api/jobs", tag = "jobs",
    params(
        ("status" = Option<JobStatus>, Query, description = "Only jobs with this status"),
        ("limit" = Option<u32>, Query, description = "At most this many (1 to 500, default 50)"),
    ),
    responses(
        (status = 200, description = "The caller's jobs (an admin's: all), newest first", body = Vec<Job>),
        (status = 400, description = "An invalid parameter", body = super::schemas::ErrorBody),
        (status = 401, description = "No or a bad key", body = super::schemas::ErrorBody),
        (status = 403, description = "The key's scope lacks the permission", body = super::schemas::ErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = [])))]
pub(crate) async fn list(
    principal: Principal,
    queue: web::Data<dyn JobStore>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Permission::JobsRead)?;
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(text) => Some(JobStatus::parse(text).ok_or_else(|| {
            ApiError::invalid_field("status", "use pending, processing, completed or failed")
        })?),
    };
    let limit = match query.limit.as_deref() {
        None | Some("") => DEFAULT_LIST_LIMIT,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIST_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_field(
                    "limit",
                    format!("use a whole number from 1 to {MAX_LIST_LIMIT}"),
                )
            })?,
    };
    let visible = visible_to(&principal);
    let mut jobs = queue
        .list(&|job| visible(job) && status.is_none_or(|s| job.status == s))
        .await?;
    jobs.truncate(limit);
    Ok(HttpResponse::Ok().json(queue.load_all(jobs).await?))
}

#[utoipa::path(get, path = "/api/queue/status", tag = "jobs",
    responses(
        (status = 200, description = "The queue as the caller may see it", body = super::schemas::QueueStatus),
        (status = 401, description = "No or a bad key", body = super::schemas::ErrorBody),
        (status = 403, description = "The key's scope lacks the permission", body = super::schemas::ErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = [])))]
pub(crate) async fn status(
    principal: Principal,
    queue: web::Data<dyn JobStore>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Permission::JobsRead)?;
    Ok(HttpResponse::Ok().json(queue_status(queue.get_ref(), &principal).await?))
}

/// The `GET /api/queue/status` document for `principal`.
pub async fn queue_status(queue: &dyn JobStore, principal: &Principal) -> anyhow::Result<Value> {
    let visible = visible_to(principal);
    let counts = queue.counts(&visible).await?;
    let jobs = queue.list(&visible).await?;
    let current = jobs
        .iter()
        .find(|job| job.status == JobStatus::Processing)
        .cloned();
    let current = queue.load_all(current.into_iter().collect()).await?.pop();
    let mut pending: Vec<Job> = jobs
        .iter()
        .filter(|job| job.status == JobStatus::Pending)
        .cloned()
        .collect();
    // Summaries (question shortened, no context): a long queue of large
    // questions would otherwise be read whole for every status call.
    pending.reverse();
    let recent: Vec<Job> = jobs
        .iter()
        .filter(|job| job.status.is_finished())
        .take(RECENT_JOBS)
        .cloned()
        .collect();
    let recent = queue.load_all(recent).await?;
    Ok(json!({
        "isProcessing": counts.processing > 0,
        "hasPending": counts.pending > 0,
        "counts": counts,
        "currentJob": current,
        "pendingJobs": pending,
        "recentJobs": recent,
    }))
}

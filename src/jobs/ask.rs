//! Asking a question: validating it, queueing it for a principal, and what
//! of the queue a principal may see. The API and the dashboard both use it.

use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::job::{Job, JobId, JobStatus};
use super::queue::{JobQueue, TooManyJobs, MAX_UNFINISHED_PER_OWNER};
use crate::auth::Principal;
use crate::store::StoreError;
use crate::workspaces::{git, Registry, Workspace};

/// The longest question accepted (SPEC §5).
pub const MAX_QUESTION_BYTES: usize = 32 * 1024;
const MAX_CONTEXT_BYTES: usize = 256 * 1024;
const RECENT_JOBS: usize = 10;

/// Why a question was not queued.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// Each invalid field (by its API name) and what is wrong with it.
    #[error("The question is not valid")]
    Invalid(Map<String, Value>),
    #[error("Workspace not found")]
    NoWorkspace,
    #[error("there is no branch '{0}' in this workspace")]
    NoBranch(String),
    #[error("too many unfinished questions ({0})")]
    TooManyJobs(usize),
    #[error("cannot save the question: {0:#}")]
    Storage(anyhow::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AskRequest {
    #[serde(default)]
    pub workspace_id: String,
    #[serde(default)]
    pub question: String,
    pub context: Option<String>,
    pub source_branch: Option<String>,
}

/// Own jobs (an admin's: all), and only in workspaces of the principal's scope.
pub fn visible_to(principal: &Principal) -> impl Fn(&Job) -> bool + '_ {
    move |job| {
        (principal.is_admin() || *job.owner_id == *principal.id)
            && principal.reaches_workspace(&job.workspace_id)
    }
}

/// Validates a question and queues it for `principal`.
pub async fn submit_question(
    queue: &JobQueue,
    registry: &Registry,
    principal: &Principal,
    request: AskRequest,
) -> Result<(Job, Workspace), AskError> {
    let mut problems = Map::new();
    if request.workspace_id.trim().is_empty() {
        problems.insert("workspaceId".into(), json!("is required"));
    }
    if request.question.trim().is_empty() {
        problems.insert("question".into(), json!("is required"));
    } else if request.question.len() > MAX_QUESTION_BYTES {
        problems.insert(
            "question".into(),
            json!(format!("is longer than {} KiB", MAX_QUESTION_BYTES / 1024)),
        );
    }
    if request
        .context
        .as_ref()
        .is_some_and(|c| c.len() > MAX_CONTEXT_BYTES)
    {
        problems.insert(
            "context".into(),
            json!(format!("is longer than {} KiB", MAX_CONTEXT_BYTES / 1024)),
        );
    }
    let branch = request
        .source_branch
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty());
    if request.source_branch.is_some() && branch.is_none() {
        problems.insert(
            "sourceBranch".into(),
            json!("is empty; leave it out to use the checkout"),
        );
    }
    if !problems.is_empty() {
        return Err(AskError::Invalid(problems));
    }
    let id = request.workspace_id.trim();
    let reachable = if principal.reaches_workspace(id) {
        registry.get(id).await?
    } else {
        None
    };
    let workspace = reachable.ok_or(AskError::NoWorkspace)?;
    if let Some(branch) = branch {
        if !git::is_valid_branch_name(branch).await
            || git::branch_commit(&workspace.path, branch).await.is_none()
        {
            return Err(AskError::NoBranch(branch.to_owned()));
        }
    }
    let now = Utc::now();
    let job = Job {
        id: JobId::generate(now),
        kind: "ask".to_owned(),
        status: JobStatus::Pending,
        workspace_id: workspace.id.as_str().to_owned(),
        question: request.question,
        context: request.context.filter(|c| !c.trim().is_empty()),
        source_branch: branch.map(str::to_owned),
        owner_id: principal.id.to_string(),
        created_at: now,
        started_at: None,
        completed_at: None,
        result: None,
        error: None,
        attempts: 0,
    };
    queue
        .submit(job.clone(), !principal.is_admin())
        .await
        .map_err(AskError::Storage)?
        .map_err(|TooManyJobs| AskError::TooManyJobs(MAX_UNFINISHED_PER_OWNER))?;
    tracing::info!(job = %job.id, workspace = %job.workspace_id, by = %principal.id, "a question was queued");
    Ok((job, workspace))
}

/// The `GET /api/queue/status` document for `principal`.
pub async fn queue_status(queue: &JobQueue, principal: &Principal) -> Value {
    let visible = visible_to(principal);
    let counts = queue.counts(&visible);
    let jobs = queue.list(&visible);
    let current = jobs
        .iter()
        .find(|job| job.status == JobStatus::Processing)
        .cloned();
    let current = queue.load_all(current.into_iter().collect()).await.pop();
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
    let recent = queue.load_all(recent).await;
    json!({
        "isProcessing": counts.processing > 0,
        "hasPending": counts.pending > 0,
        "counts": counts,
        "currentJob": current,
        "pendingJobs": pending,
        "recentJobs": recent,
    })
}

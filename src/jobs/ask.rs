//! Asking a question: the checks on what was asked and the queueing, shared
//! by `POST /api/ask` and the dashboard's form. Failures are an `AskError`,
//! which each caller shows in its own way (JSON, or the form's words).

use chrono::Utc;
use serde::Deserialize;

use super::job::{Job, JobId, JobStatus};
use super::store::{JobStore, TooManyJobs, MAX_UNFINISHED_PER_OWNER};
use crate::auth::Principal;
use crate::store::StoreError;
use crate::workspaces::{git, Registry, Workspace};

/// The longest question accepted (SPEC §5).
pub const MAX_QUESTION_BYTES: usize = 32 * 1024;
const MAX_CONTEXT_BYTES: usize = 256 * 1024;

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

/// A field of an `AskRequest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AskField {
    WorkspaceId,
    Question,
    Context,
    SourceBranch,
}

impl AskField {
    /// Its name in the JSON request.
    pub fn json_name(self) -> &'static str {
        match self {
            Self::WorkspaceId => "workspaceId",
            Self::Question => "question",
            Self::Context => "context",
            Self::SourceBranch => "sourceBranch",
        }
    }
}

/// Why a question was not queued.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// Fields that are missing or wrong, each with what is wrong with it
    /// (in JSON-name order).
    #[error("The question is not valid")]
    Invalid(Vec<(AskField, String)>),
    /// The branch asked for is not in the workspace.
    #[error("there is no branch '{0}' in this workspace")]
    NoSuchBranch(String),
    /// No such workspace, or not one the principal may reach.
    #[error("Workspace not found")]
    NoSuchWorkspace,
    #[error(
        "You already have {MAX_UNFINISHED_PER_OWNER} questions waiting or being answered; \
         wait for one to finish, or cancel one, before asking another"
    )]
    TooManyJobs,
    /// The workspaces could not be read.
    #[error("Portico could not read its workspaces; try again in a moment")]
    Registry(#[source] StoreError),
    /// The job could not be saved; the cause is for the log only.
    #[error(
        "Portico could not save to its data directory (read-only or full?); \
         nothing was changed. Try again when it is writable."
    )]
    Storage(#[source] anyhow::Error),
}

/// Validates a question and queues it for `principal`.
pub async fn submit_question(
    queue: &dyn JobStore,
    registry: &Registry,
    principal: &Principal,
    request: AskRequest,
) -> Result<(Job, Workspace), AskError> {
    let mut problems = Vec::new();
    if request.workspace_id.trim().is_empty() {
        problems.push((AskField::WorkspaceId, "is required".to_owned()));
    }
    if request.question.trim().is_empty() {
        problems.push((AskField::Question, "is required".to_owned()));
    } else if request.question.len() > MAX_QUESTION_BYTES {
        problems.push((
            AskField::Question,
            format!("is longer than {} KiB", MAX_QUESTION_BYTES / 1024),
        ));
    }
    if request
        .context
        .as_ref()
        .is_some_and(|c| c.len() > MAX_CONTEXT_BYTES)
    {
        problems.push((
            AskField::Context,
            format!("is longer than {} KiB", MAX_CONTEXT_BYTES / 1024),
        ));
    }
    let branch = request
        .source_branch
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty());
    if request.source_branch.is_some() && branch.is_none() {
        problems.push((
            AskField::SourceBranch,
            "is empty; leave it out to use the checkout".to_owned(),
        ));
    }
    if !problems.is_empty() {
        problems.sort_by_key(|(field, _)| field.json_name());
        return Err(AskError::Invalid(problems));
    }
    let id = request.workspace_id.trim();
    let reachable = if principal.reaches_workspace(id) {
        registry.get(id).await.map_err(AskError::Registry)?
    } else {
        None
    };
    let workspace = reachable.ok_or(AskError::NoSuchWorkspace)?;
    if let Some(branch) = branch {
        if !git::is_valid_branch_name(branch).await
            || git::branch_commit(&workspace.path, branch).await.is_none()
        {
            return Err(AskError::NoSuchBranch(branch.to_owned()));
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
        .map_err(|TooManyJobs| AskError::TooManyJobs)?;
    tracing::info!(job = %job.id, workspace = %job.workspace_id, by = %principal.id, "a question was queued");
    Ok((job, workspace))
}

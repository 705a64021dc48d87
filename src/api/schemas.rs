//! The shapes of JSON answers that no domain type describes, for the
//! OpenAPI document (handlers build them with `json!`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::jobs::{Job, QueueCounts};

/// Every error the API answers (SPEC §4).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong and what to do, in words.
    pub error: String,
    /// A stable kebab-case code, e.g. `invalid-api-key`.
    pub code: String,
    /// For invalid input: each bad field and what is wrong with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `false` only when the store does not answer (with status 503).
    pub ok: bool,
    pub timestamp: DateTime<Utc>,
    /// `file`, `redis`, `unavailable` (Redis does not answer) or `diverged`
    /// (Redis lost its data and holds other shared secrets: restart this instance).
    pub store: crate::store::StoreState,
    /// Why the instance is unhealthy, with `diverged`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The workspace a question was queued for.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AskWorkspace {
    pub id: String,
    pub name: String,
    pub target_branch: Option<String>,
}

/// `202` to `POST /api/ask`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AskAccepted {
    pub success: bool,
    pub queued: bool,
    pub job_id: String,
    pub message: String,
    pub workspace: AskWorkspace,
}

/// `GET /api/queue/status`: the jobs the caller may see.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueStatus {
    pub is_processing: bool,
    pub has_pending: bool,
    pub counts: QueueCounts,
    pub current_job: Option<Job>,
    pub pending_jobs: Vec<Job>,
    pub recent_jobs: Vec<Job>,
}

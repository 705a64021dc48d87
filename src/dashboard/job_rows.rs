//! A job as a row of the dashboard's job tables (overview and queue page),
//! and the page shown when the job store cannot be read for them.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;

use super::error_page;
use crate::jobs::Job;
use crate::workspaces::Workspace;

const QUESTION_PREVIEW_CHARS: usize = 120;

/// A job as a row of the jobs table.
pub struct JobRow {
    pub id: String,
    pub status: &'static str,
    pub workspace: String,
    pub question: String,
    pub created: String,
}

impl JobRow {
    pub fn new(job: &Job, workspaces: &[Workspace]) -> Self {
        let mut question: String = job.question.chars().take(QUESTION_PREVIEW_CHARS).collect();
        if job.question.chars().count() > QUESTION_PREVIEW_CHARS {
            question.push('…');
        }
        Self {
            id: job.id.to_string(),
            status: job.status.as_str(),
            workspace: workspaces
                .iter()
                .find(|w| w.id.as_str() == job.workspace_id)
                .map_or_else(
                    || format!("{} (removed)", job.workspace_id),
                    |w| w.name.clone(),
                ),
            question,
            created: job.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        }
    }
}

pub fn rows(jobs: &[Job], workspaces: &[Workspace]) -> Vec<JobRow> {
    jobs.iter()
        .map(|job| JobRow::new(job, workspaces))
        .collect()
}

/// The page for a job store that cannot be read (the cause goes to the log).
pub fn queue_unavailable(err: &anyhow::Error) -> HttpResponse {
    tracing::error!(error = format!("{err:#}"), "the job queue cannot be read");
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Queue unavailable",
        "Portico could not read its job queue. Try again in a moment; if it persists, \
         check the server log.",
    )
}

//! A job's row in Redis: the forms it is stored in (the job as submitted,
//! its listing form) and how it is put together again with the fields that
//! changed since.

use anyhow::Context;
use chrono::{DateTime, Utc};

use super::super::job::{Job, JobStatus};

pub(super) fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<String> {
    serde_json::to_string(value).context("serialising a job for Redis")
}

pub(super) fn optional<T: serde::Serialize>(value: Option<&T>) -> anyhow::Result<String> {
    value.map(json).transpose().map(Option::unwrap_or_default)
}

pub(super) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn parse<T: serde::de::DeserializeOwned>(text: Option<String>) -> anyhow::Result<Option<T>> {
    text.map(|t| serde_json::from_str(&t))
        .transpose()
        .context("a job in Redis is not valid")
}

/// A job from its stored form and the fields that changed since.
pub(super) fn assemble(base: &str, state: &[Option<String>]) -> anyhow::Result<Job> {
    let mut job: Job = serde_json::from_str(base).context("a job in Redis is not valid")?;
    let field = |i: usize| state.get(i).cloned().flatten();
    if let Some(status) = field(0).as_deref().and_then(JobStatus::parse) {
        job.status = status;
    }
    job.attempts = field(1).and_then(|n| n.parse().ok()).unwrap_or(0);
    job.started_at = parse(field(2))?;
    job.completed_at = parse(field(3))?;
    job.error = field(4);
    if state.len() > 5 {
        job.result = parse(field(5))?;
    }
    Ok(job)
}

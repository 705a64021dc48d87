//! The persistent queue: one JSON file per job in `<DATA_DIR>/queue/`,
//! written atomically at every change of state, and an in-memory index of
//! summaries (no context or result, a question preview) for listing, so
//! memory does not grow with what clients send. Workers take jobs
//! round-robin across owners; an owner may have `MAX_UNFINISHED_PER_OWNER`
//! jobs waiting or running. A job left `processing` by a crash is queued
//! again at start, at most `MAX_ATTEMPTS` times in all; finished jobs are
//! kept 7 days.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use anyhow::Context;
use chrono::{Duration, Utc};
use serde::Serialize;
use tokio::sync::Notify;

use super::answer::Answer;
use super::engine::EngineError;
use super::job::{Job, JobId, JobStatus};
use crate::store::{read_json, write_atomic, write_json};

/// A job is started at most this often (crashes included).
pub const MAX_ATTEMPTS: u32 = 3;
/// Jobs one client may have pending or processing (SPEC §5.1).
pub const MAX_UNFINISHED_PER_OWNER: usize = 20;
/// How much of a question the in-memory index keeps, in characters.
const QUESTION_PREVIEW_CHARS: usize = 200;
const RETENTION_DAYS: i64 = 7;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct QueueCounts {
    pub pending: usize,
    pub processing: usize,
    pub completed: usize,
    pub failed: usize,
}

#[derive(Debug)]
pub struct JobQueue {
    dir: PathBuf,
    jobs: RwLock<HashMap<JobId, Job>>,
    /// Held for every change; guards the owner served last.
    writes: tokio::sync::Mutex<Option<String>>,
    work: Notify,
}

/// The client already has `MAX_UNFINISHED_PER_OWNER` unfinished jobs.
#[derive(Debug)]
pub struct TooManyJobs;

/// What the in-memory index keeps of a job.
fn summary(job: &Job) -> Job {
    let mut question: String = job.question.chars().take(QUESTION_PREVIEW_CHARS).collect();
    if question.len() < job.question.len() {
        question.push('…');
    }
    Job {
        question,
        context: None,
        result: None,
        ..job.clone()
    }
}

fn newest_first(a: &Job, b: &Job) -> std::cmp::Ordering {
    b.created_at
        .cmp(&a.created_at)
        .then_with(|| b.id.cmp(&a.id))
}

impl JobQueue {
    /// Loads every job and recovers those a crash left `processing`.
    pub fn load(data_dir: &Path) -> anyhow::Result<Self> {
        let dir = data_dir.join("queue");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let mut jobs = HashMap::new();
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let is_job = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(JobId::parse)
                .is_some();
            if !is_job {
                continue;
            }
            let Some(mut job) = read_json::<Job>(&path)? else {
                continue;
            };
            if job.status == JobStatus::Processing {
                recover(&mut job);
                write_atomic(&path, &serde_json::to_vec_pretty(&job)?)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            jobs.insert(job.id.clone(), summary(&job));
        }
        Ok(Self {
            dir,
            jobs: RwLock::new(jobs),
            writes: tokio::sync::Mutex::new(None),
            work: Notify::new(),
        })
    }

    fn file(&self, id: &JobId) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    async fn store(&self, job: &Job) -> anyhow::Result<()> {
        write_json(&self.file(&job.id), job).await?;
        self.jobs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(job.id.clone(), summary(job));
        Ok(())
    }

    fn summary(&self, id: &JobId) -> Option<Job> {
        self.jobs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// The whole job, read from its file.
    pub async fn get(&self, id: &JobId) -> Option<Job> {
        self.summary(id)?;
        let bytes = tokio::fs::read(self.file(id)).await.ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The whole jobs for summaries from `list`.
    pub async fn load_all(&self, summaries: Vec<Job>) -> Vec<Job> {
        let mut jobs = Vec::with_capacity(summaries.len());
        for summary in summaries {
            if let Some(job) = self.get(&summary.id).await {
                jobs.push(job);
            }
        }
        jobs
    }

    /// Summaries of the jobs `visible` admits, newest first: the question
    /// shortened, no context, no result (`get` has the whole job).
    pub fn list(&self, visible: impl Fn(&Job) -> bool) -> Vec<Job> {
        let mut jobs: Vec<Job> = self
            .jobs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|job| visible(job))
            .cloned()
            .collect();
        jobs.sort_by(newest_first);
        jobs
    }

    pub fn counts(&self, visible: impl Fn(&Job) -> bool) -> QueueCounts {
        let mut counts = QueueCounts::default();
        for job in self
            .jobs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|j| visible(j))
        {
            match job.status {
                JobStatus::Pending => counts.pending += 1,
                JobStatus::Processing => counts.processing += 1,
                JobStatus::Completed => counts.completed += 1,
                JobStatus::Failed => counts.failed += 1,
            }
        }
        counts
    }

    /// Stores a new job and wakes a worker, unless the owner is `limited`
    /// (a client, not an admin) and already has `MAX_UNFINISHED_PER_OWNER`
    /// jobs waiting or running (counted under the same lock as the insert,
    /// so simultaneous asks cannot pass it).
    pub async fn submit(&self, job: Job, limited: bool) -> anyhow::Result<Result<(), TooManyJobs>> {
        let _write = self.writes.lock().await;
        let unfinished = self
            .jobs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|j| j.owner_id == job.owner_id && !j.status.is_finished())
            .count();
        if limited && unfinished >= MAX_UNFINISHED_PER_OWNER {
            return Ok(Err(TooManyJobs));
        }
        self.store(&job).await?;
        self.work.notify_one();
        Ok(Ok(()))
    }

    /// Waits until a job may have been submitted.
    pub async fn work_arrived(&self) {
        self.work.notified().await;
    }

    /// Takes the next pending job, round-robin across owners (the oldest
    /// of the owner after the one served last), and marks it `processing`.
    pub async fn claim_next(&self) -> anyhow::Result<Option<Job>> {
        let mut last_owner = self.writes.lock().await;
        let pending = self.list(|job| job.status == JobStatus::Pending);
        let Some(next) = next_in_turn(&pending, last_owner.as_deref()) else {
            return Ok(None);
        };
        let id = next.id.clone();
        let Some(mut job) = self.get(&id).await else {
            // Dropped from the index, or every worker would stop on it.
            self.jobs
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            anyhow::bail!("the file of job {id} cannot be read; it is skipped");
        };
        job.status = JobStatus::Processing;
        job.started_at = Some(Utc::now());
        job.attempts += 1;
        self.store(&job).await?;
        *last_owner = Some(job.owner_id.clone());
        Ok(Some(job))
    }

    /// Records the answer (`Ok`) or the reason it failed (`Err`).
    pub async fn finish(&self, id: &JobId, outcome: Result<Answer, EngineError>) -> anyhow::Result<()> {
        let _write = self.writes.lock().await;
        let Some(mut job) = self.get(id).await else {
            return Ok(());
        };
        job.completed_at = Some(Utc::now());
        if let (Some(started), Some(completed)) = (job.started_at, job.completed_at) {
            crate::metrics::job_finished((completed - started).to_std().unwrap_or_default());
        }
        match outcome {
            Ok(result) => {
                job.status = JobStatus::Completed;
                job.result = Some(result);
            }
            Err(error) => {
                job.status = JobStatus::Failed;
                job.error = Some(error.to_string());
            }
        }
        self.store(&job).await
    }

    /// Cancels a pending job: `Ok(None)` if there is no such job, `Err`
    /// with the job if it is no longer pending.
    pub async fn cancel(&self, id: &JobId, by: &str) -> anyhow::Result<Result<Option<Job>, Job>> {
        let _write = self.writes.lock().await;
        let Some(mut job) = self.get(id).await else {
            return Ok(Ok(None));
        };
        if job.status != JobStatus::Pending {
            return Ok(Err(job));
        }
        job.status = JobStatus::Failed;
        job.error = Some(format!("Cancelled by {by} before it started"));
        job.completed_at = Some(Utc::now());
        self.store(&job).await?;
        Ok(Ok(Some(job)))
    }

    /// Deletes jobs that finished more than 7 days ago.
    pub async fn prune(&self) -> anyhow::Result<usize> {
        let _write = self.writes.lock().await;
        let cutoff = Utc::now() - Duration::days(RETENTION_DAYS);
        let old: Vec<JobId> = self
            .list(|job| job.status.is_finished() && job.completed_at.is_some_and(|at| at < cutoff))
            .into_iter()
            .map(|job| job.id)
            .collect();
        for id in &old {
            match tokio::fs::remove_file(self.file(id)).await {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(err).context("cannot delete an old job"),
            }
            self.jobs
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(id);
        }
        Ok(old.len())
    }
}

/// The oldest pending job of the first owner after `last` (in id order,
/// wrapping around); `pending` is newest first.
fn next_in_turn<'a>(pending: &'a [Job], last: Option<&str>) -> Option<&'a Job> {
    let mut owners: Vec<&str> = pending.iter().map(|job| job.owner_id.as_str()).collect();
    owners.sort_unstable();
    owners.dedup();
    let owner = last
        .and_then(|last| owners.iter().find(|owner| **owner > last))
        .or(owners.first())?;
    pending.iter().rev().find(|job| job.owner_id == *owner)
}

/// A job a crash interrupted: run again, or give up after `MAX_ATTEMPTS`.
fn recover(job: &mut Job) {
    if job.attempts >= MAX_ATTEMPTS {
        job.status = JobStatus::Failed;
        job.completed_at = Some(Utc::now());
        job.error = Some(format!(
            "The server stopped while answering this question {MAX_ATTEMPTS} times; giving up. \
             Ask again, or check the server log for what stops it."
        ));
    } else {
        job.status = JobStatus::Pending;
        job.started_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(owner: &str, question: String, context: Option<String>) -> Job {
        let now = Utc::now();
        Job {
            id: JobId::generate(now),
            kind: "ask".into(),
            status: JobStatus::Pending,
            workspace_id: "ws-1".into(),
            question,
            context,
            source_branch: None,
            owner_id: owner.into(),
            created_at: now,
            started_at: None,
            completed_at: None,
            result: None,
            error: None,
            attempts: 0,
        }
    }

    #[tokio::test]
    async fn memory_keeps_a_preview_of_each_job_and_the_disk_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let queue = JobQueue::load(dir.path()).unwrap();
        let big = job("a", "q".repeat(32 * 1024), Some("c".repeat(256 * 1024)));
        queue.submit(big.clone(), true).await.unwrap().unwrap();
        let held = queue.summary(&big.id).unwrap();
        assert!(held.question.len() <= QUESTION_PREVIEW_CHARS + '…'.len_utf8());
        assert_eq!(held.context, None);
        assert_eq!(queue.get(&big.id).await.unwrap(), big);
    }

    #[tokio::test]
    async fn owners_take_turns_whatever_their_backlog() {
        let dir = tempfile::tempdir().unwrap();
        let queue = JobQueue::load(dir.path()).unwrap();
        for owner in ["a", "a", "a", "b", "c", "c"] {
            queue
                .submit(job(owner, "q".into(), None), true)
                .await
                .unwrap()
                .unwrap();
        }
        let mut order = String::new();
        while let Some(job) = queue.claim_next().await.unwrap() {
            order.push_str(&job.owner_id);
        }
        assert_eq!(order, "abcaca");
    }
}

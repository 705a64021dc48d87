//! The persistent queue: one JSON file per job in `<DATA_DIR>/queue/`,
//! written atomically at every change of state, and an in-memory index for
//! listing. A job left `processing` by a crash is queued again at start, at
//! most `MAX_ATTEMPTS` times in all; finished jobs are kept 7 days.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use anyhow::Context;
use chrono::{Duration, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;

use super::job::{Job, JobId, JobStatus};
use crate::store::{read_json, write_atomic, write_json};

/// A job is started at most this often (crashes included).
pub const MAX_ATTEMPTS: u32 = 3;
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
    writes: tokio::sync::Mutex<()>,
    work: Notify,
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
            jobs.insert(job.id.clone(), job);
        }
        Ok(Self {
            dir,
            jobs: RwLock::new(jobs),
            writes: tokio::sync::Mutex::new(()),
            work: Notify::new(),
        })
    }

    fn file(&self, id: &JobId) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    async fn store(&self, job: Job) -> anyhow::Result<()> {
        write_json(&self.file(&job.id), &job).await?;
        self.jobs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(job.id.clone(), job);
        Ok(())
    }

    pub fn get(&self, id: &JobId) -> Option<Job> {
        self.jobs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// The jobs `visible` admits, newest first.
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

    /// Stores a new job and wakes a worker.
    pub async fn submit(&self, job: Job) -> anyhow::Result<()> {
        let _write = self.writes.lock().await;
        self.store(job).await?;
        self.work.notify_one();
        Ok(())
    }

    /// Waits until a job may have been submitted.
    pub async fn work_arrived(&self) {
        self.work.notified().await;
    }

    /// Takes the oldest pending job and marks it `processing`.
    pub async fn claim_next(&self) -> anyhow::Result<Option<Job>> {
        let _write = self.writes.lock().await;
        let next = self
            .list(|job| job.status == JobStatus::Pending)
            .into_iter()
            .next_back();
        let Some(mut job) = next else { return Ok(None) };
        job.status = JobStatus::Processing;
        job.started_at = Some(Utc::now());
        job.attempts += 1;
        self.store(job.clone()).await?;
        Ok(Some(job))
    }

    /// Records the answer (`Ok`) or the reason it failed (`Err`).
    pub async fn finish(&self, id: &JobId, outcome: Result<Value, String>) -> anyhow::Result<()> {
        let _write = self.writes.lock().await;
        let Some(mut job) = self.get(id) else {
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
                job.error = Some(error);
            }
        }
        self.store(job).await
    }

    /// Cancels a pending job: `Ok(None)` if there is no such job, `Err`
    /// with the job if it is no longer pending.
    pub async fn cancel(&self, id: &JobId, by: &str) -> anyhow::Result<Result<Option<Job>, Job>> {
        let _write = self.writes.lock().await;
        let Some(mut job) = self.get(id) else {
            return Ok(Ok(None));
        };
        if job.status != JobStatus::Pending {
            return Ok(Err(job));
        }
        job.status = JobStatus::Failed;
        job.error = Some(format!("Cancelled by {by} before it started"));
        job.completed_at = Some(Utc::now());
        self.store(job.clone()).await?;
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

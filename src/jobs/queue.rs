//! The file back end of `JobStore`: one JSON file per job in
//! `<DATA_DIR>/queue/`, changed through a `store::Document` (read, change,
//! atomic write) at every change of state, and an
//! in-memory index of summaries (no context or result, a question preview)
//! for listing, so memory does not grow with what clients send. Leases are
//! kept in memory: one process owns a data directory (its lock), so a job
//! found `processing` at start belonged to a process that died and is put
//! back at once. Finished jobs are kept 7 days.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use chrono::Utc;
use tokio::sync::Notify;

use super::answer::Answer;
use super::engine::EngineError;
use super::job::{Job, JobId, JobStatus};
use super::store::{
    given_up, JobStore, QueueCounts, TooManyJobs, Visible, WorkerId, MAX_ATTEMPTS,
    MAX_UNFINISHED_PER_OWNER,
};
use crate::store::{read_json, write_atomic, Document, StoreError};

/// How much of a question the in-memory index keeps, in characters.
const QUESTION_PREVIEW_CHARS: usize = 200;
const RETENTION_DAYS: i64 = 7;

#[derive(Debug)]
struct Lease {
    worker: WorkerId,
    expires: Instant,
}

#[derive(Debug)]
pub struct FileJobStore {
    dir: PathBuf,
    jobs: RwLock<HashMap<JobId, Job>>,
    /// The worker holding each `processing` job, and until when.
    leases: Mutex<HashMap<JobId, Lease>>,
    /// Held for every change; guards the owner served last.
    writes: tokio::sync::Mutex<Option<String>>,
    work: Notify,
    lease: Duration,
}

/// Why `change` wrote nothing.
enum Unchanged<E> {
    Missing,
    Declined(E),
    Failed(StoreError),
}

impl<E> From<StoreError> for Unchanged<E> {
    fn from(err: StoreError) -> Self {
        Self::Failed(err)
    }
}

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

impl FileJobStore {
    /// Loads every job and puts back those a dead process left
    /// `processing`; claimed jobs are leased for `lease`.
    pub fn load(data_dir: &Path, lease: Duration) -> anyhow::Result<Self> {
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
                put_back(&mut job);
                write_atomic(&path, &serde_json::to_vec_pretty(&job)?)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            jobs.insert(job.id.clone(), summary(&job));
        }
        Ok(Self {
            dir,
            jobs: RwLock::new(jobs),
            leases: Mutex::new(HashMap::new()),
            writes: tokio::sync::Mutex::new(None),
            work: Notify::new(),
            lease,
        })
    }

    fn file(&self, id: &JobId) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Writes a new job's file and indexes it.
    async fn store(&self, job: &Job) -> anyhow::Result<()> {
        let file = Document::with_value(self.file(&job.id), None);
        file.update(|slot| {
            *slot = Some(job.clone());
            Ok::<_, StoreError>(())
        })
        .await?;
        self.index().insert(job.id.clone(), summary(job));
        Ok(())
    }

    /// Changes a job's file through a `Document`: `Ok(None)` if there is no
    /// such job (or its file cannot be read); `Some(Err(_))`, nothing
    /// written, if `edit` declines; `Some(Ok(_))` once written and indexed.
    async fn change<R, E>(
        &self,
        id: &JobId,
        edit: impl FnOnce(&mut Job) -> Result<R, E> + Send,
    ) -> anyhow::Result<Option<Result<R, E>>>
    where
        R: Send,
        E: Send,
    {
        let path = self.file(id);
        let loaded = tokio::task::spawn_blocking(move || Document::<Option<Job>>::load(path))
            .await
            .context("a file-reading task failed")?;
        let Ok(file) = loaded else {
            return Ok(None);
        };
        let changed = file
            .update(|slot| match slot {
                None => Err(Unchanged::Missing),
                Some(job) => edit(job).map_err(Unchanged::Declined),
            })
            .await;
        match changed {
            Ok(done) => {
                if let Some(job) = file.snapshot() {
                    self.index().insert(job.id.clone(), summary(&job));
                }
                Ok(Some(Ok(done)))
            }
            Err(Unchanged::Missing) => Ok(None),
            Err(Unchanged::Declined(kept)) => Ok(Some(Err(kept))),
            Err(Unchanged::Failed(err)) => Err(err.into()),
        }
    }

    fn index(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<JobId, Job>> {
        self.jobs.write().unwrap_or_else(|e| e.into_inner())
    }

    fn summaries(&self, visible: impl Fn(&Job) -> bool) -> Vec<Job> {
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

    fn leases(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Lease>> {
        self.leases.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The whole job from its file, if the index knows it.
    async fn read(&self, id: &JobId) -> Option<Job> {
        if !self
            .jobs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(id)
        {
            return None;
        }
        let bytes = tokio::fs::read(self.file(id)).await.ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Whether `worker` holds the lease on `id` (expired or not: until
    /// someone reclaims the job, its worker may still renew and finish).
    fn holds(&self, id: &JobId, worker: &WorkerId) -> bool {
        self.leases()
            .get(id)
            .is_some_and(|lease| lease.worker == *worker)
    }
}

#[async_trait]
impl JobStore for FileJobStore {
    async fn submit(&self, job: Job, limited: bool) -> anyhow::Result<Result<(), TooManyJobs>> {
        let _write = self.writes.lock().await;
        let unfinished = self
            .summaries(|j| j.owner_id == job.owner_id && !j.status.is_finished())
            .len();
        if limited && unfinished >= MAX_UNFINISHED_PER_OWNER {
            return Ok(Err(TooManyJobs));
        }
        self.store(&job).await?;
        self.work.notify_one();
        Ok(Ok(()))
    }

    async fn get(&self, id: &JobId) -> anyhow::Result<Option<Job>> {
        Ok(self.read(id).await)
    }

    async fn list(&self, visible: Visible<'_>) -> anyhow::Result<Vec<Job>> {
        Ok(self.summaries(visible))
    }

    async fn counts(&self, visible: Visible<'_>) -> anyhow::Result<QueueCounts> {
        let mut counts = QueueCounts::default();
        for job in self.summaries(visible) {
            match job.status {
                JobStatus::Pending => counts.pending += 1,
                JobStatus::Processing => counts.processing += 1,
                JobStatus::Completed => counts.completed += 1,
                JobStatus::Failed => counts.failed += 1,
            }
        }
        Ok(counts)
    }

    async fn claim(&self, worker: &WorkerId) -> anyhow::Result<Option<Job>> {
        let mut last_owner = self.writes.lock().await;
        let pending = self.summaries(|job| job.status == JobStatus::Pending);
        let Some(next) = next_in_turn(&pending, last_owner.as_deref()) else {
            return Ok(None);
        };
        let id = next.id.clone();
        let claimed = self
            .change(&id, |job| {
                job.status = JobStatus::Processing;
                job.started_at = Some(Utc::now());
                job.attempts += 1;
                Ok::<_, ()>(job.clone())
            })
            .await?;
        let Some(Ok(job)) = claimed else {
            // Dropped from the index, or every worker would stop on it.
            self.index().remove(&id);
            anyhow::bail!("the file of job {id} cannot be read; it is skipped");
        };
        self.leases().insert(
            id,
            Lease {
                worker: worker.clone(),
                expires: Instant::now() + self.lease,
            },
        );
        *last_owner = Some(job.owner_id.clone());
        Ok(Some(job))
    }

    async fn renew(&self, id: &JobId, worker: &WorkerId) -> anyhow::Result<bool> {
        let mut leases = self.leases();
        match leases.get_mut(id) {
            Some(lease) if lease.worker == *worker => {
                lease.expires = Instant::now() + self.lease;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn finish(
        &self,
        id: &JobId,
        worker: &WorkerId,
        outcome: Result<Answer, EngineError>,
    ) -> anyhow::Result<bool> {
        let _write = self.writes.lock().await;
        if !self.holds(id, worker) {
            return Ok(false);
        }
        let recorded = self
            .change(id, |job| {
                job.completed_at = Some(Utc::now());
                if let (Some(started), Some(completed)) = (job.started_at, job.completed_at) {
                    crate::metrics::job_finished(
                        (completed - started).to_std().unwrap_or_default(),
                    );
                }
                match outcome {
                    Ok(answer) => {
                        job.status = JobStatus::Completed;
                        job.result = Some(answer);
                    }
                    Err(error) => {
                        job.status = JobStatus::Failed;
                        job.error = Some(error.to_string());
                    }
                }
                Ok::<_, ()>(())
            })
            .await?;
        self.leases().remove(id);
        Ok(recorded.is_some())
    }

    async fn cancel(&self, id: &JobId, by: &str) -> anyhow::Result<Result<Option<Job>, Job>> {
        let _write = self.writes.lock().await;
        let cancelled = self
            .change(id, |job| {
                if job.status != JobStatus::Pending {
                    return Err(Box::new(job.clone()));
                }
                job.status = JobStatus::Failed;
                job.error = Some(format!("Cancelled by {by} before it started"));
                job.completed_at = Some(Utc::now());
                Ok(job.clone())
            })
            .await?;
        Ok(match cancelled {
            None => Ok(None),
            Some(Ok(job)) => Ok(Some(job)),
            Some(Err(job)) => Err(*job),
        })
    }

    async fn reclaim_expired(&self) -> anyhow::Result<usize> {
        let _write = self.writes.lock().await;
        let now = Instant::now();
        let expired: Vec<JobId> = {
            let leases = self.leases();
            self.summaries(|job| job.status == JobStatus::Processing)
                .into_iter()
                .map(|job| job.id)
                .filter(|id| leases.get(id).is_none_or(|lease| lease.expires <= now))
                .collect()
        };
        let mut reclaimed = 0;
        for id in expired {
            let put = self
                .change(&id, |job| {
                    put_back(job);
                    Ok::<_, ()>(job.clone())
                })
                .await?;
            self.leases().remove(&id);
            let Some(Ok(job)) = put else {
                continue;
            };
            reclaimed += 1;
            tracing::warn!(job = %id, attempts = job.attempts, status = job.status.as_str(),
                "a job's worker stopped renewing its lease; the job was taken back");
        }
        if reclaimed > 0 {
            self.work.notify_one();
        }
        Ok(reclaimed)
    }

    async fn prune(&self) -> anyhow::Result<usize> {
        let _write = self.writes.lock().await;
        let cutoff = Utc::now() - chrono::Duration::days(RETENTION_DAYS);
        let old: Vec<JobId> = self
            .summaries(|job| {
                job.status.is_finished() && job.completed_at.is_some_and(|at| at < cutoff)
            })
            .into_iter()
            .map(|job| job.id)
            .collect();
        for id in &old {
            match tokio::fs::remove_file(self.file(id)).await {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(err).context("cannot delete an old job"),
            }
            self.index().remove(id);
        }
        Ok(old.len())
    }

    async fn work_arrived(&self) {
        self.work.notified().await;
    }

    fn lease(&self) -> Duration {
        self.lease
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

/// A job whose worker is gone: run again, or give up after `MAX_ATTEMPTS`.
fn put_back(job: &mut Job) {
    if job.attempts >= MAX_ATTEMPTS {
        job.status = JobStatus::Failed;
        job.completed_at = Some(Utc::now());
        job.error = Some(given_up());
    } else {
        job.status = JobStatus::Pending;
        job.started_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::conformance::{job, job_store_conformance, Made};
    use std::sync::Arc;

    async fn fresh(lease: Duration) -> Made {
        let dir = tempfile::tempdir().unwrap();
        let store = FileJobStore::load(dir.path(), lease).unwrap();
        (Arc::new(store), Box::new(dir))
    }

    job_store_conformance!(fresh);

    #[tokio::test]
    async fn memory_keeps_a_preview_of_each_job_and_the_disk_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileJobStore::load(dir.path(), Duration::from_secs(60)).unwrap();
        let mut big = job("a", &"q".repeat(32 * 1024));
        big.context = Some("c".repeat(256 * 1024));
        store.submit(big.clone(), true).await.unwrap().unwrap();
        let held = store.summaries(|_| true).pop().unwrap();
        assert!(held.question.len() <= QUESTION_PREVIEW_CHARS + '…'.len_utf8());
        assert_eq!(held.context, None);
        assert_eq!(store.get(&big.id).await.unwrap(), Some(big));
    }

    #[tokio::test]
    async fn a_job_left_processing_by_a_dead_process_is_put_back_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let lease = Duration::from_secs(60);
        let store = FileJobStore::load(dir.path(), lease).unwrap();
        let asked = job("a", "q");
        store.submit(asked.clone(), true).await.unwrap().unwrap();
        store
            .claim(&WorkerId::new("dead", 0))
            .await
            .unwrap()
            .unwrap();
        drop(store);
        let restarted = FileJobStore::load(dir.path(), lease).unwrap();
        let back = restarted.get(&asked.id).await.unwrap().unwrap();
        assert_eq!((back.status, back.attempts), (JobStatus::Pending, 1));
        let again = restarted
            .claim(&WorkerId::new("new", 0))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.attempts, 2);
    }
}

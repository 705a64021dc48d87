//! The file back end of `JobStore`: one JSON file per job in
//! `<DATA_DIR>/queue/`, changed through a `store::Document` (read, change,
//! atomic write) at every change of state, and an
//! in-memory index of summaries (no context or result, a question preview)
//! for listing, so memory does not grow with what clients send. Leases are
//! kept in memory: one process owns a data directory (its lock), so a job
//! found `processing` at start belonged to a process that died and is put
//! back at once. Finished jobs are kept 7 days.

use std::collections::HashMap;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod store_impl;

use anyhow::Context;
use parking_lot::{Mutex, MutexGuard, RwLock, RwLockWriteGuard};
use tokio::sync::Notify;

use super::job::{Job, JobId, JobStatus};
use super::store::WorkerId;
use crate::store::{read_json, write_atomic, Document, StoreError, PRIVATE_DIR_MODE};

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
        // 0700 like the rest of the data directory (job answers may quote
        // private repositories); an older 0755 one is tightened.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(PRIVATE_DIR_MODE)
            .create(&dir)
            .and_then(|()| {
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(PRIVATE_DIR_MODE))
            })
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
                job.put_back();
                write_atomic(&path, &serde_json::to_vec_pretty(&job)?)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            jobs.insert(job.id.clone(), job.summary());
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
        self.index().insert(job.id.clone(), job.summary());
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
                    self.index().insert(job.id.clone(), job.summary());
                }
                Ok(Some(Ok(done)))
            }
            Err(Unchanged::Missing) => Ok(None),
            Err(Unchanged::Declined(kept)) => Ok(Some(Err(kept))),
            Err(Unchanged::Failed(err)) => Err(err.into()),
        }
    }

    fn index(&self) -> RwLockWriteGuard<'_, HashMap<JobId, Job>> {
        self.jobs.write()
    }

    fn summaries(&self, visible: impl Fn(&Job) -> bool) -> Vec<Job> {
        let mut jobs: Vec<Job> = self
            .jobs
            .read()
            .values()
            .filter(|job| visible(job))
            .cloned()
            .collect();
        jobs.sort_by(newest_first);
        jobs
    }

    fn leases(&self) -> MutexGuard<'_, HashMap<JobId, Lease>> {
        self.leases.lock()
    }

    /// The whole job from its file, if the index knows it.
    async fn read(&self, id: &JobId) -> Option<Job> {
        if !self.jobs.read().contains_key(id) {
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

//! What the job queue must do, whatever keeps it: the `JobStore` trait.
//! The file back end is `queue::FileJobStore`; a shared back end (Redis
//! streams and consumer groups, issue 15) implements it again and passes
//! the same `conformance` suite.
//!
//! Leases: `claim` hands a job to one worker (named by a `WorkerId`) for
//! `lease()`; the worker `renew`s it while it works and `finish`es only
//! while it still holds it. A job whose lease ran out (its worker died or
//! hangs) is put back by `reclaim_expired` — any worker calls it — or given
//! up after `MAX_ATTEMPTS` starts. In Redis terms: `claim` is XREADGROUP,
//! the lease length XAUTOCLAIM's min-idle-time, `renew` an XCLAIM by the
//! same consumer (resetting the idle time), `finish` an XACK.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::answer::Answer;
use super::engine::EngineError;
use super::job::{Job, JobId, JobStatus};

/// A job is started at most this often (crashes and lost leases included).
pub const MAX_ATTEMPTS: u32 = 3;
/// Jobs one client may have pending or processing (SPEC §5.1).
pub const MAX_UNFINISHED_PER_OWNER: usize = 20;

/// A filter over job summaries (who may see what).
pub type Visible<'a> = &'a (dyn Fn(&Job) -> bool + Sync);

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct QueueCounts {
    pub pending: usize,
    pub processing: usize,
    pub completed: usize,
    pub failed: usize,
}

impl QueueCounts {
    /// The number of `jobs` in each status (both back ends count so).
    pub fn of<'a>(jobs: impl IntoIterator<Item = &'a Job>) -> Self {
        let mut counts = Self::default();
        for job in jobs {
            match job.status {
                JobStatus::Pending => counts.pending += 1,
                JobStatus::Processing => counts.processing += 1,
                JobStatus::Completed => counts.completed += 1,
                JobStatus::Failed => counts.failed += 1,
            }
        }
        counts
    }
}

/// The client already has `MAX_UNFINISHED_PER_OWNER` unfinished jobs.
#[derive(Debug, PartialEq, Eq)]
pub struct TooManyJobs;

/// One worker, unique across instances: `<instance>-<n>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkerId(String);

impl WorkerId {
    /// Worker `n` of the instance `instance` (random per process start).
    pub fn new(instance: &str, n: usize) -> Self {
        Self(format!("{instance}-{n}"))
    }

    /// A random instance name, fresh at each start.
    pub fn instance() -> String {
        format!("{:08x}", rand::random::<u32>())
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[async_trait]
pub trait JobStore: Send + Sync + fmt::Debug {
    /// Stores a new job and wakes a worker, unless the owner is `limited`
    /// (a client) and already has `MAX_UNFINISHED_PER_OWNER` jobs waiting
    /// or running — decided atomically with the insert.
    async fn submit(&self, job: Job, limited: bool) -> anyhow::Result<Result<(), TooManyJobs>>;

    /// The whole job, or `None` if there is none (or it cannot be read).
    async fn get(&self, id: &JobId) -> anyhow::Result<Option<Job>>;

    /// Summaries (question shortened, no context or result) of the jobs
    /// `visible` admits, newest first.
    async fn list(&self, visible: Visible<'_>) -> anyhow::Result<Vec<Job>>;

    async fn counts(&self, visible: Visible<'_>) -> anyhow::Result<QueueCounts>;

    /// Takes the next pending job, round-robin across owners, marks it
    /// `processing` (one attempt more) and leases it to `worker`.
    async fn claim(&self, worker: &WorkerId) -> anyhow::Result<Option<Job>>;

    /// Extends `worker`'s lease on `id`; `false` if it no longer holds it.
    async fn renew(&self, id: &JobId, worker: &WorkerId) -> anyhow::Result<bool>;

    /// Records the answer or the error if `worker` still holds the lease
    /// (`true`); `false`, recording nothing, if the job was taken from it.
    async fn finish(
        &self,
        id: &JobId,
        worker: &WorkerId,
        outcome: Result<Answer, EngineError>,
    ) -> anyhow::Result<bool>;

    /// Cancels a pending job: `Ok(None)` if there is no such job, `Err`
    /// with the job if it is no longer pending.
    async fn cancel(&self, id: &JobId, by: &str) -> anyhow::Result<Result<Option<Job>, Job>>;

    /// Puts back every job whose lease ran out — pending again, or failed
    /// after `MAX_ATTEMPTS` starts — and says how many.
    async fn reclaim_expired(&self) -> anyhow::Result<usize>;

    /// Deletes jobs that finished more than 7 days ago.
    async fn prune(&self) -> anyhow::Result<usize>;

    /// Waits until a job may have been submitted.
    async fn work_arrived(&self);

    /// How long a lease lasts; workers renew at a third of it.
    fn lease(&self) -> Duration;

    /// The whole jobs for summaries from `list`.
    async fn load_all(&self, summaries: Vec<Job>) -> anyhow::Result<Vec<Job>> {
        let mut jobs = Vec::with_capacity(summaries.len());
        for summary in summaries {
            if let Some(job) = self.get(&summary.id).await? {
                jobs.push(job);
            }
        }
        Ok(jobs)
    }
}

/// The error a job gets when its lease ran out `MAX_ATTEMPTS` times.
pub(super) fn given_up() -> String {
    format!(
        "The server stopped while answering this question {MAX_ATTEMPTS} times; giving up. \
         Ask again, or check the server log for what stops it."
    )
}

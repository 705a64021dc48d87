//! The workers started beside the HTTP server. Each repeats `run_one`:
//! put back jobs whose lease ran out, claim the next job, answer it while
//! renewing the lease, record the outcome. Tests call `run_one` directly.

use std::sync::Arc;
use std::time::Duration;

use super::engine::Answerer;
use super::job::JobId;
use super::store::{JobStore, WorkerId};

/// How long an idle worker waits before looking again without a wake-up
/// (and so how soon an expired lease is noticed by an idle instance).
const IDLE_POLL: Duration = Duration::from_secs(5);

/// What one `run_one` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// No job was pending.
    Idle,
    /// The job was answered.
    Completed(JobId),
    /// The job failed; its `error` says why.
    Failed(JobId),
    /// The lease ran out and another worker took the job: this worker
    /// stopped and recorded nothing.
    LeaseLost(JobId),
}

/// One worker: its name in leases, the store and the engine.
#[derive(Debug, Clone)]
pub struct Worker {
    pub id: WorkerId,
    pub store: Arc<dyn JobStore>,
    pub answerer: Answerer,
}

impl Worker {
    /// Claims the next job (after putting back expired ones), answers it
    /// while renewing its lease every third of the lease, and records the
    /// outcome.
    pub async fn run_one(&self) -> anyhow::Result<Step> {
        self.store.reclaim_expired().await?;
        let Some(job) = self.store.claim(&self.id).await? else {
            return Ok(Step::Idle);
        };
        tracing::info!(job = %job.id, attempt = job.attempts, worker = %self.id,
            engine = self.answerer.engine.label(), "answering a question");
        let id = job.id.clone();
        let answering = self.answerer.answer(&job);
        tokio::pin!(answering);
        let mut heartbeat =
            tokio::time::interval((self.store.lease() / 3).max(Duration::from_millis(1)));
        heartbeat.tick().await;
        let outcome = loop {
            tokio::select! {
                outcome = &mut answering => break outcome,
                _ = heartbeat.tick() => {
                    if !self.store.renew(&job.id, &self.id).await? {
                        // Dropping `answering` stops the engine (and kills
                        // a command's process group).
                        tracing::warn!(job = %job.id, worker = %self.id,
                            "the job's lease was lost; another worker has it");
                        return Ok(Step::LeaseLost(id));
                    }
                }
            }
        };
        let failed = outcome.is_err();
        match &outcome {
            Ok(_) => tracing::info!(job = %job.id, "the question was answered"),
            Err(error) => tracing::warn!(job = %job.id, error = %error, "the question failed"),
        }
        if !self.store.finish(&id, &self.id, outcome).await? {
            tracing::warn!(job = %job.id, worker = %self.id,
                "the job's lease was lost before its outcome was recorded");
            return Ok(Step::LeaseLost(id));
        }
        Ok(if failed {
            Step::Failed(id)
        } else {
            Step::Completed(id)
        })
    }

    /// Runs jobs until the process stops.
    async fn run(self) {
        loop {
            match self.run_one().await {
                Ok(Step::Idle) => {
                    tokio::select! {
                        () = self.store.work_arrived() => {}
                        () = tokio::time::sleep(IDLE_POLL) => {}
                    }
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::error!(error = format!("{err:#}"), worker = %self.id,
                        "cannot take or record a job");
                    tokio::time::sleep(IDLE_POLL).await;
                }
            }
        }
    }
}

/// Starts `concurrency` workers named after a fresh instance id.
pub fn spawn_workers(store: Arc<dyn JobStore>, answerer: Answerer, concurrency: usize) {
    let instance = WorkerId::instance();
    for n in 0..concurrency.max(1) {
        let worker = Worker {
            id: WorkerId::new(&instance, n),
            store: store.clone(),
            answerer: answerer.clone(),
        };
        tokio::spawn(worker.run());
    }
}

//! The changes of a job's state, written once for every `JobStore` back
//! end: a back end decides *when* (atomically, under its lease and lock)
//! and calls these for *what* changes, so a second back end (Redis) does
//! not repeat the fields, the give-up policy or the messages.

use chrono::Utc;

use super::answer::Answer;
use super::engine::EngineError;
use super::job::{Job, JobStatus};
use super::store::{given_up, MAX_ATTEMPTS};

impl Job {
    /// A worker takes the job: `processing`, one attempt more.
    pub fn start(&mut self) {
        self.status = JobStatus::Processing;
        self.started_at = Some(Utc::now());
        self.attempts += 1;
    }

    /// Records the engine's outcome: `completed` with its answer, or
    /// `failed` with its error; the run time goes to the job metrics.
    pub fn finish(&mut self, outcome: Result<Answer, EngineError>) {
        self.completed_at = Some(Utc::now());
        if let (Some(started), Some(completed)) = (self.started_at, self.completed_at) {
            crate::metrics::job_finished((completed - started).to_std().unwrap_or_default());
        }
        match outcome {
            Ok(answer) => {
                self.status = JobStatus::Completed;
                self.result = Some(answer);
            }
            Err(error) => {
                self.status = JobStatus::Failed;
                self.error = Some(error.to_string());
            }
        }
    }

    /// Cancels a pending job on behalf of `by`; `false`, changing nothing,
    /// if it is no longer pending.
    pub fn cancel(&mut self, by: &str) -> bool {
        if self.status != JobStatus::Pending {
            return false;
        }
        self.status = JobStatus::Failed;
        self.error = Some(format!("Cancelled by {by} before it started"));
        self.completed_at = Some(Utc::now());
        true
    }

    /// The job's worker is gone: pending again, or failed after
    /// `MAX_ATTEMPTS` starts.
    pub fn put_back(&mut self) {
        if self.attempts >= MAX_ATTEMPTS {
            self.status = JobStatus::Failed;
            self.completed_at = Some(Utc::now());
            self.error = Some(given_up());
        } else {
            self.status = JobStatus::Pending;
            self.started_at = None;
        }
    }
}

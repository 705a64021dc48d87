//! Questions as jobs: the persistent queue under `<DATA_DIR>/queue/`, the
//! worker that answers them, the two answer engines and asking a question.
//! Layer 2, a domain area (README, "The module map"): the job API is `api::jobs`.

mod ask;
pub mod engine;
mod job;
mod queue;
mod worker;

pub use ask::{queue_status, submit_question, visible_to, AskError, AskRequest};
pub use job::{Job, JobId, JobStatus};
pub use queue::{JobQueue, QueueCounts, MAX_ATTEMPTS};
pub use worker::spawn_workers;

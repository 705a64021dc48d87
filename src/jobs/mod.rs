//! Questions as jobs: the persistent queue under `<DATA_DIR>/queue/`, the
//! worker that answers them, the two answer engines and the job API.

pub mod engine;
mod job;
mod queue;
pub(crate) mod routes;
mod worker;

pub use job::{Job, JobId, JobStatus};
pub use queue::{JobQueue, QueueCounts, MAX_ATTEMPTS};
pub use routes::{api_routes, queue_status, submit_question, AskRequest};
pub use worker::spawn_workers;

//! Questions as jobs: the persistent queue under `<DATA_DIR>/queue/`, the
//! worker that answers them, the two answer engines and the job API.

pub mod answer;
mod ask;
pub mod engine;
mod job;
mod queue;
pub(crate) mod routes;
mod worker;

pub use answer::{Answer, BuiltinAnswer, CommandAnswer};
pub use engine::EngineError;
pub use job::{Job, JobId, JobStatus};
pub use queue::{JobQueue, QueueCounts, MAX_ATTEMPTS};
pub use ask::{submit_question, AskError, AskField, AskRequest, MAX_QUESTION_BYTES};
pub use routes::{api_routes, queue_status};
pub use worker::spawn_workers;

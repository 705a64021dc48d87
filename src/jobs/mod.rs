//! Questions as jobs: asking (`ask`), the `JobStore` trait and its file
//! back end under `<DATA_DIR>/queue/` (`store`, `queue`), the workers that
//! claim, lease and answer jobs one `run_one` at a time (`worker`), the
//! state changes every back end shares (`lifecycle`), the two
//! answer engines and their typed `Answer`.
//! Layer 2, a domain area (README, "The module map"): the job API is `api::jobs`.

pub mod answer;
mod ask;
#[cfg(test)]
mod conformance;
pub mod engine;
mod job;
mod lifecycle;
mod queue;
mod redis_store;
mod store;
mod worker;

pub use answer::{Answer, BuiltinAnswer, CommandAnswer};
pub use ask::{submit_question, AskError, AskField, AskRequest, MAX_QUESTION_BYTES};
pub use engine::EngineError;
pub use job::{Job, JobId, JobStatus};
pub use queue::FileJobStore;
pub use redis_store::RedisJobStore;
pub use store::{
    JobStore, QueueCounts, TooManyJobs, WorkerId, MAX_ATTEMPTS, MAX_UNFINISHED_PER_OWNER,
};
pub use worker::{spawn_workers, Step, Worker};

//! The workers started beside the HTTP server: each takes the oldest
//! pending job, answers it and records the outcome, one job at a time.

use std::sync::Arc;
use std::time::Duration;

use super::engine::Answerer;
use super::queue::JobQueue;

/// How long an idle worker waits before looking again without a wake-up.
const IDLE_POLL: Duration = Duration::from_secs(5);

pub fn spawn_workers(queue: Arc<JobQueue>, answerer: Answerer, concurrency: usize) {
    for _ in 0..concurrency.max(1) {
        tokio::spawn(work(queue.clone(), answerer.clone()));
    }
}

async fn work(queue: Arc<JobQueue>, answerer: Answerer) {
    loop {
        match queue.claim_next().await {
            Ok(Some(job)) => {
                tracing::info!(job = %job.id, attempt = job.attempts, engine = answerer.engine.label(), "answering a question");
                let outcome = answerer.answer(&job).await;
                match &outcome {
                    Ok(_) => tracing::info!(job = %job.id, "the question was answered"),
                    Err(error) => {
                        tracing::warn!(job = %job.id, error = %error, "the question failed")
                    }
                }
                if let Err(err) = queue.finish(&job.id, outcome).await {
                    tracing::error!(job = %job.id, error = format!("{err:#}"), "cannot record a job's outcome");
                    tokio::time::sleep(IDLE_POLL).await;
                }
            }
            Ok(None) => {
                tokio::select! {
                    () = queue.work_arrived() => {}
                    () = tokio::time::sleep(IDLE_POLL) => {}
                }
            }
            Err(err) => {
                tracing::error!(error = format!("{err:#}"), "cannot take the next job");
                tokio::time::sleep(IDLE_POLL).await;
            }
        }
    }
}

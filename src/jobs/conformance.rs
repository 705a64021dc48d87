//! The conformance suite every `JobStore` passes: generic async checks that
//! take a factory for fresh, empty stores with a given lease length. The
//! file back end runs it below; another back end adds one line per check.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::answer::{Answer, CommandAnswer};
use super::engine::EngineError;
use super::job::{Job, JobId, JobStatus};
use super::store::{JobStore, TooManyJobs, WorkerId, MAX_ATTEMPTS, MAX_UNFINISHED_PER_OWNER};

/// A fresh store, and whatever must live as long as it (a temp dir).
pub type Made = (Arc<dyn JobStore>, Box<dyn Send>);

pub fn job(owner: &str, question: &str) -> Job {
    let now = Utc::now();
    Job {
        id: JobId::generate(now),
        kind: "ask".into(),
        status: JobStatus::Pending,
        workspace_id: "ws-1".into(),
        question: question.into(),
        context: Some("some context".into()),
        source_branch: None,
        owner_id: owner.into(),
        created_at: now,
        started_at: None,
        completed_at: None,
        result: None,
        error: None,
        attempts: 0,
    }
}

fn answer(text: &str) -> Answer {
    Answer::Command(CommandAnswer {
        execution_time_ms: 1,
        exit_code: 0,
        output: text.into(),
        source_branch: None,
        truncated: false,
    })
}

fn worker(name: &str) -> WorkerId {
    WorkerId::new(name, 0)
}

const LONG: Duration = Duration::from_secs(60);
const SHORT: Duration = Duration::from_millis(50);

pub async fn a_job_reads_back_whole_and_lists_as_a_summary<F, Fut>(make: F)
where
    F: Fn(Duration) -> Fut,
    Fut: Future<Output = Made>,
{
    let (store, _guard) = make(LONG).await;
    let asked = job("a", "what is a zebra?");
    store.submit(asked.clone(), true).await.unwrap().unwrap();
    assert_eq!(store.get(&asked.id).await.unwrap(), Some(asked.clone()));
    let listed = store.list(&|_| true).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, asked.id);
    assert_eq!(listed[0].context, None, "a summary has no context");
    let missing = JobId::generate(Utc::now());
    assert_eq!(store.get(&missing).await.unwrap(), None);
    let counts = store.counts(&|_| true).await.unwrap();
    assert_eq!((counts.pending, counts.processing), (1, 0));
}

pub async fn owners_take_turns_whatever_their_backlog<F, Fut>(make: F)
where
    F: Fn(Duration) -> Fut,
    Fut: Future<Output = Made>,
{
    let (store, _guard) = make(LONG).await;
    for owner in ["a", "a", "a", "b", "c", "c"] {
        store.submit(job(owner, "q"), true).await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut order = String::new();
    while let Some(job) = store.claim(&worker("w")).await.unwrap() {
        order.push_str(&job.owner_id);
    }
    assert_eq!(order, "abcaca");
}

pub async fn a_client_may_have_only_so_many_unfinished_jobs<F, Fut>(make: F)
where
    F: Fn(Duration) -> Fut,
    Fut: Future<Output = Made>,
{
    let (store, _guard) = make(LONG).await;
    for _ in 0..MAX_UNFINISHED_PER_OWNER {
        store.submit(job("a", "q"), true).await.unwrap().unwrap();
    }
    assert_eq!(
        store.submit(job("a", "q"), true).await.unwrap(),
        Err(TooManyJobs)
    );
    assert_eq!(
        store.submit(job("a", "q"), false).await.unwrap(),
        Ok(()),
        "unlimited"
    );
    assert_eq!(
        store.submit(job("b", "q"), true).await.unwrap(),
        Ok(()),
        "per owner"
    );
}

pub async fn a_claimed_job_belongs_to_its_worker_until_it_finishes<F, Fut>(make: F)
where
    F: Fn(Duration) -> Fut,
    Fut: Future<Output = Made>,
{
    let (store, _guard) = make(LONG).await;
    let asked = job("a", "q");
    store.submit(asked.clone(), true).await.unwrap().unwrap();
    let claimed = store.claim(&worker("one")).await.unwrap().unwrap();
    assert_eq!(
        (claimed.id.clone(), claimed.status, claimed.attempts),
        (asked.id.clone(), JobStatus::Processing, 1)
    );
    assert_eq!(store.claim(&worker("two")).await.unwrap(), None);
    assert!(!store.renew(&asked.id, &worker("two")).await.unwrap());
    assert!(!store
        .finish(&asked.id, &worker("two"), Ok(answer("no")))
        .await
        .unwrap());
    assert_eq!(
        store.reclaim_expired().await.unwrap(),
        0,
        "the lease is still running"
    );
    assert!(store.renew(&asked.id, &worker("one")).await.unwrap());
    assert!(store
        .finish(&asked.id, &worker("one"), Ok(answer("yes")))
        .await
        .unwrap());
    let done = store.get(&asked.id).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    assert_eq!(done.result, Some(answer("yes")));
    assert!(!store
        .finish(&asked.id, &worker("one"), Ok(answer("again")))
        .await
        .unwrap());
}

pub async fn a_job_whose_lease_expired_runs_once_more_elsewhere<F, Fut>(make: F)
where
    F: Fn(Duration) -> Fut,
    Fut: Future<Output = Made>,
{
    let (store, _guard) = make(SHORT).await;
    let asked = job("a", "q");
    store.submit(asked.clone(), true).await.unwrap().unwrap();
    store.claim(&worker("dead")).await.unwrap().unwrap();
    tokio::time::sleep(SHORT * 2).await;
    assert_eq!(store.reclaim_expired().await.unwrap(), 1);
    let again = store.claim(&worker("alive")).await.unwrap().unwrap();
    assert_eq!((again.id.clone(), again.attempts), (asked.id.clone(), 2));
    assert!(
        !store.renew(&asked.id, &worker("dead")).await.unwrap(),
        "the dead worker lost it"
    );
    assert!(!store
        .finish(&asked.id, &worker("dead"), Ok(answer("late")))
        .await
        .unwrap());
    assert!(store
        .finish(&asked.id, &worker("alive"), Err(EngineError::TimedOut(1)))
        .await
        .unwrap());
    let done = store.get(&asked.id).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("timed out after 1 s"));
}

pub async fn a_renewed_lease_is_not_taken<F, Fut>(make: F)
where
    F: Fn(Duration) -> Fut,
    Fut: Future<Output = Made>,
{
    let (store, _guard) = make(SHORT * 4).await;
    let asked = job("a", "q");
    store.submit(asked.clone(), true).await.unwrap().unwrap();
    store.claim(&worker("one")).await.unwrap().unwrap();
    for _ in 0..6 {
        tokio::time::sleep(SHORT).await;
        assert!(store.renew(&asked.id, &worker("one")).await.unwrap());
        assert_eq!(store.reclaim_expired().await.unwrap(), 0);
    }
    assert!(store
        .finish(&asked.id, &worker("one"), Ok(answer("ok")))
        .await
        .unwrap());
}

pub async fn a_job_is_given_up_after_its_last_attempt<F, Fut>(make: F)
where
    F: Fn(Duration) -> Fut,
    Fut: Future<Output = Made>,
{
    let (store, _guard) = make(SHORT).await;
    let asked = job("a", "q");
    store.submit(asked.clone(), true).await.unwrap().unwrap();
    for attempt in 1..=MAX_ATTEMPTS {
        let claimed = store.claim(&worker("dies")).await.unwrap().unwrap();
        assert_eq!(claimed.attempts, attempt);
        tokio::time::sleep(SHORT * 2).await;
        assert_eq!(store.reclaim_expired().await.unwrap(), 1);
    }
    assert_eq!(store.claim(&worker("dies")).await.unwrap(), None);
    let given_up = store.get(&asked.id).await.unwrap().unwrap();
    assert_eq!(given_up.status, JobStatus::Failed);
    assert!(given_up
        .error
        .unwrap()
        .contains(&format!("{MAX_ATTEMPTS} times")));
}

pub async fn only_a_pending_job_can_be_cancelled<F, Fut>(make: F)
where
    F: Fn(Duration) -> Fut,
    Fut: Future<Output = Made>,
{
    let (store, _guard) = make(LONG).await;
    let (first, second) = (job("a", "1"), job("a", "2"));
    store.submit(first.clone(), true).await.unwrap().unwrap();
    store.submit(second.clone(), true).await.unwrap().unwrap();
    let cancelled = store
        .cancel(&second.id, "a")
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(cancelled.status, JobStatus::Failed);
    assert!(store.cancel(&second.id, "a").await.unwrap().is_err());
    let claimed = store.claim(&worker("w")).await.unwrap().unwrap();
    assert_eq!(claimed.id, first.id, "a cancelled job is never claimed");
    assert!(store.cancel(&first.id, "a").await.unwrap().is_err());
    let missing = JobId::generate(Utc::now());
    assert_eq!(store.cancel(&missing, "a").await.unwrap(), Ok(None));
}

pub async fn jobs_finished_more_than_a_week_ago_are_pruned<F, Fut>(make: F)
where
    F: Fn(Duration) -> Fut,
    Fut: Future<Output = Made>,
{
    let (store, _guard) = make(LONG).await;
    let finished = |days: i64| Job {
        status: JobStatus::Completed,
        completed_at: Some(Utc::now() - chrono::Duration::days(days)),
        result: Some(answer("old")),
        ..job("a", "q")
    };
    let (old, recent) = (finished(8), finished(6));
    store.submit(old.clone(), false).await.unwrap().unwrap();
    store.submit(recent.clone(), false).await.unwrap().unwrap();
    assert_eq!(store.prune().await.unwrap(), 1);
    assert_eq!(store.get(&old.id).await.unwrap(), None);
    assert_eq!(store.get(&recent.id).await.unwrap(), Some(recent));
}

/// Runs every check against the stores `make` builds.
macro_rules! job_store_conformance {
    ($make:expr) => {
        mod conformance_suite {
            use super::*;
            use crate::jobs::conformance as suite;

            #[tokio::test]
            async fn a_job_reads_back_whole_and_lists_as_a_summary() {
                suite::a_job_reads_back_whole_and_lists_as_a_summary($make).await;
            }
            #[tokio::test]
            async fn owners_take_turns_whatever_their_backlog() {
                suite::owners_take_turns_whatever_their_backlog($make).await;
            }
            #[tokio::test]
            async fn a_client_may_have_only_so_many_unfinished_jobs() {
                suite::a_client_may_have_only_so_many_unfinished_jobs($make).await;
            }
            #[tokio::test]
            async fn a_claimed_job_belongs_to_its_worker_until_it_finishes() {
                suite::a_claimed_job_belongs_to_its_worker_until_it_finishes($make).await;
            }
            #[tokio::test]
            async fn a_job_whose_lease_expired_runs_once_more_elsewhere() {
                suite::a_job_whose_lease_expired_runs_once_more_elsewhere($make).await;
            }
            #[tokio::test]
            async fn a_renewed_lease_is_not_taken() {
                suite::a_renewed_lease_is_not_taken($make).await;
            }
            #[tokio::test]
            async fn a_job_is_given_up_after_its_last_attempt() {
                suite::a_job_is_given_up_after_its_last_attempt($make).await;
            }
            #[tokio::test]
            async fn only_a_pending_job_can_be_cancelled() {
                suite::only_a_pending_job_can_be_cancelled($make).await;
            }
            #[tokio::test]
            async fn jobs_finished_more_than_a_week_ago_are_pruned() {
                suite::jobs_finished_more_than_a_week_ago_are_pruned($make).await;
            }
        }
    };
}
pub(crate) use job_store_conformance;

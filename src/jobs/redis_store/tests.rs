use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::jobs::answer::CommandAnswer;
use crate::jobs::conformance::{job, job_store_conformance, Made};
use crate::store::redis::test_server;

async fn fresh(lease: Duration) -> Made {
    let redis = test_server::connect("jobs").await;
    (Arc::new(RedisJobStore::new(redis, lease)), Box::new(()))
}

job_store_conformance!(fresh);

/// Two instances' stores on one queue (one prefix), each with its own
/// connection.
async fn two_instances(name: &str, lease: Duration) -> [Arc<RedisJobStore>; 2] {
    let a = test_server::connect(name).await;
    let b = test_server::connect(name).await.with_prefix(a.prefix());
    [
        Arc::new(RedisJobStore::new(a, lease)),
        Arc::new(RedisJobStore::new(b, lease)),
    ]
}

fn answer() -> Answer {
    Answer::Command(CommandAnswer {
        execution_time_ms: 1,
        exit_code: 0,
        output: "done".into(),
        source_branch: None,
        truncated: false,
    })
}

#[tokio::test]
async fn twenty_jobs_on_two_instances_with_two_workers_each_run_exactly_once() {
    let instances = two_instances("jobs-once", Duration::from_secs(60)).await;
    for n in 0..20 {
        let owner = format!("owner-{}", n % 3);
        instances[n % 2]
            .submit(job(&owner, "q"), false)
            .await
            .unwrap()
            .unwrap();
    }
    let workers: Vec<_> = (0..4)
        .map(|n| {
            let store = instances[n % 2].clone();
            tokio::spawn(async move {
                let worker = WorkerId::new(&format!("instance-{}", n % 2), n);
                let mut ran = Vec::new();
                while let Some(job) = store.claim(&worker).await.unwrap() {
                    assert!(store.finish(&job.id, &worker, Ok(answer())).await.unwrap());
                    ran.push(job.id);
                }
                ran
            })
        })
        .collect();
    let mut runs: HashMap<JobId, usize> = HashMap::new();
    for worker in workers {
        for id in worker.await.unwrap() {
            *runs.entry(id).or_default() += 1;
        }
    }
    assert_eq!(runs.len(), 20);
    assert!(runs.values().all(|&n| n == 1), "{runs:?}");
    let counts = instances[1].counts(&|_| true).await.unwrap();
    assert_eq!(
        (counts.completed, counts.pending, counts.processing),
        (20, 0, 0)
    );
}

#[tokio::test]
async fn a_job_held_by_a_dead_instance_is_taken_over_by_the_other_after_its_lease() {
    let lease = Duration::from_millis(100);
    let [a, b] = two_instances("jobs-takeover", lease).await;
    let asked = job("owner", "q");
    a.submit(asked.clone(), true).await.unwrap().unwrap();
    let dead = WorkerId::new("a", 0);
    a.claim(&dead).await.unwrap().unwrap();
    let alive = WorkerId::new("b", 0);
    assert_eq!(b.claim(&alive).await.unwrap(), None, "leased elsewhere");
    assert_eq!(
        b.reclaim_expired().await.unwrap(),
        0,
        "the lease still runs"
    );
    tokio::time::sleep(lease * 2).await;
    assert_eq!(b.reclaim_expired().await.unwrap(), 1);
    let again = b.claim(&alive).await.unwrap().unwrap();
    assert_eq!((again.id.clone(), again.attempts), (asked.id.clone(), 2));
    assert!(!a.renew(&asked.id, &dead).await.unwrap());
    assert!(!a.finish(&asked.id, &dead, Ok(answer())).await.unwrap());
    assert!(b.finish(&asked.id, &alive, Ok(answer())).await.unwrap());
    let done = a.get(&asked.id).await.unwrap().unwrap();
    assert_eq!(
        (done.status, done.result),
        (JobStatus::Completed, Some(answer()))
    );
}

#[tokio::test]
async fn owners_take_turns_across_instances() {
    let [a, b] = two_instances("jobs-turns", Duration::from_secs(60)).await;
    for (n, owner) in ["a", "a", "a", "b", "c", "c"].into_iter().enumerate() {
        let store = if n % 2 == 0 { &a } else { &b };
        store.submit(job(owner, "q"), true).await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut order = String::new();
    for n in 0.. {
        let store = if n % 2 == 0 { &b } else { &a };
        let Some(job) = store.claim(&WorkerId::new("w", n)).await.unwrap() else {
            break;
        };
        order.push_str(&job.owner_id);
    }
    assert_eq!(order, "abcaca");
}

#[tokio::test]
async fn the_limit_of_unfinished_jobs_holds_across_instances_under_concurrency() {
    let [a, b] = two_instances("jobs-limit", Duration::from_secs(60)).await;
    let submits: Vec<_> = (0..2 * MAX_UNFINISHED_PER_OWNER)
        .map(|n| {
            let store = if n % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { store.submit(job("busy", "q"), true).await.unwrap() })
        })
        .collect();
    let mut accepted = 0;
    for submit in submits {
        if submit.await.unwrap().is_ok() {
            accepted += 1;
        }
    }
    assert_eq!(accepted, MAX_UNFINISHED_PER_OWNER);
    let worker = WorkerId::new("w", 0);
    let claimed = a.claim(&worker).await.unwrap().unwrap();
    assert!(b.finish(&claimed.id, &worker, Ok(answer())).await.unwrap());
    assert_eq!(
        b.submit(job("busy", "q"), true).await.unwrap(),
        Ok(()),
        "one place freed"
    );
    assert_eq!(
        a.submit(job("busy", "q"), true).await.unwrap(),
        Err(TooManyJobs)
    );
}

#[tokio::test]
async fn a_job_submitted_on_one_instance_wakes_an_idle_worker_on_the_other() {
    let [a, b] = two_instances("jobs-wake", Duration::from_secs(60)).await;
    let waiting = tokio::spawn(async move {
        let started = std::time::Instant::now();
        b.work_arrived().await;
        started.elapsed()
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.submit(job("owner", "q"), true).await.unwrap().unwrap();
    let waited = tokio::time::timeout(Duration::from_secs(3), waiting)
        .await
        .expect("the other instance's worker was not woken")
        .unwrap();
    assert!(
        waited >= Duration::from_millis(100),
        "{waited:?}: woken before the job came"
    );
}

#[tokio::test]
async fn while_redis_is_down_the_queue_reports_unavailable_and_it_works_again_after_a_restart() {
    let mut server = test_server::Throwaway::start();
    let redis = Redis::connect(&server.url(), "jobs-outage").await.unwrap();
    let store = RedisJobStore::new(redis, Duration::from_secs(60));
    server.stop();
    let submitted = store.submit(job("owner", "q"), true).await;
    let err = submitted.unwrap_err();
    assert!(
        matches!(
            err.downcast_ref::<StoreError>(),
            Some(StoreError::Unavailable { .. })
        ),
        "{err:#}"
    );
    assert!(store.list(&|_| true).await.is_err(), "not an empty queue");
    assert!(store.claim(&WorkerId::new("w", 0)).await.is_err());
    server.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while store.counts(&|_| true).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "no reconnection");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let asked = job("owner", "q");
    store.submit(asked.clone(), true).await.unwrap().unwrap();
    assert_eq!(store.get(&asked.id).await.unwrap(), Some(asked));
}

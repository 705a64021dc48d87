//! Job leases, as a dead or slow worker would meet them: a job whose
//! worker stopped renewing is taken over and runs once more, at most
//! three times in all; a worker that keeps renewing keeps its job.

use std::time::Duration;

use portico::jobs::{EngineError, Step, Worker, WorkerId};
use serde_json::json;

use crate::helpers::{answer_repo, spawn_app_with_jobs_by_hand, TestApp, ADMIN_KEY};

const LEASE: Duration = Duration::from_millis(300);

async fn job(app: &TestApp, id: &str) -> serde_json::Value {
    let (status, job) = app.get_json(&format!("/api/jobs/{id}"), ADMIN_KEY).await;
    assert_eq!(status, 200, "{job}");
    job
}

async fn app_with_a_question(vars: &[(&str, &str)]) -> (TestApp, String, tempfile::TempDir) {
    let mut all = vec![("ADMIN_API_KEY", ADMIN_KEY)];
    all.extend_from_slice(vars);
    let app = spawn_app_with_jobs_by_hand(&all, LEASE).await;
    let repo = answer_repo();
    let workspace = app.register_workspace(repo.path()).await;
    let body = json!({"workspaceId": workspace, "question": "how is the token bucket refilled?"});
    let id = app.ask(ADMIN_KEY, body).await;
    (app, id, repo)
}

#[tokio::test]
async fn a_job_whose_worker_died_is_taken_over_after_its_lease_and_runs_once_more() {
    let (app, id, _repo) = app_with_a_question(&[]).await;
    let dead = WorkerId::new("dead-instance", 0);
    let claimed = app.jobs.store.claim(&dead).await.unwrap().unwrap();
    assert_eq!(claimed.id.as_str(), id);

    assert_eq!(app.run_job().await, Step::Idle, "taken within its lease");
    let held = job(&app, &id).await;
    assert_eq!(
        (held["status"].as_str(), held["attempts"].as_u64()),
        (Some("processing"), Some(1))
    );

    tokio::time::sleep(LEASE * 2).await;
    assert_eq!(app.run_job().await, Step::Completed(claimed.id.clone()));
    let done = job(&app, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["attempts"], 2, "{done}");
    assert_eq!(done["result"]["engine"], "builtin", "{done}");

    let late = app
        .jobs
        .store
        .finish(&claimed.id, &dead, Err(EngineError::TimedOut(1)));
    assert!(
        !late.await.unwrap(),
        "the dead worker's late outcome is refused"
    );
    assert_eq!(job(&app, &id).await, done);
}

#[tokio::test]
async fn a_job_whose_workers_keep_dying_is_given_up_after_three_attempts() {
    let (app, id, _repo) = app_with_a_question(&[]).await;
    for n in 0..3 {
        app.jobs.store.reclaim_expired().await.unwrap();
        let dead = WorkerId::new("dead-instance", n);
        let claimed = app.jobs.store.claim(&dead).await.unwrap();
        assert!(claimed.is_some(), "attempt {} was not started", n + 1);
        tokio::time::sleep(LEASE * 2).await;
    }
    assert_eq!(app.run_job().await, Step::Idle, "no fourth attempt");
    let given_up = job(&app, &id).await;
    assert_eq!(given_up["status"], "failed", "{given_up}");
    assert_eq!(given_up["attempts"], 3, "{given_up}");
    assert!(
        given_up["error"].as_str().unwrap().contains("3 times"),
        "{given_up}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_renews_its_lease_keeps_a_job_longer_than_the_lease() {
    let scripts = tempfile::tempdir().unwrap();
    let script = scripts.path().join("agent.sh");
    std::fs::write(&script, "cat > /dev/null\nsleep 1.2\necho slow answer\n").unwrap();
    let command = format!("sh '{}'", script.display());
    let paths = scripts.path().to_str().unwrap();
    let (app, id, _repo) =
        app_with_a_question(&[("ASK_COMMAND", &command), ("ASK_SANDBOX_PATHS", paths)]).await;
    let other = Worker {
        id: WorkerId::new("other-instance", 0),
        ..app.jobs.clone()
    };
    let slow = tokio::spawn({
        let worker = app.jobs.clone();
        async move { worker.run_one().await.unwrap() }
    });
    while job(&app, &id).await["status"] != "processing" {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for _ in 0..8 {
        tokio::time::sleep(LEASE / 2).await;
        assert_eq!(
            other.run_one().await.unwrap(),
            Step::Idle,
            "the job was taken over"
        );
    }
    assert!(matches!(slow.await.unwrap(), Step::Completed(done) if done.as_str() == id));
    let done = job(&app, &id).await;
    assert_eq!(
        (done["status"].as_str(), done["attempts"].as_u64()),
        (Some("completed"), Some(1))
    );
    assert_eq!(done["result"]["output"], "slow answer\n");
}

//! The queue across crashes and time: a SIGKILL loses, strands or doubles
//! no job; a job that keeps crashing the server is given up; old jobs go.

use std::time::Duration;

use portico::jobs::Step;
use serde_json::json;

use crate::helpers::{
    answer_repo, eventually, spawn_app, spawn_app_with_jobs_by_hand, start_server, TestClient,
    ADMIN_KEY,
};

const SLOW_AGENT: &str = r#"out="$1"
question="$(cat)"
sleep 1
echo "$question" >> "$out/completed.log"
echo "answered: $question"
"#;

/// A script agent that takes a second per question and logs each answer
/// it completes to `completed.log` in its own directory.
struct SlowAgent {
    scripts: tempfile::TempDir,
    command: String,
}

impl SlowAgent {
    fn new() -> Self {
        let scripts = tempfile::tempdir().unwrap();
        std::fs::write(scripts.path().join("agent.sh"), SLOW_AGENT).unwrap();
        let command = format!(
            "sh '{}' '{}'",
            scripts.path().join("agent.sh").display(),
            scripts.path().display()
        );
        SlowAgent { scripts, command }
    }

    /// Variables with this agent, the admin key and `extra`.
    fn vars<'a>(&'a self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut vars = vec![
            ("ADMIN_API_KEY", ADMIN_KEY),
            ("ASK_COMMAND", self.command.as_str()),
            (
                "ASK_SANDBOX_WRITE_PATHS",
                self.scripts.path().to_str().unwrap(),
            ),
        ];
        vars.extend_from_slice(extra);
        vars
    }

    fn completed_log(&self) -> String {
        std::fs::read_to_string(self.scripts.path().join("completed.log")).unwrap()
    }
}

async fn job_status(server: &TestClient, id: &str) -> String {
    server.job(ADMIN_KEY, id).await["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_while_answering_loses_strands_and_doubles_nothing() {
    let data = tempfile::tempdir().unwrap();
    let agent = SlowAgent::new();
    let vars = agent.vars(&[("BIND", "127.0.0.1:0")]);
    let mut server = start_server(data.path(), &vars);
    let repo = answer_repo();
    let workspace = server.register_workspace(repo.path()).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(
            server
                .ask_question(ADMIN_KEY, &workspace, &format!("question {n}"))
                .await,
        );
    }
    eventually(Duration::from_secs(10), || async {
        match job_status(&server, &ids[0]).await.as_str() {
            "processing" => Ok(()),
            status => Err(format!("the first job never started: {status}")),
        }
    })
    .await;
    assert_eq!(job_status(&server, &ids[2]).await, "pending");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let restarted = start_server(data.path(), &vars);
    for id in &ids {
        let job = restarted.wait_for_job(ADMIN_KEY, id).await;
        assert_eq!(job["status"], "completed", "{job}");
    }
    let job = restarted.wait_for_job(ADMIN_KEY, &ids[0]).await;
    assert_eq!(job["attempts"], 2, "the interrupted job ran again");
    let log = agent.completed_log();
    for n in 0..3 {
        let runs = log
            .lines()
            .filter(|line| *line == format!("question {n}"))
            .count();
        assert_eq!(
            runs, 1,
            "question {n} ran to completion {runs} times:\n{log}"
        );
    }
}

fn job_file(
    id: &str,
    status: &str,
    attempts: u32,
    completed_days_ago: Option<i64>,
) -> serde_json::Value {
    let now = chrono::Utc::now();
    let mut job = json!({
        "id": id, "type": "ask", "status": status, "workspaceId": "ws-gone", "question": "q",
        "ownerId": "admin-key", "createdAt": now - chrono::Duration::days(10), "attempts": attempts,
    });
    if let Some(days) = completed_days_ago {
        job["completedAt"] = json!(now - chrono::Duration::days(days));
        job["result"] = json!({"output": "old", "engine": "builtin", "executionTimeMs": 1});
    }
    job
}

#[tokio::test]
async fn a_job_that_crashed_the_server_three_times_is_given_up_and_old_jobs_are_deleted() {
    let mut app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let doomed = "2026-01-01T00-00-00Z-0000000a";
    let old = "2026-01-01T00-00-00Z-0000000b";
    let recent = "2026-01-01T00-00-00Z-0000000c";
    app.restart_with(|app| {
        for (id, job) in [
            (doomed, job_file(doomed, "processing", 3, None)),
            (old, job_file(old, "completed", 1, Some(8))),
            (recent, job_file(recent, "completed", 1, Some(6))),
        ] {
            std::fs::write(app.data_file(&format!("queue/{id}.json")), job.to_string()).unwrap();
        }
    })
    .await;
    let (status, job) = app
        .get_json(&format!("/api/jobs/{doomed}"), ADMIN_KEY)
        .await;
    assert_eq!(status, 200);
    assert_eq!(job["status"], "failed");
    assert!(job["error"].as_str().unwrap().contains("3 times"), "{job}");

    eventually(Duration::from_secs(10), || async {
        match app.get_json(&format!("/api/jobs/{old}"), ADMIN_KEY).await.0 {
            404 => Ok(()),
            _ => Err("the 8-day-old job was not deleted".to_owned()),
        }
    })
    .await;
    assert!(!app.data_file(&format!("queue/{old}.json")).exists());
    assert_eq!(
        app.get_json(&format!("/api/jobs/{recent}"), ADMIN_KEY)
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn a_pending_job_can_be_cancelled_by_its_owner_once() {
    let agent = SlowAgent::new();
    let app = spawn_app_with_jobs_by_hand(
        &agent.vars(&[("VALID_API_KEYS", "owner-key-123")]),
        Duration::from_secs(30),
    )
    .await;
    let repo = answer_repo();
    let workspace = app.register_workspace(repo.path()).await;
    let mut ids = Vec::new();
    for n in 0..2 {
        ids.push(
            app.ask_question("owner-key-123", &workspace, &format!("q{n}"))
                .await,
        );
    }
    let cancel = |id: String| {
        let app = &app;
        async move {
            app.delete(&format!("/api/jobs/{id}"), "owner-key-123")
                .await
        }
    };
    let cancelled = cancel(ids[1].clone()).await;
    assert_eq!(cancelled.status(), 200);
    let job: serde_json::Value = cancelled.json().await.unwrap();
    assert_eq!(job["status"], "failed");
    assert!(job["error"].as_str().unwrap().contains("Cancelled"));
    let again = cancel(ids[1].clone()).await;
    assert_eq!(again.status(), 409);

    assert!(matches!(app.run_job().await, Step::Completed(id) if id.as_str() == ids[0]));
    assert_eq!(
        app.run_job().await,
        Step::Idle,
        "a cancelled job never runs"
    );
    let log = agent.completed_log();
    assert!(!log.contains("q1"), "a cancelled job never runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_concurrency_answers_that_many_questions_at_once() {
    let data = tempfile::tempdir().unwrap();
    let agent = SlowAgent::new();
    let vars = agent.vars(&[("BIND", "127.0.0.1:0"), ("JOB_CONCURRENCY", "2")]);
    let server = start_server(data.path(), &vars);
    let repo = answer_repo();
    let workspace = server.register_workspace(repo.path()).await;
    let ids = [
        server.ask_question(ADMIN_KEY, &workspace, "first").await,
        server.ask_question(ADMIN_KEY, &workspace, "second").await,
        server.ask_question(ADMIN_KEY, &workspace, "third").await,
    ];
    eventually(Duration::from_secs(10), || async {
        let (_, status) = server.get_json("/api/queue/status", ADMIN_KEY).await;
        let processing = status["counts"]["processing"].as_u64().unwrap();
        assert!(
            processing <= 2,
            "more than JOB_CONCURRENCY at once: {status}"
        );
        if processing == 2 {
            Ok(())
        } else {
            Err(format!("two jobs never ran at once: {status}"))
        }
    })
    .await;
    for id in &ids {
        assert_eq!(
            server.wait_for_job(ADMIN_KEY, id).await["status"],
            "completed"
        );
    }
}

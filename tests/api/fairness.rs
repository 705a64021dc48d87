//! Fairness and size (SPEC §5.1): at most 20 unfinished jobs per client,
//! workers take jobs round-robin across clients, and no answer echoes the
//! question back.

use std::time::Duration;

use portico::jobs::Step;
use serde_json::json;
use tempfile::TempDir;

use crate::helpers::{answer_repo, spawn_app, spawn_app_with_jobs_by_hand, TestApp, ADMIN_KEY};

const FIRST: &str = "first-client-key-0001";
const SECOND: &str = "second-client-key-0002";
const THIRD: &str = "third-client-key-0003";

/// An app whose command takes `seconds` per question; with `by_hand`, no
/// worker runs and the test steps the queue with `run_job`.
async fn slow_app(
    seconds: &str,
    scripts: &tempfile::TempDir,
    by_hand: bool,
) -> (TestApp, String, TempDir) {
    let script = scripts.path().join("agent.sh");
    std::fs::write(
        &script,
        format!("cat > /dev/null\nsleep {seconds}\necho done\n"),
    )
    .unwrap();
    let command = format!("sh '{}'", script.display());
    let keys = format!("{FIRST},{SECOND},{THIRD}");
    let vars = [
        ("ADMIN_API_KEY", ADMIN_KEY),
        ("VALID_API_KEYS", &keys),
        ("API_RATE_LIMIT", "1000"),
        ("ASK_COMMAND", &command),
        ("ASK_SANDBOX_PATHS", scripts.path().to_str().unwrap()),
    ];
    let app = if by_hand {
        spawn_app_with_jobs_by_hand(&vars, Duration::from_secs(30)).await
    } else {
        spawn_app(&vars).await
    };
    let repo = answer_repo();
    let workspace = app.register_workspace(repo.path()).await;
    (app, workspace, repo)
}

fn question(workspace: &str, text: &str) -> serde_json::Value {
    json!({"workspaceId": workspace, "question": text})
}

#[tokio::test]
async fn a_second_clients_job_runs_before_the_first_clients_backlog_is_done() {
    let scripts = tempfile::tempdir().unwrap();
    let (app, workspace, _repo) = slow_app("0", &scripts, true).await;
    for n in 0..20 {
        app.ask(FIRST, question(&workspace, &format!("backlog {n}")))
            .await;
    }
    let second = app.ask(SECOND, question(&workspace, "my turn?")).await;
    let mut waited_for = 0;
    loop {
        match app.run_job().await {
            Step::Completed(id) if id.as_str() == second => break,
            Step::Completed(_) => waited_for += 1,
            other => panic!("a job did not complete: {other:?}"),
        }
    }
    assert!(
        waited_for <= 1,
        "the second client waited for {waited_for} of the first client's jobs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_may_have_twenty_unfinished_jobs_even_when_asking_all_at_once() {
    let scripts = tempfile::tempdir().unwrap();
    let (app, workspace, _repo) = slow_app("30", &scripts, false).await;
    let asks = (0..200).map(|n| {
        let body = question(&workspace, &format!("flood {n}"));
        let app = &app;
        async move { app.post_json("/api/ask", THIRD, &body).await }
    });
    let responses = futures_util::future::join_all(asks).await;
    let mut accepted = 0;
    for response in responses {
        match response.status().as_u16() {
            202 => accepted += 1,
            429 => {
                let body: serde_json::Value = response.json().await.unwrap();
                assert_eq!(body["code"], "too-many-jobs", "{body}");
                assert!(body["error"]
                    .as_str()
                    .unwrap()
                    .contains("wait for one to finish"));
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(accepted, 20);
    let refused = app
        .post_json("/api/ask", THIRD, &question(&workspace, "one more"))
        .await;
    assert_eq!(refused.status(), 429);
    let other = app
        .post_json("/api/ask", SECOND, &question(&workspace, "someone else"))
        .await;
    assert_eq!(other.status(), 202, "the limit is per client");
}

#[tokio::test]
async fn an_answer_never_echoes_a_large_question_or_context() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let repo = answer_repo();
    let workspace = app.register_workspace(repo.path()).await;
    let words: Vec<String> = (0..4000).map(|n| format!("qqzx{n:05}")).collect();
    let text = words.join(" ");
    let question_text = &text[..32 * 1024 - 1];
    let job = app
        .ask_and_wait(
            ADMIN_KEY,
            json!({"workspaceId": workspace, "question": question_text, "context": text.repeat(6)}),
        )
        .await;
    assert_eq!(job["status"], "completed", "{job}");
    let result = job["result"].to_string();
    assert!(
        !result.contains("qqzx"),
        "the answer echoes the question: {result}"
    );
    assert!(result.len() < 2048, "the answer is {} bytes", result.len());
}

//! The built-in engine's index over HTTP: what a workspace holds now is
//! what is answered, whatever was indexed for an earlier question.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{answer_repo, spawn_app_with_jobs_by_hand, TestApp, ADMIN_KEY};

const CLIENT: &str = "client-engine-index-0123456789";

async fn ask(app: &TestApp, workspace_id: &str, question: &str) -> serde_json::Value {
    let job = app
        .ask_and_wait(
            CLIENT,
            json!({"workspaceId": workspace_id, "question": question}),
        )
        .await;
    assert_eq!(job["status"], "completed", "{job}");
    job["result"].clone()
}

#[tokio::test]
async fn files_edited_added_and_removed_between_questions_are_answered_as_they_are_now() {
    let app = spawn_app_with_jobs_by_hand(
        &[("ADMIN_API_KEY", ADMIN_KEY), ("VALID_API_KEYS", CLIENT)],
        Duration::from_secs(30),
    )
    .await;
    let repo = answer_repo();
    let root = repo.path();
    let workspace_id = app.register_workspace(root).await;

    let first = ask(&app, &workspace_id, "How is the token bucket refilled?").await;
    assert_eq!(
        first["matches"][0]["path"], "src/token_bucket.rs",
        "{first}"
    );
    let files_before = first["filesScanned"].as_u64().unwrap();

    // The same file rewritten, one added, one removed.
    std::fs::write(
        root.join("src/token_bucket.rs"),
        "pub fn drain_walrus_reservoir() {}\n",
    )
    .unwrap();
    std::fs::write(
        root.join("src/refill.rs"),
        "/// Refills the token bucket.\npub fn refill_token_bucket() {}\n",
    )
    .unwrap();
    std::fs::remove_file(root.join("README.md")).unwrap();

    let second = ask(&app, &workspace_id, "How is the token bucket refilled?").await;
    assert_eq!(second["matches"][0]["path"], "src/refill.rs", "{second}");
    assert_eq!(second["filesScanned"].as_u64().unwrap(), files_before);
    let walrus = ask(
        &app,
        &workspace_id,
        "Where is the walrus reservoir drained?",
    )
    .await;
    assert_eq!(
        walrus["matches"][0]["path"], "src/token_bucket.rs",
        "{walrus}"
    );
    assert!(walrus["matches"][0]["snippet"]
        .as_str()
        .unwrap()
        .contains("drain_walrus_reservoir"));
    let readme = ask(&app, &workspace_id, "demo project").await;
    assert!(
        readme["matches"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["path"] != "README.md"),
        "{readme}"
    );
}

//! Workspaces, `POST /api/ask` and the job API over HTTP.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{
    answer_repo, assert_error, git, spawn_app_with_jobs_by_hand, TestApp, ADMIN_KEY,
};

const CLIENT_A: &str = "client-a-key-0123456789";
const CLIENT_B: &str = "client-b-key-0123456789";

/// An app whose jobs run when the test waits for them, not by polling.
async fn app() -> TestApp {
    spawn_app_with_jobs_by_hand(
        &[
            ("ADMIN_API_KEY", ADMIN_KEY),
            ("VALID_API_KEYS", &format!("{CLIENT_A},{CLIENT_B}")),
        ],
        Duration::from_secs(30),
    )
    .await
}

fn assert_answers_from_the_token_bucket(job: &serde_json::Value) {
    assert_eq!(job["status"], "completed", "{job}");
    let result = &job["result"];
    assert_eq!(result["engine"], "builtin");
    assert!(result["executionTimeMs"].is_u64());
    let matches = result["matches"].as_array().unwrap();
    assert_eq!(matches[0]["path"], "src/token_bucket.rs", "{result}");
    assert!(matches[0]["startLine"].as_u64().unwrap() >= 1);
    assert!(matches[0]["endLine"].as_u64().unwrap() >= matches[0]["startLine"].as_u64().unwrap());
    assert!(matches[0]["score"].as_f64().unwrap() > 0.0);
    assert!(matches[0]["snippet"]
        .as_str()
        .unwrap()
        .contains("refill_token_bucket"));
    assert!(
        matches.iter().all(|m| m["path"] != "ignored_notes.txt"),
        "a git-ignored file was searched"
    );
    let output = result["output"].as_str().unwrap();
    assert!(output.contains("`src/token_bucket.rs:"), "{output}");
    assert!(output.contains("```rs"), "{output}");
    assert!(!output.contains("ignored_notes"));
}

#[tokio::test]
async fn a_question_about_a_registered_repository_is_answered_from_the_right_file() {
    let app = app().await;
    let repo = answer_repo();
    let workspace_id = app.register_workspace(repo.path()).await;

    let response = app
        .post_json(
            "/api/ask",
            CLIENT_A,
            &json!({"workspaceId": workspace_id, "question": "How is the token bucket refilled?"}),
        )
        .await;
    assert_eq!(response.status(), 202);
    let body: serde_json::Value = response.json().await.unwrap();
    let job_id = body["jobId"].as_str().unwrap().to_owned();
    assert_eq!(
        body,
        json!({
            "success": true, "queued": true, "jobId": job_id,
            "message": "Job queued - poll /api/jobs/:jobId for results",
            "workspace": {"id": workspace_id, "name": "demo", "targetBranch": "main"},
        })
    );
    let job = app.wait_for_job(CLIENT_A, &job_id).await;
    assert_eq!(job["type"], "ask");
    assert_eq!(job["workspaceId"], workspace_id.as_str());
    for field in ["createdAt", "startedAt", "completedAt"] {
        assert!(job[field].is_string(), "{field}");
    }
    assert_answers_from_the_token_bucket(&job);
}

#[tokio::test]
async fn a_file_url_is_cloned_into_the_data_dir_and_answered_from() {
    let app = app().await;
    let repo = answer_repo();
    let url = format!("file://{}", repo.path().display());
    let workspace = app
        .add_workspace(json!({"name": "clone", "repoUrl": url}))
        .await;
    assert_eq!(workspace["repoUrl"], url.as_str());
    assert_eq!(workspace["targetBranch"], "main");
    let path = std::path::PathBuf::from(workspace["path"].as_str().unwrap());
    assert!(
        path.starts_with(app.data_dir.path().canonicalize().unwrap()),
        "{}",
        path.display()
    );
    assert!(path.join("src/token_bucket.rs").is_file());

    let id = workspace["id"].as_str().unwrap();
    let job = app
        .ask_and_wait(
            CLIENT_A,
            json!({"workspaceId": id, "question": "refill the token bucket"}),
        )
        .await;
    assert_answers_from_the_token_bucket(&job);

    let (_, list) = app.get_json("/api/workspaces", CLIENT_B).await;
    assert!(list.as_array().unwrap().iter().any(|w| w["id"] == id));
}

#[tokio::test]
async fn a_clone_of_a_branch_checks_out_that_branch() {
    let app = app().await;
    let repo = answer_repo();
    let body = json!({"name": "feature", "repoUrl": repo.path(), "branch": "feature"});
    let response = app.post_json("/api/workspaces", ADMIN_KEY, &body).await;
    assert_eq!(response.status(), 201);
    let workspace: serde_json::Value = response.json().await.unwrap();
    assert_eq!(workspace["targetBranch"], "feature");
    assert!(std::path::Path::new(workspace["path"].as_str().unwrap())
        .join("src/zebra_feature.rs")
        .is_file());
}

#[tokio::test]
async fn a_source_branch_is_answered_from_that_branch_without_touching_the_checkout() {
    let app = app().await;
    let repo = answer_repo();
    let workspace_id = app.register_workspace(repo.path()).await;
    let head_before = git(repo.path(), &["rev-parse", "HEAD"]);

    let job = app
        .ask_and_wait(CLIENT_A, json!({"workspaceId": workspace_id, "question": "Where do zebras gallop?", "sourceBranch": "feature"}))
        .await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["result"]["matches"][0]["path"], "src/zebra_feature.rs");

    assert_eq!(
        git(repo.path(), &["rev-parse", "--abbrev-ref", "HEAD"]),
        "main"
    );
    assert_eq!(git(repo.path(), &["rev-parse", "HEAD"]), head_before);
    assert_eq!(git(repo.path(), &["status", "--porcelain"]), "");
    assert!(!repo.path().join("src/zebra_feature.rs").exists());

    let missing = app
        .post_json("/api/ask", CLIENT_A, &json!({"workspaceId": workspace_id, "question": "q", "sourceBranch": "no-such-branch"}))
        .await;
    let body = assert_error(missing, 400, "invalid-request").await;
    assert!(body["details"]["sourceBranch"].is_string());
    let option = app
        .post_json("/api/ask", CLIENT_A, &json!({"workspaceId": workspace_id, "question": "q", "sourceBranch": "--output=/tmp/x"}))
        .await;
    assert_error(option, 400, "invalid-request").await;
}

#[tokio::test]
async fn only_admins_register_workspaces() {
    let app = app().await;
    let repo = answer_repo();
    let response = app
        .post_json(
            "/api/workspaces",
            CLIENT_A,
            &json!({"name": "x", "path": repo.path()}),
        )
        .await;
    assert_error(response, 403, "admin-required").await;
    let (status, list) = app.get_json("/api/workspaces", CLIENT_A).await;
    assert_eq!((status, list), (200, json!([])));
}

#[tokio::test]
async fn workspace_registration_is_validated() {
    let app = app().await;
    let cases = [
        (json!({"name": "x", "path": "/definitely/not/here"}), "path"),
        (json!({"name": "", "path": "/tmp"}), "name"),
        (json!({"name": "x", "path": app.data_dir.path()}), "path"),
        (
            json!({"name": "x", "path": app.data_dir.path().parent().unwrap()}),
            "path",
        ),
        (
            json!({"name": "x", "repoUrl": "--upload-pack=touch /tmp/pwned"}),
            "repoUrl",
        ),
        (
            json!({"name": "x", "repoUrl": "file:///definitely/not/a/repo"}),
            "repoUrl",
        ),
        (json!({"name": "x"}), "path"),
    ];
    for (body, field) in cases {
        let response = app.post_json("/api/workspaces", ADMIN_KEY, &body).await;
        let error = assert_error(response, 400, "invalid-request").await;
        assert!(error["details"][field].is_string(), "{body}: {error}");
    }
    let (_, list) = app.get_json("/api/workspaces", ADMIN_KEY).await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn an_admin_removes_a_workspace_and_its_clone() {
    let app = app().await;
    let repo = answer_repo();
    let response = app
        .post_json(
            "/api/workspaces",
            ADMIN_KEY,
            &json!({"name": "c", "repoUrl": repo.path()}),
        )
        .await;
    let workspace: serde_json::Value = response.json().await.unwrap();
    let id = workspace["id"].as_str().unwrap();
    let path = std::path::PathBuf::from(workspace["path"].as_str().unwrap());
    let workspace = format!("/api/workspaces/{id}");
    assert_eq!(app.delete(&workspace, CLIENT_A).await.status(), 403);
    assert_eq!(app.delete(&workspace, ADMIN_KEY).await.status(), 204);
    assert!(!path.exists());
    assert_eq!(app.delete(&workspace, ADMIN_KEY).await.status(), 404);
}

#[tokio::test]
async fn a_client_sees_only_its_own_jobs_and_an_admin_sees_all() {
    let app = app().await;
    let repo = answer_repo();
    let workspace_id = app.register_workspace(repo.path()).await;
    let job_a = app
        .ask(
            CLIENT_A,
            json!({"workspaceId": workspace_id, "question": "token bucket"}),
        )
        .await;
    let job_b = app
        .ask(
            CLIENT_B,
            json!({"workspaceId": workspace_id, "question": "main hello"}),
        )
        .await;
    app.wait_for_job(CLIENT_A, &job_a).await;
    app.wait_for_job(CLIENT_B, &job_b).await;

    let (status, body) = app.get_json(&format!("/api/jobs/{job_a}"), CLIENT_B).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not-found")));
    let (status, body) = app.get_json(&format!("/api/jobs/{job_a}"), ADMIN_KEY).await;
    assert_eq!((status, body["id"].as_str()), (200, Some(job_a.as_str())));

    let (_, mine) = app.get_json("/api/jobs", CLIENT_B).await;
    let ids: Vec<&str> = mine
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![job_b.as_str()]);
    let (_, all) = app.get_json("/api/jobs", ADMIN_KEY).await;
    let ids: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![job_b.as_str(), job_a.as_str()], "newest first");

    let cancel = app.delete(&format!("/api/jobs/{job_a}"), CLIENT_B).await;
    assert_error(cancel, 404, "not-found").await;

    let (_, status) = app.get_json("/api/queue/status", CLIENT_B).await;
    assert_eq!(
        status["counts"],
        json!({"pending": 0, "processing": 0, "completed": 1, "failed": 0})
    );
    assert_eq!(status["recentJobs"].as_array().unwrap().len(), 1);
    assert_eq!(status["recentJobs"][0]["id"], job_b.as_str());
    for field in ["isProcessing", "hasPending", "currentJob", "pendingJobs"] {
        assert!(status.get(field).is_some(), "{field}");
    }
    let (_, admin_status) = app.get_json("/api/queue/status", ADMIN_KEY).await;
    assert_eq!(admin_status["counts"]["completed"], 2);
}

#[tokio::test]
async fn jobs_can_be_filtered_and_limited() {
    let app = app().await;
    let repo = answer_repo();
    let workspace_id = app.register_workspace(repo.path()).await;
    for question in ["token bucket", "hello main"] {
        app.ask_and_wait(
            CLIENT_A,
            json!({"workspaceId": workspace_id, "question": question}),
        )
        .await;
    }
    let (_, one) = app
        .get_json("/api/jobs?status=completed&limit=1", CLIENT_A)
        .await;
    assert_eq!(one.as_array().unwrap().len(), 1);
    let (_, none) = app.get_json("/api/jobs?status=pending", CLIENT_A).await;
    assert_eq!(none, json!([]));
    for query in ["status=done", "limit=0", "limit=501", "limit=abc"] {
        let (status, body) = app.get_json(&format!("/api/jobs?{query}"), CLIENT_A).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("invalid-request")),
            "{query}"
        );
    }
}

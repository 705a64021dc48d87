//! Hostile and broken input to the ask and job API.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::json;

use crate::helpers::{
    answer_repo, assert_error, spawn_app, spawn_app_with_jobs_by_hand, TestApp, ADMIN_KEY,
};

async fn app_with_workspace() -> (TestApp, String, tempfile::TempDir) {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let repo = answer_repo();
    let id = app.register_workspace(repo.path()).await;
    (app, id, repo)
}

/// Sends a request line exactly as given, with no client-side URL
/// normalisation, and returns the status code.
fn raw_get_status(app: &TestApp, target: &str) -> u16 {
    let address = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {address}\r\nx-api-key: {ADMIN_KEY}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn job_ids_that_try_to_leave_the_queue_are_not_found() {
    let (app, _, _repo) = app_with_workspace().await;
    std::fs::write(
        app.data_file("queue/2026-01-01T00-00-00Z-00000000.json.bak"),
        "{}",
    )
    .unwrap();
    for target in [
        "/api/jobs/..",
        "/api/jobs/%2e%2e",
        "/api/jobs/..%2fusers.json",
        "/api/jobs/..%2F..%2Fetc%2Fpasswd",
        "/api/jobs/%2e%2e%2fapi-keys",
        "/api/jobs/2026-01-01T00-00-00Z-00000000.json.bak",
        "/api/jobs/users",
    ] {
        let status = raw_get_status(&app, target);
        assert!(status == 404, "{target}: {status}");
    }
}

#[tokio::test]
async fn a_question_over_32_kib_is_refused_with_details() {
    let (app, id, _repo) = app_with_workspace().await;
    let question = "why ".repeat(10 * 1024);
    let response = app
        .post_json(
            "/api/ask",
            ADMIN_KEY,
            &json!({"workspaceId": id, "question": question}),
        )
        .await;
    let body = assert_error(response, 400, "invalid-request").await;
    assert!(body["details"]["question"]
        .as_str()
        .unwrap()
        .contains("32 KiB"));
}

#[tokio::test]
async fn missing_and_empty_fields_are_named() {
    let (app, _, _repo) = app_with_workspace().await;
    for body in [json!({}), json!({"workspaceId": "", "question": "   "})] {
        let response = app.post_json("/api/ask", ADMIN_KEY, &body).await;
        let error = assert_error(response, 400, "invalid-request").await;
        assert!(error["details"]["workspaceId"].is_string(), "{error}");
        assert!(error["details"]["question"].is_string(), "{error}");
    }
    let wrong_type = app
        .post_json(
            "/api/ask",
            ADMIN_KEY,
            &json!({"workspaceId": 7, "question": "q"}),
        )
        .await;
    let error = assert_error(wrong_type, 400, "invalid-request").await;
    assert!(error["details"]["workspaceId"].is_string(), "{error}");
}

#[tokio::test]
async fn an_unknown_workspace_is_404() {
    let (app, _, _repo) = app_with_workspace().await;
    let response = app
        .post_json(
            "/api/ask",
            ADMIN_KEY,
            &json!({"workspaceId": "ws-nothere", "question": "q"}),
        )
        .await;
    let body = assert_error(response, 404, "not-found").await;
    assert_eq!(body["error"], "Workspace not found");
}

#[tokio::test]
async fn oversized_mistyped_and_malformed_bodies_get_their_status() {
    let (app, id, _repo) = app_with_workspace().await;
    let post = |content_type: &'static str, body: Vec<u8>| {
        app.fresh_client()
            .post(app.url("/api/ask"))
            .header("x-api-key", ADMIN_KEY)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let huge = format!(
        "{{\"workspaceId\":\"{id}\",\"question\":\"{}\"}}",
        "a".repeat(2 * 1024 * 1024)
    );
    assert_error(
        post("application/json", huge.into_bytes()).await.unwrap(),
        413,
        "payload-too-large",
    )
    .await;
    let valid = format!("{{\"workspaceId\":\"{id}\",\"question\":\"q\"}}");
    assert_error(
        post("text/plain", valid.clone().into_bytes())
            .await
            .unwrap(),
        415,
        "unsupported-media-type",
    )
    .await;
    let body = assert_error(
        post("application/json", b"{\"workspaceId\": ".to_vec())
            .await
            .unwrap(),
        400,
        "invalid-request",
    )
    .await;
    assert!(body["details"]["body"].is_string());
    assert_eq!(
        post("application/json", valid.into_bytes())
            .await
            .unwrap()
            .status(),
        202,
        "still serving"
    );
}

#[tokio::test]
async fn non_utf8_files_and_symlinks_out_of_the_workspace_do_not_break_or_leak() {
    let app =
        spawn_app_with_jobs_by_hand(&[("ADMIN_API_KEY", ADMIN_KEY)], Duration::from_secs(30)).await;
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(
        outside.path().join("secret.txt"),
        "quokkasecret quokkasecret quokkasecret\n",
    )
    .unwrap();
    let workspace = tempfile::tempdir().unwrap();
    let root = workspace.path();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), root.join("leak.txt")).unwrap();
    std::os::unix::fs::symlink(outside.path(), root.join("leakdir")).unwrap();
    std::fs::write(
        root.join("latin1.txt"),
        b"caf\xe9 quokkasecret in latin-1 \xff\xfe\n",
    )
    .unwrap();
    std::fs::write(root.join("binary.bin"), b"\x00\x01quokkasecret\x00").unwrap();
    std::fs::write(root.join("big.txt"), "quokkasecret ".repeat(100_000)).unwrap();
    let id = app.register_workspace(root).await;

    let job = app
        .ask_and_wait(
            ADMIN_KEY,
            json!({"workspaceId": id, "question": "quokkasecret"}),
        )
        .await;
    assert_eq!(job["status"], "completed", "{job}");
    let paths: Vec<&str> = job["result"]["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        vec!["latin1.txt"],
        "only the readable text file in the workspace"
    );
    assert!(!job["result"]["output"]
        .as_str()
        .unwrap()
        .contains("quokkasecret quokkasecret quokkasecret"));
}

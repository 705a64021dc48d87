//! The dashboard's ask form, job page, queue page and workspace page.

use std::time::Duration;

use portico::dashboard::markdown_to_safe_html;

use crate::helpers::{answer_repo, eventually, extract, spawn_app, TestApp};

async fn logged_in_with_workspace(repo: &std::path::Path) -> (TestApp, String, String) {
    let app = spawn_app(&[]).await;
    let csrf = app.setup_and_login().await;
    let added = app
        .submit(
            "/dashboard/workspaces",
            &csrf,
            &[("name", "demo repo"), ("path", &repo.display().to_string())],
        )
        .await;
    assert_eq!(added.status(), 303);
    let (_, html) = app.page("/dashboard/workspaces").await;
    assert!(html.contains("demo repo"));
    let id = extract(&html, "data-workspace-id=\"", "\"").unwrap();
    (app, csrf, id)
}

#[tokio::test]
async fn the_ask_form_leads_to_a_job_page_that_refreshes_until_the_answer_is_there() {
    let repo = answer_repo();
    std::fs::write(
        repo.path().join("src/danger.rs"),
        "// quokka <script>alert('quokka')</script> <img src=x onerror=alert(1)>\nfn quokka() {}\n",
    )
    .unwrap();
    let (app, csrf, workspace_id) = logged_in_with_workspace(repo.path()).await;
    let response = app
        .submit(
            "/dashboard/ask",
            &csrf,
            &[
                ("workspace_id", &workspace_id),
                ("question", "where is the quokka?"),
                ("source_branch", ""),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let job_page = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(job_page.starts_with("/dashboard/jobs/"));

    let html = eventually(Duration::from_secs(30), || async {
        let (status, html) = app.page(&job_page).await;
        assert_eq!(status, 200);
        if html.contains("http-equiv=\"refresh\"") {
            Err("the job page never stopped refreshing".to_owned())
        } else {
            Ok(html)
        }
    })
    .await;
    assert!(html.contains("completed"));
    assert!(html.contains("<code>src/danger.rs:1-2</code>"), "{html}");
    assert!(
        html.contains("&lt;script&gt;"),
        "the answer's HTML is escaped"
    );
    assert!(!html.contains("<script>alert"));
    assert!(!html.contains("<img src=x"));

    let (_, queue) = app.page("/dashboard/queue").await;
    let id = job_page.trim_start_matches("/dashboard/jobs/");
    assert!(queue.contains(id));
    let (_, overview) = app.page("/dashboard").await;
    assert!(overview.contains(id), "recent jobs on the overview");
    assert!(
        overview.contains("demo repo"),
        "the ask form offers the workspace"
    );
}

#[tokio::test]
async fn unknown_or_malformed_job_ids_are_not_found_in_the_dashboard() {
    let repo = answer_repo();
    let (app, _, _) = logged_in_with_workspace(repo.path()).await;
    let (status, _) = app
        .page("/dashboard/jobs/2026-01-01T00-00-00Z-00000000")
        .await;
    assert_eq!(status, 404);
    let (status, _) = app.page("/dashboard/jobs/..%2f..%2fusers.json").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn workspaces_are_removed_from_the_dashboard() {
    let repo = answer_repo();
    let (app, csrf, id) = logged_in_with_workspace(repo.path()).await;
    let removed = app
        .submit(&format!("/dashboard/workspaces/{id}/remove"), &csrf, &[])
        .await;
    assert_eq!(removed.status(), 303);
    let (_, html) = app.page("/dashboard/workspaces").await;
    assert!(!html.contains(&id));
    assert!(
        repo.path().join("src/token_bucket.rs").exists(),
        "a registered directory is never deleted"
    );
}

#[tokio::test]
async fn a_bad_workspace_form_explains_itself() {
    let app = spawn_app(&[]).await;
    let csrf = app.setup_and_login().await;
    let both_empty = app
        .submit("/dashboard/workspaces", &csrf, &[("name", "x")])
        .await;
    assert_eq!(both_empty.status(), 400);
    assert!(both_empty
        .text()
        .await
        .unwrap()
        .contains("Give either a directory or a repository URL"));
    let missing = app
        .submit(
            "/dashboard/workspaces",
            &csrf,
            &[("name", "x"), ("path", "/no/such/dir")],
        )
        .await;
    assert_eq!(missing.status(), 400);
    assert!(missing.text().await.unwrap().contains("does not exist"));
}

#[test]
fn markdown_is_rendered_with_raw_html_escaped_and_unsafe_links_dropped() {
    let html = markdown_to_safe_html(
        "# Title\n\n<b>bold?</b> [x](javascript:alert(1)) [ok](https://example.com) ![pic](http://x/y.png)\n\n```rs\nlet a = \"<script>\";\n```\n",
    );
    assert!(html.contains("<h1>Title</h1>"));
    assert!(html.contains("&lt;b&gt;bold?&lt;/b&gt;"), "{html}");
    assert!(!html.contains("javascript:"), "{html}");
    assert!(html.contains("href=\"https://example.com\""));
    assert!(!html.contains("<img"), "{html}");
    assert!(html.contains("&lt;script&gt;"));
}

//! The dashboard used every day: a key shown once survives no refresh,
//! duplicates are refused, destructive actions ask first and name their
//! item, refused forms keep what was typed, pending jobs can be cancelled
//! and plain-text answers keep their shape.

use std::time::Duration;

use crate::helpers::{
    answer_repo, eventually, find_key, spawn_app, TestApp, ADMIN_KEY, SETUP_TOKEN,
};

fn key_form<'a>(csrf: &'a str, name: &'a str, role: &'a str) -> [(&'a str, &'a str); 4] {
    [
        ("csrf_token", csrf),
        ("name", name),
        ("role", role),
        ("expiry", "90"),
    ]
}

/// `GET /api/me` with the key alone, from a client without the session.
async fn key_status(app: &TestApp, key: &str) -> u16 {
    app.me_fresh(&[("x-api-key", key)]).await.status().as_u16()
}

fn stored_keys(app: &TestApp) -> usize {
    let text = std::fs::read_to_string(app.data_file("api-keys.json")).unwrap_or("[]".into());
    serde_json::from_str::<Vec<serde_json::Value>>(&text)
        .unwrap()
        .len()
}

#[tokio::test]
async fn refreshing_the_page_of_a_new_key_creates_nothing_and_shows_it_no_more() {
    let app = spawn_app(&[]).await;
    let csrf = app.setup_and_login().await;
    let response = app
        .post_form(
            "/dashboard/security/keys",
            &key_form(&csrf, "laptop", "client"),
        )
        .await;
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/dashboard/security?new="),
        "{location}"
    );

    let (status, first) = app.page(&location).await;
    assert_eq!(status, 200);
    let key = find_key(&first).expect("the key is shown");
    assert!(first.contains("laptop"));

    let (status, again) = app.page(&location).await;
    assert_eq!(status, 200);
    assert!(find_key(&again).is_none(), "shown once only");
    assert!(again.contains("shown once already"), "{again}");
    assert_eq!(stored_keys(&app), 1, "the refresh created nothing");
    assert_eq!(key_status(&app, &key).await, 200);

    let stranger = app.fresh().get(&location, &[]).await;
    assert_eq!(stranger.status(), 303, "another browser is sent to log in");
}

#[tokio::test]
async fn a_second_key_with_the_same_name_is_refused_and_the_form_keeps_its_input() {
    let app = spawn_app(&[]).await;
    let csrf = app.setup_and_login().await;
    app.generate_key(&csrf, "deploy bot", "client", "never")
        .await;
    let response = app
        .post_form(
            "/dashboard/security/keys",
            &key_form(&csrf, "Deploy Bot", "admin"),
        )
        .await;
    assert_eq!(response.status(), 400);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("A key named “Deploy Bot” exists already"),
        "{page}"
    );
    assert!(page.contains("value=\"Deploy Bot\""), "{page}");
    assert!(page.contains("<option value=\"admin\" selected>"), "{page}");
    assert!(page.contains("<option value=\"90\" selected>"), "{page}");
    assert!(page.contains("class=\"topbar\"") && page.contains("Log out"));
    assert_eq!(stored_keys(&app), 1);
}

#[tokio::test]
async fn revoking_a_key_asks_first_and_the_message_names_the_key() {
    let app = spawn_app(&[]).await;
    let csrf = app.setup_and_login().await;
    let key = app
        .generate_key(&csrf, "old laptop", "client", "never")
        .await;
    let id = key.split('_').nth(1).unwrap();
    let (_, list) = app.page("/dashboard/security").await;
    assert!(list.contains(&format!("href=\"/dashboard/security/keys/{id}/revoke\"")));

    let (status, confirm) = app
        .page(&format!("/dashboard/security/keys/{id}/revoke"))
        .await;
    assert_eq!(status, 200);
    assert!(confirm.contains("Revoke the key “old laptop”"), "{confirm}");
    assert!(confirm.contains(&format!("action=\"/dashboard/security/keys/{id}/revoke\"")));
    assert!(confirm.contains("Log out"), "the page has the nav bar");
    assert_eq!(key_status(&app, &key).await, 200, "asking revokes nothing");

    let revoked = app
        .submit(&format!("/dashboard/security/keys/{id}/revoke"), &csrf, &[])
        .await;
    assert_eq!(revoked.status(), 303);
    let (_, after) = app.page("/dashboard/security").await;
    assert!(
        after.contains("The key “old laptop” was revoked"),
        "{after}"
    );
    assert_eq!(key_status(&app, &key).await, 401);
}

#[tokio::test]
async fn removing_a_workspace_asks_first_and_duplicates_are_refused() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let csrf = app.setup_and_login().await;
    let repo = answer_repo();
    let id = app.register_workspace(repo.path()).await;

    let again = app
        .post_json(
            "/api/workspaces",
            ADMIN_KEY,
            &serde_json::json!({"name": "other", "path": repo.path()}),
        )
        .await;
    assert_eq!(again.status(), 400, "the same directory twice");
    let other = answer_repo();
    let path = other.path().display().to_string();
    let same_name = app
        .submit(
            "/dashboard/workspaces",
            &csrf,
            &[("name", "DEMO"), ("path", &path)],
        )
        .await;
    assert_eq!(same_name.status(), 400);
    let page = same_name.text().await.unwrap();
    assert!(
        page.contains("Name: a workspace named “demo” exists already"),
        "{page}"
    );
    assert!(page.contains("value=\"DEMO\"") && page.contains(&format!("value=\"{path}\"")));

    let (status, confirm) = app
        .page(&format!("/dashboard/workspaces/{id}/remove"))
        .await;
    assert_eq!(status, 200);
    assert!(confirm.contains("Remove the workspace “demo”"), "{confirm}");
    assert!(confirm.contains("left untouched"), "{confirm}");
    let (_, list) = app.page("/dashboard/workspaces").await;
    assert!(list.contains(&id), "asking removes nothing");

    let removed = app
        .submit(&format!("/dashboard/workspaces/{id}/remove"), &csrf, &[])
        .await;
    assert_eq!(removed.status(), 303);
    let (_, list) = app.page("/dashboard/workspaces").await;
    assert!(list.contains("The workspace “demo” was removed."), "{list}");
    assert!(repo.path().join("src").exists(), "the directory is kept");
}

#[tokio::test]
async fn a_refused_setup_keeps_the_token_in_the_form_and_the_address() {
    let app = spawn_app(&[]).await;
    let response = app
        .post_form(
            "/setup",
            &[
                ("token", SETUP_TOKEN),
                ("username", "owner"),
                ("password", "long enough password 1"),
                ("confirm", "long enough password 2"),
            ],
        )
        .await;
    assert_eq!(response.status(), 400);
    let page = response.text().await.unwrap();
    assert!(page.contains("The two passwords differ"), "{page}");
    assert!(page.contains(&format!("value=\"{SETUP_TOKEN}\"")), "{page}");
    assert!(
        page.contains(&format!("action=\"/setup?token={SETUP_TOKEN}\"")),
        "{page}"
    );
    assert!(page.contains("value=\"owner\""));
}

#[tokio::test]
async fn a_refused_question_keeps_the_form_and_names_the_branch_in_words() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let csrf = app.setup_and_login().await;
    let repo = answer_repo();
    let id = app.register_workspace(repo.path()).await;
    let response = app
        .submit(
            "/dashboard/ask",
            &csrf,
            &[
                ("workspace_id", &id),
                ("question", "Where are tokens refilled?"),
                ("source_branch", "no-such-branch"),
            ],
        )
        .await;
    assert_eq!(response.status(), 400);
    let page = response.text().await.unwrap();
    assert!(page.contains("Branch: "), "{page}");
    assert!(!page.contains("sourceBranch"), "{page}");
    assert!(page.contains("Log out"), "the page has the nav bar");
    assert!(
        page.contains(">Where are tokens refilled?</textarea>"),
        "{page}"
    );
    assert!(page.contains("value=\"no-such-branch\""), "{page}");
    assert!(page.contains(&format!("value=\"{id}\" selected")), "{page}");
}

async fn wait_for_status(app: &TestApp, id: &str, status: &str) -> String {
    eventually(Duration::from_secs(30), || async {
        let (_, page) = app.page(&format!("/dashboard/jobs/{id}")).await;
        if page.contains(&format!("badge-{status}\">{status}")) {
            Ok(page)
        } else {
            Err(format!("job {id} never became {status}: {page}"))
        }
    })
    .await
}

#[tokio::test]
async fn a_pending_job_can_be_cancelled_from_its_page() {
    let app = spawn_app(&[
        ("ADMIN_API_KEY", ADMIN_KEY),
        ("ASK_COMMAND", "sleep 2"),
        ("ASK_TIMEOUT_SECS", "5"),
    ])
    .await;
    let csrf = app.setup_and_login().await;
    let repo = answer_repo();
    let workspace = app.register_workspace(repo.path()).await;
    let ask = serde_json::json!({"workspaceId": workspace, "question": "first"});
    let busy = app.ask(ADMIN_KEY, ask.clone()).await;
    wait_for_status(&app, &busy, "processing").await;
    let waiting = app.ask(ADMIN_KEY, ask).await;
    let page = wait_for_status(&app, &waiting, "pending").await;
    let (_, queue) = app.page("/dashboard/queue").await;
    assert!(
        queue.contains(&format!("action=\"/dashboard/jobs/{waiting}/cancel\"")),
        "the queue offers Cancel for pending jobs: {queue}"
    );
    assert!(!queue.contains(&format!("/dashboard/jobs/{busy}/cancel")));
    assert!(page.contains(&format!("action=\"/dashboard/jobs/{waiting}/cancel\"")));

    let cancel = app
        .submit(&format!("/dashboard/jobs/{waiting}/cancel"), &csrf, &[])
        .await;
    assert_eq!(cancel.status(), 303);
    let page = wait_for_status(&app, &waiting, "failed").await;
    assert!(
        page.contains("The job was cancelled before it started."),
        "{page}"
    );
    assert!(page.contains("Cancelled by owner"), "{page}");
    assert!(
        !page.contains("/cancel\""),
        "no cancel button once finished"
    );
}

#[tokio::test]
async fn a_plain_text_answer_is_shown_preformatted_not_as_markdown() {
    let app = spawn_app(&[
        ("ADMIN_API_KEY", ADMIN_KEY),
        ("ASK_COMMAND", "echo snake_case_name * not *emphasis*"),
    ])
    .await;
    app.setup_and_login().await;
    let repo = answer_repo();
    let workspace = app.register_workspace(repo.path()).await;
    let id = app
        .ask(
            ADMIN_KEY,
            serde_json::json!({"workspaceId": workspace, "question": "q"}),
        )
        .await;
    let page = wait_for_status(&app, &id, "completed").await;
    assert!(
        page.contains("<pre class=\"answer-text\">snake_case_name * not *emphasis*"),
        "{page}"
    );
    assert!(!page.contains("<em>"), "{page}");
}

#[tokio::test]
async fn unknown_addresses_get_a_styled_404_with_the_nav_bar_when_logged_in() {
    let app = spawn_app(&[]).await;
    let anonymous = app.fresh().get("/no/such/page", &[]).await;
    assert_eq!(anonymous.status(), 404);
    let page = anonymous.text().await.unwrap();
    assert!(
        page.contains("Page not found") && page.contains("/static/portico.css"),
        "{page}"
    );
    assert!(!page.contains("Log out"), "{page}");

    app.setup_and_login().await;
    for path in [
        "/no/such/page",
        "/dashboard/jobs/not-a-job",
        "/dashboard/nothing",
    ] {
        let (status, page) = app.page(path).await;
        assert_eq!(status, 404, "{path}");
        assert!(
            page.contains("Log out") && page.contains("Account Security"),
            "{path}: {page}"
        );
    }
    let (status, icon) = app.page("/favicon.ico").await;
    assert_eq!(status, 303, "{icon}");
    let svg = app.get("/static/favicon.svg", &[]).await;
    assert_eq!(svg.status(), 200);
}

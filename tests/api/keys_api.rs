//! The key management API (`/api/keys`): admin only, the same records,
//! validation and audit trail as Account Security, and roll's grace period.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, TestApp, ADMIN_KEY};

async fn create_key(app: &TestApp, body: Value) -> (u16, Value) {
    let response = app.post_json("/api/keys", ADMIN_KEY, &body).await;
    let status = response.status().as_u16();
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        (status == 201).then_some("no-store")
    );
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn an_admin_creates_a_key_that_works_once_shown_and_is_listed_without_its_secret() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let (status, created) = create_key(
        &app,
        json!({"name": "CI", "role": "client", "expiresInDays": 30}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap();
    let id = created["record"]["id"].as_str().unwrap();
    assert!(key.starts_with(&format!("ptk_{id}_")), "{key}");
    assert_eq!(created["record"]["role"], "client");
    assert_eq!(created["record"]["userId"], "admin-key");
    assert!(created["record"]["expiresAt"].is_string());

    let (status, me) = app.me_with_key(key).await;
    assert_eq!(status, 200);
    assert_eq!(me["kind"], "dashboard-key");
    assert_eq!(me["id"], id);

    let (status, listed) = app.get_json("/api/keys", ADMIN_KEY).await;
    assert_eq!(status, 200);
    let text = listed.to_string();
    let secret = key.rsplit('_').next().unwrap();
    assert!(!text.contains(secret), "the secret is listed: {text}");
    assert!(!text.contains("argon2"), "a hash is listed: {text}");
    assert!(!text.contains("keyHash"), "{text}");
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["prefix"], format!("ptk_{id}_…"));
}

#[tokio::test]
async fn keys_made_by_the_api_show_on_account_security_and_in_its_activity() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    app.setup_and_login().await;
    let (_, created) = create_key(&app, json!({"name": "from-the-api"})).await;
    let id = created["record"]["id"].as_str().unwrap();
    let (_, page) = app.page("/dashboard/security").await;
    assert!(page.contains("from-the-api"), "the key is listed");
    assert!(page.contains(&format!("data-key-id=\"{id}\"")));
    assert!(
        page.contains("API key created"),
        "the creation is in the trail"
    );
    assert!(
        page.contains("<td data-label=\"By\">ADMIN_API_KEY</td>"),
        "with its actor"
    );
    assert!(page.contains(&format!("from-the-api (id {id})")));

    let response = app.delete(&format!("/api/keys/{id}"), ADMIN_KEY).await;
    assert_eq!(response.status(), 204);
    let (_, page) = app.page("/dashboard/security").await;
    assert!(
        !page.contains(&format!("data-key-id=\"{id}\"")),
        "the key row is gone"
    );
    assert!(page.contains("API key revoked"));
}

#[tokio::test]
async fn a_revoked_key_gets_401_at_once_and_a_second_revoke_is_404() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let (_, created) = create_key(&app, json!({"name": "short-lived"})).await;
    let key = created["key"].as_str().unwrap();
    let id = created["record"]["id"].as_str().unwrap();
    assert_eq!(app.me_with_key(key).await.0, 200);

    let response = app.delete(&format!("/api/keys/{id}"), ADMIN_KEY).await;
    assert_eq!(response.status(), 204);
    let response = app.me(&[("x-api-key", key)]).await;
    assert_error(response, 401, "invalid-api-key").await;
    let response = app.delete(&format!("/api/keys/{id}"), ADMIN_KEY).await;
    assert_error(response, 404, "not-found").await;
}

#[tokio::test]
async fn a_rolled_key_s_old_secret_works_during_the_grace_period_and_then_gets_401() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let (_, created) = create_key(&app, json!({"name": "rolling"})).await;
    let old = created["key"].as_str().unwrap().to_owned();
    let id = created["record"]["id"].as_str().unwrap().to_owned();
    assert_eq!(app.me_with_key(&old).await.0, 200, "verified and cached");

    let response = app
        .post_json(
            &format!("/api/keys/{id}/roll"),
            ADMIN_KEY,
            &json!({"graceSeconds": 2}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let rolled: Value = response.json().await.unwrap();
    let new = rolled["key"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(new.starts_with(&format!("ptk_{id}_")), "the same record");
    assert_eq!(rolled["record"]["id"], id);
    assert!(rolled["record"]["previousValidUntil"].is_string());

    let (status, me) = app.me_with_key(&old).await;
    assert_eq!(status, 200, "the old secret works in the grace period");
    assert_eq!(me["id"], id);
    assert_eq!(app.me_with_key(&new).await.0, 200);

    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let response = app.me(&[("x-api-key", &old)]).await;
    assert_error(response, 401, "invalid-api-key").await;
    assert_eq!(
        app.me_with_key(&new).await.0,
        200,
        "the new one still works"
    );
    let (_, listed) = app.get_json("/api/keys", ADMIN_KEY).await;
    assert!(listed[0].get("previousValidUntil").is_none(), "{listed}");

    // A restart does not bring the old secret back.
    let mut app = app;
    app.restart().await;
    let response = app.me(&[("x-api-key", &old)]).await;
    assert_error(response, 401, "invalid-api-key").await;
    assert_eq!(app.me_with_key(&new).await.0, 200);
}

#[tokio::test]
async fn a_roll_with_no_grace_kills_the_old_secret_at_once_and_an_empty_body_means_a_day() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let (_, created) = create_key(&app, json!({"name": "now"})).await;
    let old = created["key"].as_str().unwrap().to_owned();
    let id = created["record"]["id"].as_str().unwrap().to_owned();
    assert_eq!(app.me_with_key(&old).await.0, 200);
    let response = app
        .post_json(
            &format!("/api/keys/{id}/roll"),
            ADMIN_KEY,
            &json!({"graceSeconds": 0}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let new: Value = response.json().await.unwrap();
    let new = new["key"].as_str().unwrap().to_owned();
    let response = app.me(&[("x-api-key", &old)]).await;
    assert_error(response, 401, "invalid-api-key").await;

    let response = app
        .api(
            Method::POST,
            &format!("/api/keys/{id}/roll"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    let rolled: Value = response.json().await.unwrap();
    let until = chrono::DateTime::parse_from_rfc3339(
        rolled["record"]["previousValidUntil"].as_str().unwrap(),
    )
    .unwrap();
    let left = until
        .signed_duration_since(chrono::Utc::now())
        .num_seconds();
    assert!((86_390..=86_400).contains(&left), "{left}");
    assert_eq!(app.me_with_key(&new).await.0, 200, "the day-long grace");
}

#[tokio::test]
async fn client_keys_may_not_manage_keys() {
    let app = spawn_app(&[
        ("ADMIN_API_KEY", ADMIN_KEY),
        ("VALID_API_KEYS", "client-key-0123456789abcdef"),
    ])
    .await;
    let (_, created) = create_key(&app, json!({"name": "target"})).await;
    let id = created["record"]["id"].as_str().unwrap().to_owned();
    let client_made = created["key"].as_str().unwrap().to_owned();
    for key in ["client-key-0123456789abcdef", client_made.as_str()] {
        let response = app
            .post_json("/api/keys", key, &json!({"name": "mine"}))
            .await;
        assert_error(response, 403, "admin-required").await;
        let response = app.api(Method::GET, "/api/keys", key, None).await;
        assert_error(response, 403, "admin-required").await;
        let response = app.delete(&format!("/api/keys/{id}"), key).await;
        assert_error(response, 403, "admin-required").await;
        let response = app
            .post_json(&format!("/api/keys/{id}/roll"), key, &json!({}))
            .await;
        assert_error(response, 403, "admin-required").await;
    }
    let (_, listed) = app.get_json("/api/keys", ADMIN_KEY).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "nothing was created");
    assert_eq!(app.me_with_key(&client_made).await.0, 200, "nor revoked");
}

#[tokio::test]
async fn an_admin_role_key_made_by_the_api_may_manage_keys() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let (_, created) = create_key(&app, json!({"name": "ops", "role": "admin"})).await;
    let ops = created["key"].as_str().unwrap();
    let response = app
        .post_json("/api/keys", ops, &json!({"name": "by-ops"}))
        .await;
    assert_eq!(response.status(), 201);
    let made: Value = response.json().await.unwrap();
    assert_eq!(made["record"]["userId"], created["record"]["id"]);
}

#[tokio::test]
async fn invalid_key_requests_name_the_bad_field_and_change_nothing() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let cases = [
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(65)}), "name"),
        (json!({"name": "bell\u{7}"}), "name"),
        (json!({"name": "ok", "role": "root"}), "role"),
        (json!({"name": "ok", "expiresInDays": 7}), "expiresInDays"),
        (
            json!({"name": "ok", "expiresInDays": "thirty"}),
            "expiresInDays",
        ),
        (json!({"role": "client"}), "name"),
    ];
    for (body, field) in cases {
        let response = app.post_json("/api/keys", ADMIN_KEY, &body).await;
        let error = assert_error(response, 400, "invalid-request").await;
        assert!(
            error["details"].get(field).is_some(),
            "{body} should name {field}: {error}"
        );
    }
    let response = app
        .fresh_client()
        .post(app.url("/api/keys"))
        .header("x-api-key", ADMIN_KEY)
        .header("content-type", "text/plain")
        .body("name=ok")
        .send()
        .await
        .unwrap();
    assert_error(response, 415, "unsupported-media-type").await;

    let (_, created) = create_key(&app, json!({"name": "kept"})).await;
    let id = created["record"]["id"].as_str().unwrap();
    for (body, field) in [
        (json!({"graceSeconds": -1}), "graceSeconds"),
        (json!({"graceSeconds": 2_592_001}), "graceSeconds"),
    ] {
        let response = app
            .post_json(&format!("/api/keys/{id}/roll"), ADMIN_KEY, &body)
            .await;
        let error = assert_error(response, 400, "invalid-request").await;
        assert!(error["details"].get(field).is_some(), "{error}");
    }
    let response = app
        .post_json("/api/keys/nosuchkey1/roll", ADMIN_KEY, &json!({}))
        .await;
    assert_error(response, 404, "not-found").await;
    let (_, listed) = app.get_json("/api/keys", ADMIN_KEY).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(
        app.me_with_key(created["key"].as_str().unwrap()).await.0,
        200,
        "a refused roll leaves the secret alone"
    );
}

#[tokio::test]
async fn the_dashboard_rolls_a_key_and_shows_the_new_secret_once() {
    let app = spawn_app(&[]).await;
    let csrf = app.setup_and_login().await;
    let old = app.generate_key(&csrf, "laptop", "client", "never").await;
    let id = old.split('_').nth(1).unwrap().to_owned();
    let (status, confirm) = app
        .page(&format!("/dashboard/security/keys/{id}/roll"))
        .await;
    assert_eq!(status, 200);
    assert!(confirm.contains("laptop") && confirm.contains("grace_hours"));
    let response = app
        .submit(
            &format!("/dashboard/security/keys/{id}/roll"),
            &csrf,
            &[("grace_hours", "0")],
        )
        .await;
    assert_eq!(response.status(), 303, "post/redirect/get");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let (status, html) = app.page(&location).await;
    assert_eq!(status, 200);
    let new = crate::helpers::find_key(&html).expect("the new secret is shown");
    assert_ne!(new, old);
    assert!(new.starts_with(&format!("ptk_{id}_")));
    assert!(html.contains("API key rolled"), "the roll is in the trail");
    // A fresh client: the logged-in one would pass on its session.
    assert_eq!(app.me_fresh(&[("x-api-key", &new)]).await.status(), 200);
    assert_eq!(app.me_fresh(&[("x-api-key", &old)]).await.status(), 401);
    let (_, page) = app.page("/dashboard/security").await;
    assert!(!page.contains(&new), "shown only once");

    let response = app
        .post_form(
            &format!("/dashboard/security/keys/{id}/roll"),
            &[("grace_hours", "0")],
        )
        .await;
    assert_eq!(response.status(), 403, "the form needs its CSRF token");
}

#[tokio::test]
async fn a_logged_in_user_manages_keys_over_the_api_but_not_from_a_foreign_origin() {
    let app = spawn_app(&[]).await;
    app.setup_and_login().await;
    let response = app
        .client
        .post(app.url("/api/keys"))
        .header("origin", &app.address)
        .json(&json!({"name": "from-my-session"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["record"]["name"], "from-my-session");

    let response = app
        .client
        .post(app.url("/api/keys"))
        .header("origin", "http://evil.example")
        .json(&json!({"name": "forged"}))
        .send()
        .await
        .unwrap();
    assert_error(response, 403, "cross-site-request").await;
    let response = app.client.get(app.url("/api/keys")).send().await.unwrap();
    let listed: Value = response.json().await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
}

#[tokio::test]
async fn a_key_limited_to_some_workspaces_is_told_it_cannot_register_new_ones() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let (dir1, dir2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let w1 = app.register_workspace_named("one", dir1.path()).await;
    let (held, _) = app
        .create_key(json!({"name": "held", "role": "admin", "workspaces": [w1]}))
        .await;
    let body = json!({"name": "two", "path": dir2.path()});
    let error = assert_error(
        app.post_json("/api/workspaces", &held, &body).await,
        403,
        "insufficient-scope",
    )
    .await;
    let message = error["error"].as_str().unwrap();
    assert!(
        message.contains("limited to particular workspaces")
            && message.contains("cannot register new ones"),
        "{error}"
    );
    assert!(
        !message.contains("lacks"),
        "it holds workspaces:write: {error}"
    );
    assert_eq!(error["details"]["permission"], "workspaces:write");
    let (_, listed) = app.get_json("/api/workspaces", ADMIN_KEY).await;
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "nothing was added: {listed}"
    );

    let (wide, _) = app
        .create_key(json!({"name": "wide", "role": "admin"}))
        .await;
    let response = app.post_json("/api/workspaces", &wide, &body).await;
    assert_eq!(
        response.status(),
        201,
        "a key reaching every workspace registers"
    );
}

//! Keys generated in the dashboard: shown once, stored as argon2id hashes,
//! usable at once, revocable at once; and the CSRF defence of the forms.

use std::os::unix::fs::PermissionsExt;

use crate::helpers::{assert_error, find_key, spawn_app, status_and_json, TestApp, ADMIN_KEY};

async fn me(app: &TestApp, header: (&str, &str)) -> (u16, serde_json::Value) {
    status_and_json(app.me_fresh(&[header]).await).await
}

fn all_data_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(all_data_files(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn a_generated_key_works_with_both_headers_and_is_shown_only_once() {
    let app = spawn_app(&[]).await;
    let csrf = app.setup_and_login().await;
    let key = app
        .generate_key(&csrf, "CI pipeline", "client", "never")
        .await;
    let id = key.split('_').nth(1).unwrap().to_owned();
    assert!((8..=16).contains(&id.len()));
    assert!(key.rsplit('_').next().unwrap().len() >= 40);

    let (status, body) = me(&app, ("x-api-key", &key)).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        serde_json::json!({"id": id, "kind": "dashboard-key", "name": "CI pipeline", "role": "client",
            "scopes": {"permissions": ["ask", "jobs:read", "workspaces:read"], "workspaces": null}})
    );
    let (status, _) = me(&app, ("authorization", &format!("Bearer {key}"))).await;
    assert_eq!(status, 200);

    let (_, html) = app.page("/dashboard/security").await;
    assert!(
        html.contains(&format!("ptk_{id}_…")),
        "listed by its prefix"
    );
    assert!(!html.contains(&key), "never shown again");
    assert!(find_key(&html).is_none());
}

#[tokio::test]
async fn an_admin_role_key_is_an_admin() {
    let app = spawn_app(&[]).await;
    let csrf = app.setup_and_login().await;
    let key = app.generate_key(&csrf, "ops", "admin", "90").await;
    let (_, body) = me(&app, ("x-api-key", &key)).await;
    assert_eq!(body["role"], "admin");
    let (_, html) = app.page("/dashboard/security").await;
    assert!(html.contains("<td data-label=\"Role\">admin</td>"));
}

#[tokio::test]
async fn a_revoked_key_is_rejected_at_once() {
    let app = spawn_app(&[]).await;
    let csrf = app.setup_and_login().await;
    let key = app.generate_key(&csrf, "temp", "client", "never").await;
    let id = key.split('_').nth(1).unwrap().to_owned();
    assert_eq!(me(&app, ("x-api-key", &key)).await.0, 200);

    let response = app
        .submit(&format!("/dashboard/security/keys/{id}/revoke"), &csrf, &[])
        .await;
    assert_eq!(response.status(), 303);
    let (status, body) = me(&app, ("x-api-key", &key)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid-api-key"))
    );
    let (_, html) = app.page("/dashboard/security").await;
    assert!(html.contains("revoked"), "a flash says so");
    assert!(!html.contains(&format!("ptk_{id}_")));
}

#[tokio::test]
async fn key_files_hold_only_argon2id_hashes_with_mode_0600() {
    let app = spawn_app(&[]).await;
    let csrf = app.setup_and_login().await;
    let keys = [
        app.generate_key(&csrf, "one", "client", "never").await,
        app.generate_key(&csrf, "two", "admin", "365").await,
    ];
    for key in &keys {
        assert_eq!(me(&app, ("x-api-key", key)).await.0, 200);
    }
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(app.data_file("api-keys.json")).unwrap())
            .unwrap();
    let records = stored.as_array().unwrap();
    assert_eq!(records.len(), 2);
    for record in records {
        assert!(record["keyHash"]
            .as_str()
            .unwrap()
            .starts_with("$argon2id$"));
        for field in ["id", "name", "userId", "role", "createdAt"] {
            assert!(record[field].is_string(), "{field} in {record}");
        }
    }
    assert!(records.iter().any(|r| r["expiresAt"].is_string()));
    for name in ["api-keys.json", "users.json", "sessions.json"] {
        let mode = std::fs::metadata(app.data_file(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{name}");
    }
    for file in all_data_files(app.data_dir.path()) {
        let bytes = std::fs::read(&file).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for key in &keys {
            let secret = key.rsplit('_').next().unwrap();
            assert!(!text.contains(secret), "{} holds a key", file.display());
        }
    }
}

#[tokio::test]
async fn a_key_survives_a_restart_and_an_expired_key_is_refused() {
    let mut app = spawn_app(&[]).await;
    let csrf = app.setup_and_login().await;
    let lasting = app.generate_key(&csrf, "lasting", "client", "never").await;
    let expiring = app.generate_key(&csrf, "expiring", "client", "30").await;
    let expiring_id = expiring.split('_').nth(1).unwrap().to_owned();

    app.restart_with(|app| {
        let path = app.data_file("api-keys.json");
        let mut records: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for record in records.as_array_mut().unwrap() {
            if record["id"] == expiring_id.as_str() {
                record["expiresAt"] = serde_json::json!("2020-01-01T00:00:00Z");
            }
        }
        std::fs::write(&path, serde_json::to_vec(&records).unwrap()).unwrap();
    })
    .await;

    assert_eq!(me(&app, ("x-api-key", &lasting)).await.0, 200);
    let (status, body) = me(&app, ("x-api-key", &expiring)).await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "expired-api-key");
    assert_eq!(body["error"], "Invalid API key");
}

#[tokio::test]
async fn a_wrong_secret_for_a_known_id_is_invalid() {
    let app = spawn_app(&[]).await;
    let csrf = app.setup_and_login().await;
    let key = app.generate_key(&csrf, "k", "client", "never").await;
    let mut forged = key.clone();
    forged.pop();
    forged.push(if key.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(me(&app, ("x-api-key", &key)).await.0, 200);
    let (status, body) = me(&app, ("x-api-key", &forged)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid-api-key"))
    );
}

#[tokio::test]
async fn a_verified_key_costs_one_argon2_verification_per_process() {
    let app = spawn_app(&[]).await;
    let csrf = app.setup_and_login().await;
    let key = app.generate_key(&csrf, "hot", "client", "never").await;
    let before = app.hasher.verification_count();
    for _ in 0..5 {
        assert_eq!(me(&app, ("x-api-key", &key)).await.0, 200);
    }
    assert_eq!(app.hasher.verification_count() - before, 1);
}

#[tokio::test]
async fn a_form_without_the_csrf_token_or_from_another_origin_is_refused_and_changes_nothing() {
    let app = spawn_app(&[]).await;
    let csrf = app.setup_and_login().await;
    let fields = |token: &'static str| {
        vec![
            ("csrf_token", token),
            ("name", "sneaky"),
            ("role", "admin"),
            ("expiry", "never"),
        ]
    };

    let missing = app
        .post_form(
            "/dashboard/security/keys",
            &[("name", "sneaky"), ("role", "admin"), ("expiry", "never")],
        )
        .await;
    assert_eq!(missing.status(), 403);
    let wrong = app
        .post_form("/dashboard/security/keys", &fields("not-the-token"))
        .await;
    assert_eq!(wrong.status(), 403);

    let leaked: &'static str = Box::leak(csrf.clone().into_boxed_str());
    for origin in [Some("https://evil.example"), Some("null"), None] {
        let mut request = app
            .client
            .post(app.url("/dashboard/security/keys"))
            .form(&fields(leaked));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        assert_eq!(
            request.send().await.unwrap().status(),
            403,
            "origin {origin:?}"
        );
    }
    let cross_site = app
        .client
        .post(app.url("/dashboard/security/keys"))
        .header("origin", &app.address)
        .header("sec-fetch-site", "cross-site")
        .form(&fields(leaked))
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);

    let (_, html) = app.page("/dashboard/security").await;
    assert!(!html.contains("sneaky"), "no key was created");
    assert!(!app.data_file("api-keys.json").exists());

    let logout = app
        .client
        .post(app.url("/logout"))
        .header("origin", &app.address)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 403);
    assert_eq!(app.page("/dashboard").await.0, 200, "still logged in");
}

#[tokio::test]
async fn a_revoke_without_the_token_leaves_the_key_working() {
    let app = spawn_app(&[]).await;
    let csrf = app.setup_and_login().await;
    let key = app.generate_key(&csrf, "keep", "client", "never").await;
    let id = key.split('_').nth(1).unwrap().to_owned();
    let response = app
        .post_form(&format!("/dashboard/security/keys/{id}/revoke"), &[])
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(me(&app, ("x-api-key", &key)).await.0, 200);
}

#[tokio::test]
async fn a_session_reaches_the_api_as_an_unlimited_admin() {
    let app = spawn_app(&[("API_RATE_LIMIT", "1")]).await;
    app.setup_and_login().await;
    for _ in 0..3 {
        let response = app.get("/api/me", &[]).await;
        assert_eq!(response.status(), 200);
        assert!(response.headers().get("ratelimit").is_none());
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["kind"], "session");
        assert_eq!(body["role"], "admin");
        assert_eq!(body["name"], "owner");
    }
}

#[tokio::test]
async fn a_session_write_to_the_api_from_a_foreign_origin_is_refused() {
    let app = spawn_app(&[]).await;
    app.setup_and_login().await;
    let foreign = app
        .client
        .post(app.url("/api/me"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_error(foreign, 403, "cross-site-request").await;
    let same = app
        .client
        .post(app.url("/api/me"))
        .header("origin", &app.address)
        .send()
        .await
        .unwrap();
    assert_eq!(
        same.status(),
        405,
        "passes the gate, then the route says no"
    );
}

/// SPEC §2: the session comes first even when the request also carries a
/// key the gate could admit without waiting (an environment key, a dashboard
/// key already verified: `Gate::decide_now`), and a session's cross-site
/// write is refused even with such a key next to it.
#[tokio::test]
async fn a_session_next_to_a_valid_key_is_the_session_and_its_cross_site_writes_are_refused() {
    let client_key = "client-0123456789abcdef0123456789abcdef";
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY), ("VALID_API_KEYS", client_key)]).await;
    let csrf = app.setup_and_login().await;
    let dashboard_key = app.generate_key(&csrf, "beside", "client", "never").await;
    // Verified once without the session: from now on a cache hit.
    assert_eq!(me(&app, ("x-api-key", &dashboard_key)).await.0, 200);
    for key in [ADMIN_KEY, client_key, dashboard_key.as_str()] {
        for _ in 0..2 {
            let response = app.get("/api/me", &[("x-api-key", key)]).await;
            assert_eq!(response.status(), 200, "{key}");
            assert!(response.headers().get("ratelimit").is_none(), "{key}");
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["kind"], "session", "{key}");
        }
        let foreign = app
            .client
            .post(app.url("/api/me"))
            .header("origin", "https://evil.example")
            .header("x-api-key", key)
            .send()
            .await
            .unwrap();
        assert_error(foreign, 403, "cross-site-request").await;
    }
}

#[tokio::test]
async fn a_forged_session_cookie_with_a_valid_key_uses_the_key() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let response = app
        .me_fresh(&[
            ("cookie", "portico_session=forged-session-value"),
            ("x-api-key", ADMIN_KEY),
        ])
        .await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["kind"], "admin-key");
}

#[tokio::test]
async fn account_security_shows_which_env_keys_exist_but_not_their_values() {
    let app = spawn_app(&[
        ("ADMIN_API_KEY", ADMIN_KEY),
        ("VALID_API_KEYS", "client-a-secret,client-b-secret"),
    ])
    .await;
    app.setup_and_login().await;
    let (_, html) = app.page("/dashboard/security").await;
    assert!(html.contains("<code>ADMIN_API_KEY</code>: configured"));
    assert!(html.contains("2 key(s) configured"));
    for secret in [ADMIN_KEY, "client-a-secret", "client-b-secret"] {
        assert!(!html.contains(secret));
    }
}

#[tokio::test]
async fn recent_activity_is_shown_and_kept_across_a_restart() {
    let mut app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    app.setup_and_login().await;
    assert_eq!(me(&app, ("x-api-key", ADMIN_KEY)).await.0, 200);
    assert_eq!(me(&app, ("x-api-key", "a-wrong-key")).await.0, 401);
    app.restart().await;
    let (_, html) = app.page("/dashboard/security").await;
    let activity = html.split("id=\"activity\"").nth(1).unwrap();
    assert!(activity.contains("Dashboard user created"), "{activity}");
    assert!(activity.contains("invalid-api-key"));
    assert!(activity.contains("127.0.0.1"));
    assert!(!activity.contains("a-wrong-key"));
}

fn last_used(app: &TestApp, id: &str) -> Option<String> {
    let records: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(app.data_file("api-keys.json")).unwrap())
            .unwrap();
    let record = records
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap()
        .clone();
    record["lastUsedAt"].as_str().map(str::to_owned)
}

#[tokio::test]
async fn last_used_is_recorded_at_most_once_a_minute() {
    let mut app = spawn_app(&[]).await;
    let csrf = app.setup_and_login().await;
    let key = app.generate_key(&csrf, "used", "client", "never").await;
    let id = key.split('_').nth(1).unwrap().to_owned();
    assert_eq!(last_used(&app, &id), None);

    assert_eq!(me(&app, ("x-api-key", &key)).await.0, 200);
    app.restart().await;
    let first = last_used(&app, &id).expect("written at shutdown at the latest");

    assert_eq!(me(&app, ("x-api-key", &key)).await.0, 200);
    app.restart().await;
    assert_eq!(
        last_used(&app, &id),
        Some(first.clone()),
        "a second use within the minute changes nothing"
    );
    let (_, html) = app.page("/dashboard/security").await;
    let row = crate::helpers::extract(&html, &format!("data-key-id=\"{id}\""), "</tr>").unwrap();
    assert_eq!(
        row.matches(">never</td>").count(),
        1,
        "only the expiry says never: {row}"
    );
}

//! Key scopes (issue 17): permissions per endpoint, workspaces outside the
//! scope answered as absent, per-key address allowlist and hourly limit,
//! and editing all of it without a new secret.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, ADMIN_KEY};

/// Each endpoint, the permission it needs, and its status with it (the
/// requests name things that do not exist, so nothing changes).
fn endpoints() -> Vec<(Method, &'static str, Option<Value>, &'static str, u16)> {
    let nowhere = json!({"name": "x", "path": "/nonexistent/portico-scope-test"});
    vec![
        (Method::GET, "/api/workspaces", None, "workspaces:read", 200),
        (
            Method::POST,
            "/api/workspaces",
            Some(nowhere),
            "workspaces:write",
            400,
        ),
        (
            Method::DELETE,
            "/api/workspaces/nope",
            None,
            "workspaces:write",
            404,
        ),
        (
            Method::POST,
            "/api/ask",
            Some(json!({"workspaceId": "nope", "question": "q"})),
            "ask",
            404,
        ),
        (Method::DELETE, "/api/jobs/nope", None, "ask", 404),
        (Method::GET, "/api/jobs", None, "jobs:read", 200),
        (Method::GET, "/api/jobs/nope", None, "jobs:read", 404),
        (Method::GET, "/api/queue/status", None, "jobs:read", 200),
        (Method::GET, "/api/keys", None, "keys:manage", 200),
        (
            Method::POST,
            "/api/keys",
            Some(json!({"name": ""})),
            "keys:manage",
            400,
        ),
        (
            Method::PATCH,
            "/api/keys/nope",
            Some(json!({})),
            "keys:manage",
            404,
        ),
        (Method::DELETE, "/api/keys/nope", None, "keys:manage", 404),
        (
            Method::POST,
            "/api/keys/nope/roll",
            None,
            "keys:manage",
            404,
        ),
    ]
}

#[tokio::test]
async fn each_permission_opens_exactly_its_endpoints_and_the_rest_answer_insufficient_scope() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let permissions = [
        "ask",
        "jobs:read",
        "workspaces:read",
        "workspaces:write",
        "keys:manage",
    ];
    for permission in permissions {
        // Admin-only permissions can only be given to admin keys; an admin
        // key holding just one permission is as narrow as a client key.
        let (key, _) = app
            .create_key(json!({"name": permission, "role": "admin", "permissions": [permission]}))
            .await;
        let (status, me) = app.me_with_key(&key).await;
        assert_eq!(status, 200, "/api/me needs no permission");
        assert_eq!(me["scopes"]["permissions"], json!([permission]));
        for (method, path, body, needed, allowed_status) in endpoints() {
            let response = app.api(method.clone(), path, &key, body.as_ref()).await;
            if needed == permission {
                assert_eq!(
                    response.status().as_u16(),
                    allowed_status,
                    "{permission}: {method} {path}"
                );
            } else {
                let error = assert_error(response, 403, "insufficient-scope").await;
                assert_eq!(
                    error["details"]["permission"], needed,
                    "{permission}: {method} {path}"
                );
                assert!(error["error"].as_str().unwrap().contains(needed), "{error}");
            }
        }
    }
}

#[tokio::test]
async fn new_keys_get_their_role_s_default_scope_and_clients_cannot_hold_admin_permissions() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let (client, _) = app.create_key(json!({"name": "client"})).await;
    let (_, me) = app.me_with_key(&client).await;
    assert_eq!(
        me["scopes"]["permissions"],
        json!(["ask", "jobs:read", "workspaces:read"])
    );
    assert_eq!(me["scopes"]["workspaces"], Value::Null, "every workspace");
    let (admin, _) = app
        .create_key(json!({"name": "admin", "role": "admin"}))
        .await;
    let (_, me) = app.me_with_key(&admin).await;
    assert_eq!(me["scopes"]["permissions"].as_array().unwrap().len(), 5);
    let (_, me) = app.me_with_key(ADMIN_KEY).await;
    assert_eq!(
        me["scopes"]["permissions"].as_array().unwrap().len(),
        5,
        "env admin key: all"
    );

    let body = json!({"name": "sneaky", "permissions": ["ask", "keys:manage"]});
    let response = app.post_json("/api/keys", ADMIN_KEY, &body).await;
    let error = assert_error(response, 400, "invalid-request").await;
    assert!(error["details"]["permissions"]
        .as_str()
        .unwrap()
        .contains("admin keys only"));
    let response = app
        .post_json(
            "/api/keys",
            ADMIN_KEY,
            &json!({"name": "x", "permissions": ["root"]}),
        )
        .await;
    assert_error(response, 400, "invalid-request").await;
}

#[tokio::test]
async fn a_key_held_to_one_workspace_sees_the_others_as_absent_in_lists_jobs_and_queue_status() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let (dir1, dir2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let w1 = app.register_workspace_named("one", dir1.path()).await;
    let w2 = app.register_workspace_named("two", dir2.path()).await;
    let (key, id) = app.create_key(json!({"name": "wide"})).await;
    let job1 = app
        .ask(&key, json!({"workspaceId": w1, "question": "in one"}))
        .await;
    let job2 = app
        .ask(&key, json!({"workspaceId": w2, "question": "in two"}))
        .await;

    let response = app
        .patch_json(
            &format!("/api/keys/{id}"),
            ADMIN_KEY,
            &json!({"workspaces": [w1]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let edited: Value = response.json().await.unwrap();
    assert_eq!(edited["scopes"]["workspaces"], json!([w1]));

    let (_, me) = app.me_with_key(&key).await;
    assert_eq!(
        me["scopes"]["workspaces"],
        json!([w1]),
        "the same secret, the new scope"
    );
    let (_, listed) = app.get_json("/api/workspaces", &key).await;
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [w1.as_str()]);
    let response = app
        .post_json(
            "/api/ask",
            &key,
            &json!({"workspaceId": w2, "question": "q"}),
        )
        .await;
    assert_error(response, 404, "not-found").await;

    let (_, jobs) = app.get_json("/api/jobs", &key).await;
    let text = jobs.to_string();
    assert!(text.contains(&job1) && !text.contains(&job2), "{text}");
    let (status, _) = app.get_json(&format!("/api/jobs/{job2}"), &key).await;
    assert_eq!(
        status, 404,
        "a job in another workspace is absent, not forbidden"
    );
    let response = app.delete(&format!("/api/jobs/{job2}"), &key).await;
    assert_eq!(response.status(), 404);
    let (_, queue) = app.get_json("/api/queue/status", &key).await;
    let text = queue.to_string();
    assert!(text.contains(&job1) && !text.contains(&job2), "{text}");

    // An admin key held to workspace one: all jobs there, none elsewhere.
    let (admin, _) = app
        .create_key(json!({"name": "a1", "role": "admin", "workspaces": [w1]}))
        .await;
    let (_, jobs) = app.get_json("/api/jobs", &admin).await;
    let text = jobs.to_string();
    assert!(text.contains(&job1) && !text.contains(&job2), "{text}");
    let (_, queue) = app.get_json("/api/queue/status", &admin).await;
    assert!(!queue.to_string().contains(&job2));
    let response = app.delete(&format!("/api/workspaces/{w2}"), &admin).await;
    assert_error(response, 404, "not-found").await;
    let (_, all) = app.get_json("/api/workspaces", ADMIN_KEY).await;
    assert_eq!(
        all.as_array().unwrap().len(),
        2,
        "workspace two is still there"
    );
    // Nor can it hand out a key that reaches further than itself.
    let response = app
        .post_json("/api/keys", &admin, &json!({"name": "wider"}))
        .await;
    let error = assert_error(response, 400, "invalid-request").await;
    assert!(error["details"]["workspaces"].is_string(), "{error}");
}

#[tokio::test]
async fn a_key_s_allowlist_refuses_other_addresses_seen_through_a_trusted_proxy() {
    let app = spawn_app(&[
        ("ADMIN_API_KEY", ADMIN_KEY),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let (held, _) = app
        .create_key(json!({"name": "office", "allowedIps": ["203.0.113.0/24"]}))
        .await;
    let (free, _) = app.create_key(json!({"name": "anywhere"})).await;
    let from = |key: &str, addr: &str| {
        let (app, key, addr) = (&app, key.to_owned(), addr.to_owned());
        async move {
            app.me(&[("x-api-key", &key), ("x-forwarded-for", &addr)])
                .await
        }
    };
    assert_eq!(from(&held, "203.0.113.7").await.status(), 200);
    let error = assert_error(from(&held, "198.51.100.1").await, 403, "ip-not-allowed").await;
    assert_eq!(error["error"], "Access denied from this IP address");
    assert_eq!(
        from(&free, "198.51.100.1").await.status(),
        200,
        "other keys are not held"
    );

    let response = app
        .post_json(
            "/api/keys",
            ADMIN_KEY,
            &json!({"name": "bad", "allowedIps": ["10.0.0.0/33"]}),
        )
        .await;
    let error = assert_error(response, 400, "invalid-request").await;
    assert!(error["details"]["allowedIps"].is_string(), "{error}");
}

#[tokio::test]
async fn a_key_s_own_hourly_limit_shows_in_its_headers_and_ends_in_429() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY), ("API_RATE_LIMIT", "100")]).await;
    let (key, id) = app
        .create_key(json!({"name": "slow", "hourlyLimit": 3}))
        .await;
    for remaining in [2, 1, 0] {
        let response = app.me(&[("x-api-key", &key)]).await;
        assert_eq!(response.status(), 200);
        let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
        assert_eq!(header("ratelimit-policy"), "\"hourly\";q=3;w=3600");
        assert!(header("ratelimit").starts_with(&format!("\"hourly\";r={remaining};")));
    }
    let response = app.me(&[("x-api-key", &key)]).await;
    assert!(response.headers().contains_key("retry-after"));
    assert_error(response, 429, "rate-limited").await;
    let (other, _) = app.create_key(json!({"name": "fast"})).await;
    let response = app.me(&[("x-api-key", &other)]).await;
    assert_eq!(
        response.headers()["ratelimit-policy"],
        "\"hourly\";q=100;w=3600"
    );

    // Raising the limit applies at once, to the same secret and window.
    assert_eq!(
        app.patch_json(
            &format!("/api/keys/{id}"),
            ADMIN_KEY,
            &json!({"hourlyLimit": 5})
        )
        .await
        .status(),
        200
    );
    let response = app.me(&[("x-api-key", &key)]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["ratelimit-policy"],
        "\"hourly\";q=5;w=3600"
    );
}

#[tokio::test]
async fn hundreds_of_simultaneous_requests_get_exactly_a_key_s_own_limit() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY), ("API_RATE_LIMIT", "1000")]).await;
    let (key, _) = app
        .create_key(json!({"name": "burst", "hourlyLimit": 10}))
        .await;
    assert_eq!(
        app.me(&[("x-api-key", &key)]).await.status(),
        200,
        "verified once"
    );
    let requests = (0..300).map(|_| {
        let (api, key) = (app.http.clone(), key.clone());
        tokio::spawn(async move {
            let response = api.me_fresh(&[("x-api-key", &key)]).await;
            response.status().as_u16()
        })
    });
    let statuses: Vec<u16> = futures_util::future::join_all(requests)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 9);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 291);
}

#[tokio::test]
async fn editing_a_key_keeps_its_secret_checks_the_fields_and_is_in_the_audit_trail() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    app.setup_and_login().await;
    let (key, id) = app.create_key(json!({"name": "edited"})).await;
    let response = app
        .patch_json(
            &format!("/api/keys/{id}"),
            ADMIN_KEY,
            &json!({"permissions": ["ask"]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    // The logged-in client's session would win over the key: ask without it.
    let response = app.api(Method::GET, "/api/me", &key, None).await;
    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["scopes"]["permissions"], json!(["ask"]));
    let (status, _) = app.get_json("/api/jobs", &key).await;
    assert_eq!(status, 403, "jobs:read was taken away");

    for (body, field) in [
        (json!({"permissions": ["workspaces:write"]}), "permissions"),
        (json!({"hourlyLimit": 0}), "hourlyLimit"),
        (json!({"allowedIps": ["not-an-address"]}), "allowedIps"),
    ] {
        let error = assert_error(
            app.patch_json(&format!("/api/keys/{id}"), ADMIN_KEY, &body)
                .await,
            400,
            "invalid-request",
        )
        .await;
        assert!(error["details"][field].is_string(), "{error}");
    }
    assert_error(
        app.patch_json(
            &format!("/api/keys/{id}"),
            ADMIN_KEY,
            &json!({"colour": "red"}),
        )
        .await,
        400,
        "invalid-request",
    )
    .await;
    assert_error(
        app.patch_json("/api/keys/nope", ADMIN_KEY, &json!({}))
            .await,
        404,
        "not-found",
    )
    .await;
    let me: Value = app
        .api(Method::GET, "/api/me", &key, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        me["scopes"]["permissions"],
        json!(["ask"]),
        "refused edits changed nothing"
    );

    let (_, page) = app.page("/dashboard/security").await;
    assert!(
        page.contains("API key scope edited"),
        "the edit is in the activity trail"
    );
    let stored: Value =
        serde_json::from_str(&std::fs::read_to_string(app.data_file("api-keys.json")).unwrap())
            .unwrap();
    assert_eq!(
        stored[0]["scope"]["permissions"],
        json!(["ask"]),
        "kept on disk"
    );
}

#[tokio::test]
async fn the_command_line_creates_and_edits_a_scoped_key_without_a_new_secret() {
    use portico::auth::offline_keys::{run, KeysCommand};
    use portico::auth::ScopeChanges;
    let dir = tempfile::tempdir().unwrap();
    let printed = run(
        dir.path(),
        KeysCommand::Create {
            name: "narrow".into(),
            role: None,
            expires_days: None,
            scope: ScopeChanges {
                permissions: Some(vec!["ask".into()]),
                hourly_limit: Some(Some(10)),
                ..ScopeChanges::default()
            },
        },
    )
    .await
    .unwrap();
    let key = printed.trim().to_owned();
    let id = key.split('_').nth(1).unwrap().to_owned();
    let edited = run(
        dir.path(),
        KeysCommand::Edit {
            id: id.clone(),
            scope: ScopeChanges {
                workspaces: Some(Some(vec!["w1".into()])),
                ..ScopeChanges::default()
            },
        },
    )
    .await
    .unwrap();
    let edited: Value = serde_json::from_str(&edited).unwrap();
    assert_eq!(edited["permissions"], json!(["ask"]), "kept");
    assert_eq!(edited["workspaces"], json!(["w1"]));
    assert_eq!(edited["hourlyLimit"], 10);
    let refused = run(
        dir.path(),
        KeysCommand::Edit {
            id,
            scope: ScopeChanges {
                permissions: Some(vec!["keys:manage".into()]),
                ..ScopeChanges::default()
            },
        },
    )
    .await
    .unwrap_err();
    assert!(refused.to_string().contains("admin keys only"), "{refused}");

    let app = spawn_app(&[("DATA_DIR", dir.path().to_str().unwrap())]).await;
    let (status, me) = app.me_with_key(&key).await;
    assert_eq!(status, 200, "the same secret works");
    assert_eq!(me["scopes"]["workspaces"], json!(["w1"]));
    let response = app.me(&[("x-api-key", &key)]).await;
    assert_eq!(
        response.headers()["ratelimit-policy"],
        "\"hourly\";q=10;w=3600"
    );
}

#[tokio::test]
async fn account_security_edits_a_key_s_scope_and_keeps_refused_input() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let csrf = app.setup_and_login().await;
    let (key, id) = app.create_key(json!({"name": "form-edited"})).await;
    let (_, list) = app.page("/dashboard/security").await;
    assert!(list.contains(&format!("/dashboard/security/keys/{id}/scope")));
    let (status, form) = app
        .page(&format!("/dashboard/security/keys/{id}/scope"))
        .await;
    assert_eq!(status, 200);
    assert!(
        form.contains("name=\"perm_ask\" value=\"on\" checked"),
        "{form}"
    );
    assert!(
        !form.contains("perm_keys_manage"),
        "no admin permission for a client key"
    );

    let path = format!("/dashboard/security/keys/{id}/scope");
    let response = app
        .submit(
            &path,
            &csrf,
            &[
                ("perm_ask", "on"),
                ("workspaces", "w1"),
                ("hourly_limit", "many"),
            ],
        )
        .await;
    assert_eq!(response.status(), 400);
    let page = response.text().await.unwrap();
    assert!(page.contains("whole number"), "says what is wrong");
    assert!(page.contains("value=\"many\""), "keeps what was typed");

    let response = app
        .submit(
            &path,
            &csrf,
            &[
                ("perm_ask", "on"),
                ("workspaces", "w1, w2"),
                ("allowed_ips", "127.0.0.1"),
                ("hourly_limit", "7"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let me: Value = app
        .api(Method::GET, "/api/me", &key, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["scopes"]["permissions"], json!(["ask"]));
    assert_eq!(me["scopes"]["workspaces"], json!(["w1", "w2"]));
    assert_eq!(me["scopes"]["allowedIps"], json!(["127.0.0.1/32"]));
    assert_eq!(me["scopes"]["hourlyLimit"], 7);

    let response = app.post_form(&path, &[("perm_ask", "on")]).await;
    assert_eq!(response.status(), 403, "no CSRF token, no change");
}

/// What an error body says, without what differs per request.
fn error_of(body: &Value) -> (Value, Value, Value) {
    (
        body["code"].clone(),
        body["error"].clone(),
        body["details"].clone(),
    )
}

#[tokio::test]
async fn a_key_manager_held_to_one_workspace_finds_wider_keys_absent_for_every_verb() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let dir = tempfile::tempdir().unwrap();
    let w1 = app.register_workspace_named("one", dir.path()).await;
    let (manager, manager_id) = app
        .create_key(json!({
            "name": "manager",
            "role": "admin",
            "permissions": ["ask", "jobs:read", "workspaces:read", "keys:manage"],
            "workspaces": [w1],
        }))
        .await;
    let (full_key, full_id) = app
        .create_key(json!({"name": "full", "role": "admin"}))
        .await;
    let (_, narrow_id) = app
        .create_key(json!({"name": "narrow", "permissions": ["ask"], "workspaces": [w1]}))
        .await;

    let (status, listed) = app.get_json("/api/keys", &manager).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert!(
        !ids.contains(&full_id.as_str()),
        "the wider key is listed: {listed}"
    );
    assert!(ids.contains(&narrow_id.as_str()) && ids.contains(&manager_id.as_str()));

    let attempts = |id: &str| {
        vec![
            (Method::GET, format!("/api/keys/{id}/usage"), None),
            (
                Method::PATCH,
                format!("/api/keys/{id}"),
                Some(json!({"permissions": ["ask"]})),
            ),
            (
                Method::POST,
                format!("/api/keys/{id}/roll"),
                Some(json!({"graceSeconds": 0})),
            ),
            (Method::DELETE, format!("/api/keys/{id}"), None),
        ]
    };
    let unknown = attempts("nope");
    for ((method, path, body), (_, unknown_path, _)) in attempts(&full_id).into_iter().zip(unknown)
    {
        let wider = assert_error(
            app.api(method.clone(), &path, &manager, body.as_ref())
                .await,
            404,
            "not-found",
        )
        .await;
        let absent = assert_error(
            app.api(method.clone(), &unknown_path, &manager, body.as_ref())
                .await,
            404,
            "not-found",
        )
        .await;
        assert_eq!(error_of(&wider), error_of(&absent), "{method} {path}");
    }
    // The wider key is untouched: same scope, not rolled, not revoked.
    let (status, me) = app.get_json("/api/me", &full_key).await;
    assert_eq!(status, 200, "the full key still works");
    assert!(me["scopes"]["permissions"]
        .as_array()
        .unwrap()
        .contains(&json!("keys:manage")));
    let (_, all) = app.get_json("/api/keys", ADMIN_KEY).await;
    let full = all
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == full_id.as_str())
        .unwrap()
        .clone();
    assert!(
        full.get("previousValidUntil").is_none(),
        "not rolled: {full}"
    );

    // Within its own scope it still manages keys.
    let (status, _) = app
        .get_json(&format!("/api/keys/{narrow_id}/usage"), &manager)
        .await;
    assert_eq!(status, 200);
    let response = app
        .patch_json(
            &format!("/api/keys/{narrow_id}"),
            &manager,
            &json!({"hourlyLimit": 5}),
        )
        .await;
    assert_eq!(
        response.status(),
        200,
        "a key within its own scope is edited"
    );
    let response = app
        .post_json(
            &format!("/api/keys/{narrow_id}/roll"),
            &manager,
            &json!({"graceSeconds": 0}),
        )
        .await;
    assert_eq!(response.status(), 200, "a key within its own scope rolls");
    let response = app
        .delete(&format!("/api/keys/{narrow_id}"), &manager)
        .await;
    assert_eq!(
        response.status(),
        204,
        "a key within its own scope is revoked"
    );
    // The unrestricted admin key still sees and reaches every key.
    assert!(all.as_array().unwrap().len() >= 3);
    let (status, _) = app
        .get_json(&format!("/api/keys/{full_id}/usage"), ADMIN_KEY)
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn api_me_answers_each_key_with_its_own_principal_and_a_changed_scope_at_once() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    app.setup_and_login().await;
    let (first, first_id) = app.create_key(json!({"name": "first"})).await;
    let (second, second_id) = app.create_key(json!({"name": "second"})).await;
    // Alternating callers, each answered from what it is (`/api/me` keeps
    // recent answers in memory).
    for _ in 0..3 {
        for (key, id, name) in [
            (ADMIN_KEY, "admin-key", "ADMIN_API_KEY"),
            (first.as_str(), first_id.as_str(), "first"),
            (second.as_str(), second_id.as_str(), "second"),
        ] {
            let (status, me) = app.get_json("/api/me", key).await;
            assert_eq!(status, 200);
            assert_eq!(
                (me["id"].as_str(), me["name"].as_str()),
                (Some(id), Some(name))
            );
        }
    }
    let response = app
        .patch_json(
            &format!("/api/keys/{first_id}"),
            ADMIN_KEY,
            &json!({"permissions": ["ask"], "hourlyLimit": 9}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let (status, me) = app.get_json("/api/me", &first).await;
    assert_eq!(status, 200);
    assert_eq!(me["scopes"]["permissions"], json!(["ask"]));
    assert_eq!(me["scopes"]["hourlyLimit"], json!(9));
}

//! Per-key usage (issue 17 item 3): requests per hour for seven days,
//! allowed and denied by reason, in `GET /api/keys/{id}/usage` and on
//! Account Security, kept across a restart.

use serde_json::{json, Value};

use crate::helpers::{
    assert_error, raw_request, run_cli, simultaneously, spawn_app, text, TestApp, ADMIN_KEY,
};

async fn create_key(app: &TestApp, body: Value) -> (String, String) {
    let response = app.post_json("/api/keys", ADMIN_KEY, &body).await;
    assert_eq!(response.status(), 201, "creating {body}");
    let created: Value = response.json().await.unwrap();
    (
        created["key"].as_str().unwrap().to_owned(),
        created["record"]["id"].as_str().unwrap().to_owned(),
    )
}

/// A request with `key` alone (no session cookie).
async fn status_of(app: &TestApp, path: &str, key: &str) -> u16 {
    app.fresh_client()
        .get(app.url(path))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn usage(app: &TestApp, id: &str) -> Value {
    let (status, body) = app
        .get_json(&format!("/api/keys/{id}/usage"), ADMIN_KEY)
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The totals, checked against the sum of the hourly buckets.
fn totals(usage: &Value) -> Value {
    let hours = usage["hours"].as_array().unwrap();
    let sum = |field: &dyn Fn(&Value) -> &Value| -> u64 {
        hours.iter().map(|hour| field(hour).as_u64().unwrap()).sum()
    };
    assert_eq!(
        usage["allowed"].as_u64().unwrap(),
        sum(&|hour| &hour["allowed"])
    );
    for reason in usage["denied"].as_object().unwrap().keys() {
        assert_eq!(
            usage["denied"][reason].as_u64().unwrap(),
            sum(&|hour| &hour["denied"][reason.as_str()]),
            "{reason}"
        );
    }
    json!({"allowed": usage["allowed"], "denied": usage["denied"]})
}

fn denied(pairs: &[(&str, u64)]) -> Value {
    let mut denied = json!({
        "rate-limited": 0, "insufficient-scope": 0, "admin-required": 0,
        "ip-not-allowed": 0, "expired-api-key": 0, "too-many-jobs": 0,
    });
    for (reason, n) in pairs {
        denied[*reason] = json!(n);
    }
    denied
}

#[tokio::test]
async fn usage_counts_each_request_of_a_key_as_allowed_or_denied_by_reason() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let (key, id) = create_key(
        &app,
        json!({"name": "narrow", "permissions": ["ask"], "hourlyLimit": 5}),
    )
    .await;
    let (fenced, fenced_id) = create_key(
        &app,
        json!({"name": "fenced", "allowedIps": ["192.0.2.0/24"]}),
    )
    .await;

    for _ in 0..3 {
        assert_eq!(status_of(&app, "/api/me", &key).await, 200);
    }
    for _ in 0..2 {
        assert_eq!(status_of(&app, "/api/workspaces", &key).await, 403);
    }
    for _ in 0..4 {
        assert_eq!(status_of(&app, "/api/me", &key).await, 429);
    }
    for _ in 0..2 {
        assert_eq!(status_of(&app, "/api/me", &fenced).await, 403);
    }
    // A wrong secret with the key's id is nobody's request: it is not
    // counted, so nobody can inflate a key's numbers without holding it.
    let forged = format!("ptk_{id}_{}", "A".repeat(48));
    assert_eq!(status_of(&app, "/api/me", &forged).await, 401);

    let narrow = usage(&app, &id).await;
    assert_eq!(narrow["keyId"], id.as_str());
    assert_eq!(
        totals(&narrow),
        json!({"allowed": 3, "denied": denied(&[("insufficient-scope", 2), ("rate-limited", 4)])})
    );
    assert_eq!(
        totals(&usage(&app, &fenced_id).await),
        json!({"allowed": 0, "denied": denied(&[("ip-not-allowed", 2)])})
    );

    // 168 hours, oldest first, one hour apart, the last one being now.
    let hours = narrow["hours"].as_array().unwrap();
    assert_eq!(hours.len(), 168);
    let start = |value: &Value| {
        chrono::DateTime::parse_from_rfc3339(value.as_str().unwrap())
            .unwrap()
            .timestamp()
    };
    for pair in hours.windows(2) {
        assert_eq!(start(&pair[1]["hour"]) - start(&pair[0]["hour"]), 3600);
    }
    let now = chrono::Utc::now().timestamp();
    assert!(start(&hours[167]["hour"]) <= now && now < start(&narrow["to"]));
    assert_eq!(narrow["from"], hours[0]["hour"]);
}

#[tokio::test]
async fn the_usage_endpoint_is_for_key_managers_and_answers_404_for_an_unknown_key() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let (client, id) = create_key(&app, json!({"name": "client"})).await;
    let path = format!("/api/keys/{id}/usage");

    let response = app.get(&path, &[("x-api-key", &client)]).await;
    assert_error(response, 403, "admin-required").await;
    let (admin_without_manage, _) = create_key(
        &app,
        json!({"name": "reader", "role": "admin", "permissions": ["workspaces:read"]}),
    )
    .await;
    let response = app
        .get(&path, &[("x-api-key", &admin_without_manage)])
        .await;
    assert_error(response, 403, "insufficient-scope").await;
    let response = app.get(&path, &[]).await;
    assert_error(response, 401, "missing-api-key").await;
    let response = app
        .get("/api/keys/nosuchkey1/usage", &[("x-api-key", ADMIN_KEY)])
        .await;
    assert_error(response, 404, "not-found").await;
    assert_eq!(status_of(&app, &path, ADMIN_KEY).await, 200);
}

#[tokio::test]
async fn usage_survives_a_restart_and_an_expired_key_s_refusals_are_counted() {
    let mut app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let (key, id) = create_key(&app, json!({"name": "lasting", "expiresInDays": 30})).await;
    for _ in 0..4 {
        assert_eq!(status_of(&app, "/api/me", &key).await, 200);
    }

    // Stopped without anyone reading the usage: the shutdown writes it.
    app.restart_with(|app| {
        let file = app.data_file("usage").join(format!("{id}.json"));
        let mode = std::fs::metadata(&file).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        let path = app.data_file("api-keys.json");
        let mut records: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        records[0]["expiresAt"] = json!("2020-01-01T00:00:00Z");
        std::fs::write(&path, serde_json::to_vec(&records).unwrap()).unwrap();
    })
    .await;
    assert_eq!(status_of(&app, "/api/me", &key).await, 401);

    assert_eq!(
        totals(&usage(&app, &id).await),
        json!({"allowed": 4, "denied": denied(&[("expired-api-key", 1)])})
    );
}

#[tokio::test]
async fn a_revoked_key_s_usage_is_dropped() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let (gone, gone_id) = create_key(&app, json!({"name": "gone"})).await;
    let (_, kept_id) = create_key(&app, json!({"name": "kept"})).await;
    assert_eq!(status_of(&app, "/api/me", &gone).await, 200);
    assert_eq!(totals(&usage(&app, &gone_id).await)["allowed"], 1);
    let file = app.data_file("usage").join(format!("{gone_id}.json"));
    assert!(file.exists());

    let response = app
        .fresh_client()
        .delete(app.url(&format!("/api/keys/{gone_id}")))
        .header("x-api-key", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    // Reading any key's usage flushes, and a flush drops revoked keys.
    usage(&app, &kept_id).await;
    assert!(!file.exists(), "the revoked key's usage is still stored");
    let response = app
        .get(
            &format!("/api/keys/{gone_id}/usage"),
            &[("x-api-key", ADMIN_KEY)],
        )
        .await;
    assert_error(response, 404, "not-found").await;
}

/// The `<svg …>…</svg>` in `html` after `marker`.
fn svg_after<'a>(html: &'a str, marker: &str) -> &'a str {
    let from = html
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {html}"));
    let start = from + html[from..].find("<svg").expect("an inline SVG");
    let end = start + html[start..].find("</svg>").expect("a closed SVG");
    &html[start..end]
}

#[tokio::test]
async fn account_security_charts_each_key_and_its_page_shows_the_numbers() {
    let app = spawn_app(&[]).await;
    let csrf = app.setup_and_login().await;
    let busy = app.generate_key(&csrf, "busy", "client", "never").await;
    app.generate_key(&csrf, "idle", "client", "never").await;
    let busy_id = busy.split('_').nth(1).unwrap().to_owned();
    for _ in 0..3 {
        assert_eq!(status_of(&app, "/api/me", &busy).await, 200);
    }
    // Client keys lack keys:manage: refused, and counted as such.
    assert_eq!(status_of(&app, "/api/keys", &busy).await, 403);

    let (status, html) = app.page("/dashboard/security").await;
    assert_eq!(status, 200);
    let chart = svg_after(&html, &format!("data-key-id=\"{busy_id}\""));
    assert!(chart.contains("class=\"usage-chart\""), "{chart}");
    assert!(
        chart.contains("Last 7 days: 3 allowed, 1 denied"),
        "{chart}"
    );
    assert_eq!(
        chart.matches("class=\"usage-allowed\"").count(),
        1,
        "{chart}"
    );
    assert_eq!(
        chart.matches("class=\"usage-denied\"").count(),
        1,
        "{chart}"
    );
    assert!(html.contains(&format!(
        "href=\"/dashboard/security/keys/{busy_id}/usage\""
    )));
    let idle = svg_after(&html, "aria-label=\"Usage of idle\"");
    assert!(idle.contains("Last 7 days: 0 allowed, 0 denied"), "{idle}");
    assert!(!idle.contains("usage-allowed"), "{idle}");
    // The CSP forbids inline styles and scripts: the charts use neither.
    assert!(!html.contains("style="), "an inline style attribute");
    assert!(!html.contains("<script>"), "an inline script");

    let (status, detail) = app
        .page(&format!("/dashboard/security/keys/{busy_id}/usage"))
        .await;
    assert_eq!(status, 200);
    assert!(svg_after(&detail, "Last 7 days").contains("3 allowed, 1 denied"));
    assert!(
        detail.contains("<strong id=\"usage-allowed\">3</strong>"),
        "{detail}"
    );
    let hours = &detail[detail.find("usage-hours").expect("the hourly table")..];
    let body = &hours[hours.find("<tbody>").unwrap()..];
    let first_row = &body[..body.find("</tr>").unwrap()];
    assert!(
        first_row.contains("data-label=\"Allowed\">3<"),
        "{first_row}"
    );
    assert!(
        first_row.contains("data-label=\"admin-required\">1<"),
        "{first_row}"
    );
    assert!(!detail.contains("style="));

    let (status, _) = app.page("/dashboard/security/keys/nosuchkey1/usage").await;
    assert_eq!(status, 404);
    let anonymous = app
        .fresh_client()
        .get(app.url(&format!("/dashboard/security/keys/{busy_id}/usage")))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 303, "a login is needed");
}

#[tokio::test]
async fn portico_keys_usage_prints_a_key_s_days_with_the_server_stopped() {
    let mut app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let (key, id) = create_key(&app, json!({"name": "cli", "hourlyLimit": 2})).await;
    for expected in [200, 200, 429] {
        assert_eq!(status_of(&app, "/api/me", &key).await, expected);
    }
    app.restart_with(|app| {
        let dir = app.data_dir.path().display().to_string();
        let vars = [("DATA_DIR", dir.as_str())];
        // Retried while the stopped server's lock is still shared with a
        // child another test is forking (see `keys_cli::run`).
        let usage_of = |id: &str| {
            let mut out = run_cli(app.data_dir.path(), &vars, &["keys", "usage", id], "");
            for _ in 0..40 {
                if !text(&out.stderr).contains("is using the data directory") {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
                out = run_cli(app.data_dir.path(), &vars, &["keys", "usage", id], "");
            }
            out
        };
        let out = usage_of(&id);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let lines: Vec<&str> = stdout.lines().collect();
        assert!(
            lines[0].starts_with("DAY\tallowed\trate-limited\t"),
            "{stdout}"
        );
        assert!(lines.len() >= 3, "{stdout}");
        assert!(
            lines.last().unwrap().starts_with("TOTAL\t2\t1\t0\t"),
            "{stdout}"
        );
        let out = usage_of("nosuchkey1");
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out.stderr).contains("no key with the id"),
            "{}",
            text(&out.stderr)
        );
    })
    .await;
}

#[tokio::test]
async fn hundreds_of_simultaneous_requests_are_each_counted_once_while_flushes_run() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let (key, id) = create_key(&app, json!({"name": "burst", "hourlyLimit": 251})).await;
    // Verified once (argon2), so the burst is not held by the throttle on
    // simultaneous first checks from one address.
    assert_eq!(status_of(&app, "/api/me", &key).await, 200);
    let usage_path = format!("/api/keys/{id}/usage");
    // 300 requests with the key and, among them, 10 usage reads that
    // flush while the counts are being added.
    let requests: Vec<Vec<u8>> = (0..310)
        .map(|n| {
            if n % 31 == 30 {
                raw_request(
                    &app.address,
                    "GET",
                    &usage_path,
                    &[("x-api-key", ADMIN_KEY)],
                    "",
                )
            } else {
                raw_request(&app.address, "GET", "/api/me", &[("x-api-key", &key)], "")
            }
        })
        .collect();
    let answers = simultaneously(&app.address, &requests).await;
    let statuses = |wanted: u16| answers.iter().filter(|a| a.status == wanted).count();
    assert_eq!((statuses(200), statuses(429)), (260, 50));

    assert_eq!(
        totals(&usage(&app, &id).await),
        json!({"allowed": 251, "denied": denied(&[("rate-limited", 50)])})
    );
}

//! Account Security's activity (SPEC §6.2): an audit trail of account
//! events by name, each with its own time, that a flood of anonymous
//! failures cannot push out.

use std::time::Duration;

use futures_util::StreamExt;

use crate::helpers::{extract, spawn_app, test_client, TestApp, ADMIN_KEY, PASSWORD, USERNAME};

async fn audited_app() -> TestApp {
    spawn_app(&[
        ("ADMIN_API_KEY", ADMIN_KEY),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await
}

/// The account-event table and the failure table of Account Security.
async fn activity(app: &TestApp) -> (String, String) {
    let (status, html) = app.page("/dashboard/security").await;
    assert_eq!(status, 200);
    let section = extract(&html, "id=\"activity\"", "</section>").expect("the activity section");
    let (events, failures) = section.split_once("Failed attempts").expect("two tables");
    (events.to_owned(), failures.to_owned())
}

fn rows(table: &str) -> Vec<&str> {
    table.split("<tr>").skip(2).collect()
}

/// Sends `count` anonymous failures, alternating a wrong API key and a
/// wrong login, from `addresses` different forwarded addresses.
async fn flood(app: &TestApp, count: usize, addresses: usize) {
    let client = test_client();
    futures_util::stream::iter(0..count)
        .map(|n| {
            let client = client.clone();
            let forwarded = format!(
                "198.51.{}.{}",
                (n % addresses) / 250,
                (n % addresses) % 250 + 1
            );
            async move {
                let request = if n % 2 == 0 {
                    client
                        .get(app.url("/api/me"))
                        .header("x-api-key", format!("guess-{n}"))
                } else {
                    client
                        .post(app.url("/login"))
                        .header("origin", &app.address)
                        // One name, so the login throttle soon spares the hashing.
                        .form(&[("username", "intruder"), ("password", "wrong")])
                };
                let status = request
                    .header("x-forwarded-for", forwarded)
                    .send()
                    .await
                    .unwrap()
                    .status();
                assert!([401, 429].contains(&status.as_u16()), "{status}");
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<()>>()
        .await;
}

#[tokio::test]
async fn a_flood_of_alternating_anonymous_failures_does_not_push_out_the_owners_events() {
    let app = audited_app().await;
    let csrf = app.setup_and_login().await;
    app.generate_key(&csrf, "deploy-bot", "client", "never")
        .await;
    assert_eq!(app.fresh_login_status(PASSWORD).await, 303);

    flood(&app, 4000, 1000).await;

    let (events, failures) = activity(&app).await;
    for expected in [
        "Dashboard user created",
        "API key created",
        "deploy-bot",
        "Logged in",
    ] {
        assert!(
            events.contains(expected),
            "{expected} is still listed: {events}"
        );
    }
    assert_eq!(rows(&events).len(), 3, "only the owner's events: {events}");
    let failure_rows = rows(&failures);
    assert!(
        failure_rows.len() <= 200 && failure_rows.len() >= 100,
        "failures are bounded: {}",
        failure_rows.len()
    );
    assert!(failures.contains("invalid-api-key"), "{failures}");
    assert!(
        failures.contains("invalid-login") || failures.contains("login-throttled"),
        "{failures}"
    );
}

#[tokio::test]
async fn repeated_failures_from_one_address_are_one_counted_row() {
    let app = audited_app().await;
    app.setup_and_login().await;
    flood(&app, 30, 1).await;
    let (_, failures) = activity(&app).await;
    let rows = rows(&failures);
    let codes: Vec<String> = rows
        .iter()
        .map(|row| extract(row, "badge-denied\">", "<").unwrap())
        .collect();
    let mut distinct = codes.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), codes.len(), "one row per code: {failures}");
    let total: u64 = rows
        .iter()
        .map(|row| extract(row, "data-label=\"Attempts\">", "</td>").unwrap())
        .map(|count| count.parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, 30, "every failure is counted: {failures}");
}

#[tokio::test]
async fn events_show_names_their_own_times_and_survive_a_restart() {
    let mut app = audited_app().await;
    let csrf = app.setup_and_login().await;
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(app.fresh_login_status(PASSWORD).await, 303);
    }
    let key = app.generate_key(&csrf, "laptop", "admin", "30").await;
    let key_id = key.split('_').nth(1).unwrap().to_owned();
    let revoked = app
        .submit(
            &format!("/dashboard/security/keys/{key_id}/revoke"),
            &csrf,
            &[],
        )
        .await;
    assert_eq!(revoked.status(), 303);
    let workspace = tempfile::tempdir().unwrap();
    app.register_workspace_named("payments", workspace.path())
        .await;

    app.restart().await;
    let (events, _) = activity(&app).await;
    let rows = rows(&events);
    let logins: Vec<&&str> = rows.iter().filter(|r| r.contains("Logged in")).collect();
    assert_eq!(logins.len(), 2, "each login is its own row: {events}");
    let time =
        |row: &str| extract(row, "data-label=\"Time (UTC)\" class=\"mono\">", "</td>").unwrap();
    assert_ne!(time(logins[0]), time(logins[1]), "each keeps its own time");
    assert!(logins
        .iter()
        .all(|row| row.contains(&format!("data-label=\"By\">{USERNAME}</td>"))));
    let revoked = rows.iter().find(|r| r.contains("API key revoked")).unwrap();
    assert!(
        revoked.contains("laptop") && revoked.contains(USERNAME),
        "{revoked}"
    );
    let added = rows.iter().find(|r| r.contains("Workspace added")).unwrap();
    assert!(
        added.contains("payments") && added.contains("ADMIN_API_KEY"),
        "{added}"
    );
    let user_id = std::fs::read_to_string(app.data_file("users.json")).unwrap();
    let user_id: serde_json::Value = serde_json::from_str(&user_id).unwrap();
    let user_id = user_id[0]["id"].as_str().unwrap();
    assert!(!events.contains(user_id), "names, not opaque ids");
}

#[tokio::test]
async fn a_scope_edit_is_recorded_whole_so_two_edits_differ_by_their_hourly_limit() {
    let app = audited_app().await;
    app.setup_and_login().await;
    let (_, id) = app
        .create_key(serde_json::json!({
            "name": "a rather long name for the reporting bot of the payments team",
        }))
        .await;
    let allowlist = [
        "203.0.113.0/24",
        "2001:db8:abcd:1234::/64",
        "198.51.100.7/32",
    ];
    for limit in [10, 12] {
        let response = app
            .patch_json(
                &format!("/api/keys/{id}"),
                ADMIN_KEY,
                &serde_json::json!({"allowedIps": allowlist, "hourlyLimit": limit}),
            )
            .await;
        assert_eq!(response.status(), 200);
    }
    let (events, _) = activity(&app).await;
    let edits: Vec<&str> = rows(&events)
        .into_iter()
        .filter(|r| r.contains("API key scope edited"))
        .collect();
    assert_eq!(edits.len(), 2, "{events}");
    assert_ne!(edits[0], edits[1], "the two edits read differently");
    let newest = edits[0];
    assert!(newest.contains("hourly limit 12"), "{newest}");
    assert!(edits[1].contains("hourly limit 10"), "{}", edits[1]);
    assert!(newest.contains(&format!("id {id}")), "{newest}");
    for network in allowlist {
        assert!(newest.contains(network), "{network} missing: {newest}");
    }
}

//! `/metrics`: every family after real traffic, no secret, id or address
//! in any label, and access only for loopback clients or with the token.

use serde_json::json;

use crate::census::registered_routes;
use crate::helpers::{answer_repo, assert_error, spawn_app, TestApp, ADMIN_KEY};

const CLIENT_KEY: &str = "client-key-for-metrics-0123456789";
const METRICS_TOKEN: &str = "metrics-token-0123456789abcdef";

async fn scrape(app: &TestApp, pairs: &[(&str, &str)]) -> reqwest::Response {
    app.fresh().get("/metrics", pairs).await
}

/// Every `name{labels} value` line's label pairs.
fn label_pairs(text: &str) -> Vec<(String, String, String)> {
    let mut pairs = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, rest)) = line.split_once('{') else {
            continue;
        };
        let labels = rest.rsplit_once('}').unwrap().0;
        for pair in labels.split("\",") {
            let (key, value) = pair.split_once("=\"").unwrap();
            pairs.push((
                name.to_owned(),
                key.to_owned(),
                value.trim_end_matches('"').to_owned(),
            ));
        }
    }
    pairs
}

#[tokio::test]
async fn a_scrape_after_traffic_has_every_family_and_no_secret_id_or_address_in_a_label() {
    let app = spawn_app(&[
        ("ADMIN_API_KEY", ADMIN_KEY),
        ("VALID_API_KEYS", CLIENT_KEY),
        ("API_RATE_LIMIT", "40"),
    ])
    .await;
    // A dashboard key: a wrong secret and the right one cost argon2 (cache
    // misses), later checks are cache hits; then it is revoked.
    let response = app
        .post_json("/api/keys", ADMIN_KEY, &json!({"name": "scraped"}))
        .await;
    let created: serde_json::Value = response.json().await.unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["record"]["id"].as_str().unwrap().to_owned();
    let wrong = format!("ptk_{id}_{}", "W".repeat(48));
    assert_eq!(app.me_with_key(&wrong).await.0, 401);
    for _ in 0..3 {
        assert_eq!(app.me_with_key(&key).await.0, 200);
    }
    // The client key's quota of 40 runs out: a rate-limit denial.
    for _ in 0..41 {
        app.me_with_key(CLIENT_KEY).await;
    }
    // A job runs to completion.
    let repo = answer_repo();
    let workspace = app.register_workspace(repo.path()).await;
    let job = app
        .ask(
            ADMIN_KEY,
            json!({"workspaceId": workspace, "question": "token bucket refill"}),
        )
        .await;
    app.wait_for_job(ADMIN_KEY, &job).await;
    // A write that fails.
    portico::store::inject_write_fault(app.data_dir.path(), true);
    let response = app
        .post_json("/api/keys", ADMIN_KEY, &json!({"name": "unsaved"}))
        .await;
    assert_eq!(response.status(), 503);
    portico::store::inject_write_fault(app.data_dir.path(), false);
    let response = app.delete(&format!("/api/keys/{id}"), ADMIN_KEY).await;
    assert_eq!(response.status(), 204);
    app.get("/no/such/page/with-a-secret-like-path", &[]).await;

    let response = scrape(&app, &[]).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().await.unwrap();
    for family in [
        "portico_http_requests_total{route=\"/api/me\",status=\"200\"}",
        "portico_http_requests_total{route=\"/api/keys/{id}\",status=\"204\"}",
        "portico_auth_attempts_total{code=\"allowed\"}",
        "portico_auth_attempts_total{code=\"invalid-api-key\"}",
        "portico_denials_total{reason=\"rate-limited\"}",
        "portico_argon2_verifications_total{outcome=\"match\"}",
        "portico_argon2_verifications_total{outcome=\"mismatch\"}",
        "portico_argon2_verification_seconds_bucket",
        "portico_key_cache_total{result=\"hit\"}",
        "portico_key_cache_total{result=\"miss\"}",
        "portico_jobs{status=\"pending\"}",
        "portico_jobs{status=\"completed\"}",
        "portico_job_duration_seconds_count",
        "portico_store_errors_total",
    ] {
        assert!(text.contains(family), "{family} is missing:\n{text}");
    }

    for secret in [
        key.as_str(),
        id.as_str(),
        ADMIN_KEY,
        CLIENT_KEY,
        "127.0.0.1",
        job.as_str(),
        workspace.as_str(),
        "with-a-secret-like-path",
    ] {
        assert!(!text.contains(secret), "{secret} is in the metrics");
    }
    let routes = registered_routes().await;
    for (name, label, value) in label_pairs(&text) {
        match label.as_str() {
            "route" => assert!(
                value == "unmatched" || routes.contains(&value),
                "{name} has a route label that is not a pattern: {value}"
            ),
            "status" if name == "portico_http_requests_total" => {
                assert!(value.parse::<u16>().is_ok(), "{value}")
            }
            "le" | "quantile" => {}
            "status" | "code" | "reason" | "outcome" | "result" => assert!(
                value.len() <= 20 && value.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{name}{{{label}={value}}} is not a fixed code"
            ),
            other => panic!("{name} has an unexpected label {other}={value}"),
        }
    }
}

#[tokio::test]
async fn metrics_are_refused_to_a_forwarded_outside_client_without_the_token() {
    let app = spawn_app(&[("TRUSTED_PROXIES", "127.0.0.1")]).await;
    let outside = [("x-forwarded-for", "203.0.113.7")];
    let response = scrape(&app, &outside).await;
    let body = assert_error(response, 403, "metrics-forbidden").await;
    assert!(body["error"].as_str().unwrap().contains("METRICS_TOKEN"));
    assert_eq!(
        scrape(&app, &[]).await.status(),
        200,
        "the proxy host itself"
    );
}

#[tokio::test]
async fn an_outside_client_needs_the_right_metrics_token() {
    let app = spawn_app(&[
        ("TRUSTED_PROXIES", "127.0.0.1"),
        ("METRICS_TOKEN", METRICS_TOKEN),
    ])
    .await;
    let outside = ("x-forwarded-for", "203.0.113.7");
    let response = scrape(&app, &[outside]).await;
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_error(response, 401, "invalid-metrics-token").await;
    let wrong = format!("Bearer {METRICS_TOKEN}x");
    let response = scrape(&app, &[outside, ("authorization", &wrong)]).await;
    assert_error(response, 401, "invalid-metrics-token").await;
    let response = scrape(&app, &[outside, ("x-api-key", METRICS_TOKEN)]).await;
    assert_error(response, 401, "invalid-metrics-token").await;
    let right = format!("Bearer {METRICS_TOKEN}");
    let response = scrape(&app, &[outside, ("authorization", &right)]).await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("# TYPE"));
}

#[tokio::test]
async fn a_forwarded_header_from_an_untrusted_peer_does_not_lock_out_a_loopback_client() {
    let app = spawn_app(&[]).await;
    let response = scrape(&app, &[("x-forwarded-for", "203.0.113.7")]).await;
    assert_eq!(
        response.status(),
        200,
        "the header is ignored; the peer is loopback"
    );
}

/// The value of the counter line `series` (`name{labels}`) in a scrape.
fn counter(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn api_requests_are_counted_under_the_route_they_matched_whether_answered_refused_or_the_wrong_method(
) {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let requests = [
        ("GET", "/api/me", Some(ADMIN_KEY), 200, "/api/me"),
        ("GET", "/api/me", None, 401, "/api/me"),
        ("PUT", "/api/me", Some(ADMIN_KEY), 405, "/api/me"),
        (
            "GET",
            "/api/keys/abc",
            Some(ADMIN_KEY),
            405,
            "/api/keys/{id}",
        ),
        (
            "GET",
            "/api/keys/abc/usage",
            Some(ADMIN_KEY),
            404,
            "/api/keys/{id}/usage",
        ),
        ("GET", "/api/jobs/j1", None, 401, "/api/jobs/{id}"),
        ("GET", "/api/openapi.json", None, 200, "/api/openapi.json"),
        ("POST", "/api/docs", None, 405, "/api/docs"),
        (
            "GET",
            "/api/nothing-here",
            Some(ADMIN_KEY),
            404,
            "unmatched",
        ),
    ];
    // The counters are the process's: other tests add to them meanwhile,
    // so each series must have grown by at least this test's requests.
    let before = scrape(&app, &[]).await.text().await.unwrap();
    for (method, path, key, status, _) in requests {
        let mut request = app
            .fresh_client()
            .request(method.parse().unwrap(), app.url(path));
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{method} {path}");
    }
    let text = scrape(&app, &[]).await.text().await.unwrap();
    for (method, path, _, status, route) in requests {
        let series =
            format!("portico_http_requests_total{{route=\"{route}\",status=\"{status}\"}}");
        let expected = requests
            .iter()
            .filter(|(_, _, _, s, r)| *s == status && *r == route)
            .count() as u64;
        let grown = counter(&text, &series) - counter(&before, &series);
        assert!(
            grown >= expected,
            "{method} {path}: {series} grew by {grown}\n{text}"
        );
    }
}

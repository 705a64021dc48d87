use crate::helpers::{assert_error, spawn_app, ADMIN_KEY};

async fn app_with_keys() -> crate::helpers::TestApp {
    spawn_app(&[
        ("ADMIN_API_KEY", ADMIN_KEY),
        ("VALID_API_KEYS", " client-one , ,client-two,,"),
    ])
    .await
}

#[tokio::test]
async fn a_request_without_a_key_is_refused_with_missing_api_key() {
    let app = app_with_keys().await;
    let response = app.me(&[]).await;
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert!(response.headers().get("ratelimit").is_none());
    let body = assert_error(response, 401, "missing-api-key").await;
    assert_eq!(body["error"], "API key is required");
}

#[tokio::test]
async fn an_unknown_key_is_refused_with_invalid_api_key_in_both_header_forms() {
    let app = app_with_keys().await;
    for header in [
        ("x-api-key", "not-a-key"),
        ("authorization", "Bearer not-a-key"),
    ] {
        let response = app.me(&[header]).await;
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let body = assert_error(response, 401, "invalid-api-key").await;
        assert_eq!(body["error"], "Invalid API key");
    }
}

#[tokio::test]
async fn a_basic_authorization_header_offers_no_api_key() {
    let app = app_with_keys().await;
    let basic = format!("Basic {ADMIN_KEY}");
    assert_error(
        app.me(&[("authorization", &basic)]).await,
        401,
        "missing-api-key",
    )
    .await;
}

#[tokio::test]
async fn an_empty_bearer_token_or_key_header_is_an_invalid_key() {
    let app = app_with_keys().await;
    for header in [
        ("authorization", "Bearer"),
        ("authorization", "Bearer   "),
        ("x-api-key", ""),
    ] {
        assert_error(app.me(&[header]).await, 401, "invalid-api-key").await;
    }
}

#[tokio::test]
async fn near_miss_keys_are_refused() {
    let app = app_with_keys().await;
    let mut last_changed = ADMIN_KEY.to_owned();
    last_changed.pop();
    last_changed.push('0');
    let near_misses = [
        ADMIN_KEY[..ADMIN_KEY.len() - 1].to_owned(),
        format!("{ADMIN_KEY}x"),
        ADMIN_KEY.to_uppercase(),
        last_changed,
        "client-on".to_owned(),
        "client-one-".to_owned(),
        "client-one,client-two".to_owned(),
    ];
    for key in near_misses {
        let (status, body) = app.me_with_key(&key).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("invalid-api-key")),
            "{key}"
        );
    }
}

#[tokio::test]
async fn the_admin_key_is_an_admin_principal_in_both_header_forms() {
    let app = app_with_keys().await;
    let bearer = format!("Bearer {ADMIN_KEY}");
    let lower = format!("bearer   {ADMIN_KEY}  ");
    for header in [
        ("x-api-key", ADMIN_KEY),
        ("authorization", &bearer),
        ("authorization", &lower),
    ] {
        let response = app.me(&[header]).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(
            body,
            serde_json::json!({"id": "admin-key", "kind": "admin-key", "name": "ADMIN_API_KEY", "role": "admin",
                "scopes": {"permissions": ["ask", "jobs:read", "workspaces:read", "workspaces:write", "keys:manage"],
                           "workspaces": null}})
        );
    }
}

/// `client-key-` and twelve hex digits of the key's keyed digest.
fn assert_client_id(principal: &serde_json::Value) -> String {
    let id = principal["id"].as_str().unwrap();
    let digest = id.strip_prefix("client-key-").unwrap();
    assert_eq!(digest.len(), 12, "{id}");
    assert!(digest.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    assert_eq!(principal["name"], format!("VALID_API_KEYS key {digest}"));
    assert_eq!(principal["kind"], "client-key");
    assert_eq!(principal["role"], "client");
    id.to_owned()
}

#[tokio::test]
async fn each_valid_api_keys_entry_is_a_client_of_its_own_and_blanks_are_ignored() {
    let app = app_with_keys().await;
    let (status, one) = app.me_with_key("client-one").await;
    assert_eq!(status, 200);
    let (status, two) = app.me_with_key("client-two").await;
    assert_eq!(status, 200);
    assert_ne!(assert_client_id(&one), assert_client_id(&two));
    let (status, _) = app.me_with_key(" ").await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn removing_one_valid_api_keys_entry_changes_no_other_clients_id() {
    let mut app = app_with_keys().await;
    let (_, one) = app.me_with_key("client-one").await;
    let (_, two) = app.me_with_key("client-two").await;
    app.restart_with_vars(&[("VALID_API_KEYS", "client-two")])
        .await;
    let (status, two_alone) = app.me_with_key("client-two").await;
    assert_eq!(status, 200);
    assert_eq!(two_alone["id"], two["id"], "client-two keeps its id");
    let (status, _) = app.me_with_key("client-one").await;
    assert_eq!(status, 401, "the removed key is refused");
    app.restart_with_vars(&[("VALID_API_KEYS", "client-two,client-one")])
        .await;
    assert_eq!(app.me_with_key("client-one").await.1["id"], one["id"]);
    assert_eq!(app.me_with_key("client-two").await.1["id"], two["id"]);
}

#[tokio::test]
async fn x_api_key_wins_when_both_headers_carry_keys() {
    let app = app_with_keys().await;
    let bearer = format!("Bearer {ADMIN_KEY}");
    let response = app
        .me(&[("x-api-key", "client-two"), ("authorization", &bearer)])
        .await;
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["id"], app.me_with_key("client-two").await.1["id"]);

    let response = app
        .me(&[("x-api-key", "wrong"), ("authorization", &bearer)])
        .await;
    assert_error(response, 401, "invalid-api-key").await;
}

#[tokio::test]
async fn a_repeated_key_header_is_refused_as_ambiguous() {
    let app = app_with_keys().await;
    let response = app
        .me(&[("x-api-key", ADMIN_KEY), ("x-api-key", ADMIN_KEY)])
        .await;
    assert_error(response, 401, "invalid-api-key").await;
}

#[tokio::test]
async fn without_any_configured_key_every_key_is_invalid() {
    let app = spawn_app(&[]).await;
    let (status, body) = app.me_with_key("anything").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid-api-key"))
    );
}

#[tokio::test]
async fn unknown_api_routes_are_behind_the_gate() {
    let app = app_with_keys().await;
    assert_error(
        app.get("/api/nothing-here", &[]).await,
        401,
        "missing-api-key",
    )
    .await;
    let response = app
        .get("/api/nothing-here", &[("x-api-key", ADMIN_KEY)])
        .await;
    assert_error(response, 404, "not-found").await;
}

#[tokio::test]
async fn health_needs_no_key_and_reports_the_time() {
    let app = app_with_keys().await;
    let response = app.get("/api/health", &[]).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["ok"], true);
    let timestamp = body["timestamp"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(),
        "{timestamp}"
    );
}

/// Sends a request exactly as given (no client-side normalisation of the
/// path) off the test's runtime; the status and the body.
async fn raw_request(
    app: &crate::helpers::TestApp,
    method: &str,
    target: &str,
    key: Option<&str>,
) -> (u16, String) {
    use std::io::{Read, Write};
    let address = app.address.trim_start_matches("http://").to_owned();
    let key = key
        .map(|key| format!("x-api-key: {key}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {address}\r\n{key}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let response = String::from_utf8_lossy(&response).into_owned();
        let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        (status, body)
    })
    .await
    .unwrap()
}

/// The one `/api` service routes by itself (`src/api/routes.rs`): whatever
/// the path's spelling under `/api` (dot segments, encodings, trailing or
/// doubled slashes, case, a public path with more after it) and whatever
/// the method, no key gets 401; a valid key gets the API's own 404 or 405.
#[tokio::test]
async fn odd_paths_and_methods_under_api_are_behind_the_gate_and_answered_in_the_api_shape() {
    let app = app_with_keys().await;
    let unknown = [
        "/api",
        "/api/",
        "/api//me",
        "/api/me/",
        "/api/ME",
        "/api/me%2F",
        "/api/./me",
        "/api/keys/../me",
        "/api/%2e%2e/api/me",
        "/api/openapi.json/x",
        "/api/docs/",
        "/api/./openapi.json",
        "/api/health/",
        "/api/health/x",
        "/api/{id}",
        "/api/keys/a/b",
    ];
    for path in unknown {
        for method in ["GET", "POST", "HEAD", "OPTIONS", "BREW"] {
            let (status, body) = raw_request(&app, method, path, None).await;
            assert_eq!(status, 401, "{method} {path}");
            if method != "HEAD" {
                assert!(body.contains("missing-api-key"), "{method} {path}: {body}");
            }
            let (status, body) = raw_request(&app, method, path, Some(ADMIN_KEY)).await;
            assert_eq!(status, 404, "{method} {path}");
            if method != "HEAD" {
                assert!(
                    body.contains("\"code\":\"not-found\""),
                    "{method} {path}: {body}"
                );
            }
        }
    }
    // A known route spelled with an encoded letter, and with a method it lacks.
    for (method, path) in [
        ("HEAD", "/api/me"),
        ("OPTIONS", "/api/me"),
        ("BREW", "/api/%6de"),
        ("PUT", "/api/keys/%2F"),
        ("GET", "/api/keys/x%20y/roll"),
    ] {
        let (status, _) = raw_request(&app, method, path, None).await;
        assert_eq!(status, 401, "{method} {path}");
        let (status, body) = raw_request(&app, method, path, Some(ADMIN_KEY)).await;
        assert_eq!(status, 405, "{method} {path}");
        if method != "HEAD" {
            assert!(
                body.contains("method-not-allowed"),
                "{method} {path}: {body}"
            );
        }
    }
    let (status, body) = raw_request(&app, "GET", "/api/%6de", Some(ADMIN_KEY)).await;
    assert_eq!(status, 200);
    assert!(body.contains("admin-key"), "{body}");
}

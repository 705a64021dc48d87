//! Extractor failures and hostile requests get the documented status and
//! error shape, and the server keeps serving.

use std::net::TcpListener;

use actix_web::{web, App, HttpResponse, HttpServer};
use portico::http::json::{extractor_configs, ApiJson};
use portico::http::ApiError;
use reqwest::header::HeaderValue;
use serde::Deserialize;

use crate::helpers::{assert_error, spawn_app, test_client, ADMIN_KEY};

#[derive(Deserialize)]
#[allow(dead_code)]
struct Probe {
    question: String,
    count: Option<u32>,
}

async fn probe(ApiJson(_): ApiJson<Probe>) -> HttpResponse {
    HttpResponse::Ok().finish()
}

async fn failing() -> Result<HttpResponse, ApiError> {
    Err(anyhow::anyhow!("database at /srv/secret/db.sqlite is corrupt").into())
}

/// A server with Portico's extractor configuration and two probe routes.
fn spawn_probe_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(|| {
        App::new()
            .configure(extractor_configs)
            .route("/probe", web::post().to(probe))
            .route("/failing", web::get().to(failing))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    format!("http://127.0.0.1:{port}")
}

async fn post(base: &str, content_type: &str, body: Vec<u8>) -> reqwest::Response {
    test_client()
        .post(format!("{base}/probe"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_413() {
    let base = spawn_probe_server();
    // Valid JSON padded with spaces to exactly `len` bytes.
    let padded = |len: usize| {
        let mut body = br#"{"question":"q"}"#.to_vec();
        body.resize(len, b' ');
        body
    };
    let mebibyte = 1024 * 1024;
    assert_eq!(
        post(&base, "application/json", padded(mebibyte))
            .await
            .status(),
        200,
        "exactly 1 MiB is accepted"
    );
    assert_error(
        post(&base, "application/json", padded(mebibyte + 1)).await,
        413,
        "payload-too-large",
    )
    .await;

    // Streamed without a length: refused once the 1 MiB + 1st byte arrives.
    let mut chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..16).map(|_| Ok(vec![b' '; 64 * 1024])).collect();
    chunks.push(Ok(vec![b' ']));
    let streamed = test_client()
        .post(format!("{base}/probe"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_error(streamed, 413, "payload-too-large").await;
    assert_eq!(
        post(&base, "application/json", br#"{"question":"q"}"#.to_vec())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_body_of_another_content_type_is_415() {
    let base = spawn_probe_server();
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let response = post(&base, content_type, br#"{"question":"q"}"#.to_vec()).await;
        assert_error(response, 415, "unsupported-media-type").await;
    }
}

#[tokio::test]
async fn malformed_json_is_400_with_details() {
    let base = spawn_probe_server();
    let body = assert_error(
        post(&base, "application/json", b"{\"question\": ".to_vec()).await,
        400,
        "invalid-request",
    )
    .await;
    assert!(body["details"]["body"].is_string(), "{body}");
}

#[tokio::test]
async fn invalid_fields_are_named_in_details() {
    let base = spawn_probe_server();
    let body = assert_error(
        post(&base, "application/json", b"{}".to_vec()).await,
        400,
        "invalid-request",
    )
    .await;
    assert!(
        body["details"]["question"]
            .as_str()
            .unwrap()
            .contains("missing field"),
        "{body}"
    );

    let wrong_type = br#"{"question": "q", "count": "three"}"#.to_vec();
    let body = assert_error(
        post(&base, "application/json", wrong_type).await,
        400,
        "invalid-request",
    )
    .await;
    assert!(body["details"]["count"].is_string(), "{body}");
}

#[tokio::test]
async fn an_internal_error_reveals_nothing() {
    let base = spawn_probe_server();
    let response = test_client()
        .get(format!("{base}/failing"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"error": "Internal server error", "code": "internal-error"})
    );
}

#[tokio::test]
async fn non_ascii_key_headers_are_invalid_keys_and_the_server_keeps_serving() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    for raw in [&b"cl\xc3\xa9"[..], b"\xff\xfe", b"key\twith\ttabs"] {
        let response = app
            .client
            .get(app.url("/api/me"))
            .header("x-api-key", HeaderValue::from_bytes(raw).unwrap())
            .send()
            .await
            .unwrap();
        assert_error(response, 401, "invalid-api-key").await;
    }
    assert_eq!(app.me(&[("x-api-key", ADMIN_KEY)]).await.status(), 200);
}

#[tokio::test]
async fn a_key_longer_than_any_key_is_refused_without_a_lookup() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let long = "k".repeat(8 * 1024);
    assert_error(
        app.me(&[("x-api-key", &long)]).await,
        401,
        "invalid-api-key",
    )
    .await;
}

#[tokio::test]
async fn hundred_kilobyte_header_values_get_the_documented_answer_and_the_server_keeps_serving() {
    let app = spawn_app(&[
        ("ADMIN_API_KEY", ADMIN_KEY),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let huge = "k".repeat(100 * 1024);
    assert_error(
        app.me(&[("x-api-key", &huge)]).await,
        401,
        "invalid-api-key",
    )
    .await;
    let bearer = format!("Bearer {huge}");
    assert_error(
        app.me(&[("authorization", &bearer)]).await,
        401,
        "invalid-api-key",
    )
    .await;
    let hops = vec!["198.51.100.1"; 8 * 1024].join(",");
    let response = app
        .me(&[("x-api-key", ADMIN_KEY), ("x-forwarded-for", &hops)])
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.me(&[("x-api-key", ADMIN_KEY)]).await.status(), 200);
}

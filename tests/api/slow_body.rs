//! Slow request bodies (issue 9.5): a client that sends its head and then
//! trickles the body is cut off with 408 and a closed connection within the
//! documented deadline, while other clients are served.

use std::time::{Duration, Instant};

use portico::http::body_deadline::BODY_DEADLINE;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{spawn_app, TestApp, ADMIN_KEY};

/// Sends `head`, then one body byte per second; returns how long until the
/// server closed the connection and everything it sent.
async fn trickle(app: &TestApp, head: String) -> (Duration, String, bool) {
    let address = app.address.trim_start_matches("http://").to_owned();
    let stream = TcpStream::connect(&address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    writer.write_all(head.as_bytes()).await.unwrap();
    let dripping = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if writer.write_all(b"a").await.is_err() {
                return;
            }
        }
    });
    let mut received = Vec::new();
    let read = tokio::time::timeout(BODY_DEADLINE * 3, reader.read_to_end(&mut received)).await;
    dripping.abort();
    (
        started.elapsed(),
        String::from_utf8_lossy(&received).into_owned(),
        read.is_ok(),
    )
}

fn head(app: &TestApp, request_line: &str, extra: &str) -> String {
    let host = app.address.trim_start_matches("http://");
    format!(
        "{request_line}\r\nHost: {host}\r\nOrigin: {}\r\n{extra}\r\n",
        app.address
    )
}

fn assert_cut_off(name: &str, (elapsed, response, closed): &(Duration, String, bool)) {
    assert!(
        closed,
        "{name}: the connection is still open after {elapsed:?}: {response:?}"
    );
    assert!(
        response.starts_with("HTTP/1.1 408"),
        "{name}: got {response:?} after {elapsed:?}"
    );
    assert!(response.contains("request-timeout"), "{name}: {response}");
    assert!(
        *elapsed >= BODY_DEADLINE - Duration::from_secs(1)
            && *elapsed < BODY_DEADLINE + Duration::from_secs(4),
        "{name}: cut off after {elapsed:?}"
    );
}

#[tokio::test]
async fn a_body_trickled_one_byte_a_second_is_cut_off_at_the_deadline_while_others_are_served() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let json = head(
        &app,
        "POST /api/workspaces HTTP/1.1",
        &format!(
            "x-api-key: {ADMIN_KEY}\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n"
        ),
    );
    let form = head(
        &app,
        "POST /setup HTTP/1.1",
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 4000\r\n",
    );
    let chunked = head(
        &app,
        "POST /api/ask HTTP/1.1",
        &format!("x-api-key: {ADMIN_KEY}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"),
    );
    // A route that never reads its body must not drain a trickle forever.
    let ignored = head(
        &app,
        "POST /api/health HTTP/1.1",
        "Transfer-Encoding: chunked\r\n",
    );
    let slow = futures_util::future::join4(
        trickle(&app, json),
        trickle(&app, form),
        trickle(&app, format!("{chunked}fff\r\n")),
        trickle(&app, format!("{ignored}fff\r\n")),
    );
    let normal = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let started = Instant::now();
        let health = app.get("/api/health", &[]).await;
        assert_eq!(health.status(), 200);
        let response = app
            .client
            .post(app.url("/api/workspaces"))
            .header("x-api-key", ADMIN_KEY)
            .json(&serde_json::json!({"name": "w"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            400,
            "a normal body is read and judged at once"
        );
        started.elapsed()
    };
    let ((json, form, chunked, ignored), normal_took) = tokio::join!(slow, normal);
    assert!(
        normal_took < Duration::from_secs(2),
        "normal clients waited {normal_took:?}"
    );
    assert_cut_off("JSON body", &json);
    assert_cut_off("form body", &form);
    assert_cut_off("chunked body", &chunked);
    let (elapsed, response, closed) = ignored;
    assert!(
        closed && elapsed < Duration::from_secs(3),
        "unread body: open after {elapsed:?}"
    );
    assert!(!response.starts_with("HTTP/1.1 408"), "{response}");
}

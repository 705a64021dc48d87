//! `LOG_FORMAT=json`: every line the binary writes is one JSON object.

use crate::helpers::{start_server, ADMIN_KEY};

#[tokio::test]
async fn with_log_format_json_every_log_line_is_one_json_object() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(
        dir.path(),
        &[
            ("BIND", "127.0.0.1:0"),
            ("LOG_FORMAT", "json"),
            ("ADMIN_API_KEY", ADMIN_KEY),
        ],
    );
    let response = server.me(&[("x-api-key", "wrong-key-0123456789")]).await;
    assert_eq!(response.status(), 401);
    let response = server.me(&[("x-api-key", ADMIN_KEY)]).await;
    assert_eq!(response.status(), 200);
    let log = server.drain_log();
    let mut auth_lines = 0;
    for line in log.lines() {
        let event: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("not one JSON object ({err}): {line}"));
        assert!(event["timestamp"].is_string(), "{line}");
        assert!(event["level"].is_string(), "{line}");
        assert!(event["message"].is_string(), "{line}");
        if event["message"] == "authentication attempt" {
            auth_lines += 1;
            assert!(
                event["outcome"].is_string() && event["client"].is_string(),
                "{line}"
            );
            assert_eq!(event["path"], "/api/me");
        }
    }
    assert_eq!(auth_lines, 2, "{log}");
    assert!(!log.contains(ADMIN_KEY), "the key is not logged");
    assert!(log.contains("Portico is listening on"));
}

#[test]
fn an_unknown_log_format_stops_start_up_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let output = crate::helpers::portico_command(
        dir.path(),
        &[("BIND", "127.0.0.1:0"), ("LOG_FORMAT", "xml")],
    )
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("LOG_FORMAT"), "{stderr}");
}

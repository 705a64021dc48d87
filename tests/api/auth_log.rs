//! The authentication line through the real binary: one per attempt, in
//! the documented shape, and silenced by `RUST_LOG` like any other line.

use crate::helpers::{start_server, ADMIN_KEY};

/// The `portico::auth` lines of `log`, without their timestamps.
fn auth_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|line| line.contains(" portico::auth: "))
        .map(|line| &line[27..])
        .collect()
}

#[tokio::test]
async fn each_attempt_logs_one_text_line_naming_outcome_principal_client_method_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(
        dir.path(),
        &[("BIND", "127.0.0.1:0"), ("ADMIN_API_KEY", ADMIN_KEY)],
    );
    let response = server.me(&[("x-api-key", ADMIN_KEY)]).await;
    assert_eq!(response.status(), 200);
    let response = server.me(&[("x-api-key", "wrong-key-0123456789")]).await;
    assert_eq!(response.status(), 401);
    let log = server.drain_log();
    assert_eq!(
        auth_lines(&log),
        [
            "  INFO portico::auth: authentication attempt outcome=allowed principal=admin-key client=127.0.0.1 method=GET path=/api/me",
            "  INFO portico::auth: authentication attempt outcome=denied code=invalid-api-key client=127.0.0.1 method=GET path=/api/me",
        ],
        "{log}"
    );
    assert!(!log.contains(ADMIN_KEY), "the key is not logged");
}

#[tokio::test]
async fn rust_log_silences_the_authentication_line_and_keeps_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(
        dir.path(),
        &[
            ("BIND", "127.0.0.1:0"),
            ("ADMIN_API_KEY", ADMIN_KEY),
            ("RUST_LOG", "info,portico::auth=warn"),
        ],
    );
    for key in [ADMIN_KEY, "wrong-key-0123456789"] {
        server.me(&[("x-api-key", key)]).await;
    }
    let log = server.drain_log();
    assert!(auth_lines(&log).is_empty(), "{log}");
    assert!(log.contains("Portico is listening on"), "{log}");
}

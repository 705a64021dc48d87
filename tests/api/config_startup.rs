//! The real binary: bad settings stop it with exit code 2, a data directory
//! serves one server at a time, and secrets stay out of its output.

use std::collections::HashMap;
use std::time::Duration;

use portico::config::Settings;

use crate::helpers::{run_to_exit, start_server, ADMIN_KEY};

#[test]
fn each_bad_setting_stops_start_up_with_exit_code_2_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("API_RATE_LIMIT", "abc", "'abc'"),
        ("API_RATE_LIMIT", "0", "positive"),
        ("ALLOWED_IPS", "10.0.0.0/33", "entry 1 ('10.0.0.0/33')"),
        ("ALLOWED_IPS", "1.2.3.4,,bogus", "entry 2 is empty"),
        ("TRUSTED_PROXIES", "not-an-ip", "entry 1 ('not-an-ip')"),
        ("BIND", "localhost", "'localhost'"),
        ("JOB_CONCURRENCY", "-1", "'-1'"),
        ("ASK_TIMEOUT_SECS", "soon", "'soon'"),
        ("PUBLIC_URL", "ftp://example.com", "http"),
        ("RUST_LOG", "info,[[", "RUST_LOG"),
    ];
    for (variable, value, hint) in cases {
        let (code, stderr) = run_to_exit(dir.path(), &[(variable, value)]);
        assert_eq!(code, Some(2), "{variable}={value}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(variable), "{variable}={value}: {stderr}");
        assert!(stderr.contains(hint), "{variable}={value}: {stderr}");
    }
}

#[test]
fn a_bad_secret_is_reported_by_position_never_by_value() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("SESSION_SECRET", "hunter2-hunter2-hunter2"),
        ("VALID_API_KEYS", "good-key,sécret-clé-à-moi"),
        ("ADMIN_API_KEY", "admin key with spaces"),
    ];
    for (variable, value) in cases {
        let (code, stderr) = run_to_exit(dir.path(), &[(variable, value)]);
        assert_eq!(code, Some(2), "{variable}: {stderr}");
        assert!(stderr.contains(variable), "{stderr}");
        for word in value
            .split([',', ' '])
            .filter(|w| w.len() > 3 && *w != "good-key")
        {
            assert!(!stderr.contains(word), "{variable} leaked in: {stderr}");
        }
    }
}

#[test]
fn env_local_is_read_and_the_real_environment_wins() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env.local"), "API_RATE_LIMIT=abc\n").unwrap();
    let (code, stderr) = run_to_exit(dir.path(), &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("API_RATE_LIMIT"));

    std::fs::write(dir.path().join(".env.local"), "ALLOWED_IPS=bogus\n").unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "ALLOWED_IPS=127.0.0.1\nTRUSTED_PROXIES=bogus\n",
    )
    .unwrap();
    let (code, stderr) = run_to_exit(dir.path(), &[("TRUSTED_PROXIES", "127.0.0.1")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("ALLOWED_IPS"),
        ".env.local overrides .env: {stderr}"
    );

    let server = start_server(
        dir.path(),
        &[
            ("ALLOWED_IPS", "*"),
            ("TRUSTED_PROXIES", "127.0.0.1"),
            ("BIND", "127.0.0.1:0"),
        ],
    );
    assert!(server.address.starts_with("http://127.0.0.1:"));
}

#[test]
fn the_defaults_serve_loopback_port_3000_from_workspaces() {
    let settings = Settings::from_vars(&HashMap::new()).unwrap();
    assert_eq!(settings.bind.to_string(), "127.0.0.1:3000");
    assert_eq!(settings.data_dir, std::path::PathBuf::from("./workspaces"));
    assert_eq!(settings.api_rate_limit.get(), 100);
    assert_eq!(settings.public_url.origin(), "http://127.0.0.1:3000");
    assert_eq!(settings.ask_timeout, Duration::from_secs(600));
    assert_eq!(settings.job_concurrency.get(), 1);
    assert!(settings.allowed_ips.allows_all());
    assert!(settings.trusted_proxies.is_empty());
}

#[tokio::test]
async fn a_bare_start_creates_the_data_dir_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), &[("BIND", "127.0.0.1:0")]);
    assert!(dir.path().join("workspaces").is_dir());
    let response = server.get("/api/health", &[]).await;
    assert_eq!(response.status(), 200);
}

#[test]
fn a_second_server_on_the_same_data_dir_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let _first = start_server(dir.path(), &[("BIND", "127.0.0.1:0")]);
    let (code, stderr) = run_to_exit(dir.path(), &[("BIND", "127.0.0.1:0")]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("already using the data directory"),
        "{stderr}"
    );
}

#[tokio::test]
async fn keys_never_appear_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let client_key = "client-key-that-must-stay-secret-42";
    let server = start_server(
        dir.path(),
        &[
            ("BIND", "127.0.0.1:0"),
            ("ADMIN_API_KEY", ADMIN_KEY),
            ("VALID_API_KEYS", client_key),
            ("RUST_LOG", "trace"),
        ],
    );
    let wrong_key = "wrong-key-that-must-stay-secret-43";
    for key in [ADMIN_KEY, client_key, wrong_key] {
        server
            .me(&[("authorization", &format!("Bearer {key}"))])
            .await;
    }
    let log = server.drain_log();
    assert!(log.contains("authentication attempt"), "{log}");
    assert!(
        log.contains("admin-key") && log.contains("invalid-api-key"),
        "{log}"
    );
    for key in [ADMIN_KEY, client_key, wrong_key] {
        assert!(!log.contains(key), "the log holds a key");
    }
}

#[test]
fn a_short_admin_key_draws_a_warning_without_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(
        dir.path(),
        &[
            ("BIND", "127.0.0.1:0"),
            ("ADMIN_API_KEY", "short-admin-key"),
        ],
    );
    let log = server.drain_log();
    assert!(
        log.contains("ADMIN_API_KEY is shorter than 32 characters"),
        "{log}"
    );
    assert!(!log.contains("short-admin-key"), "{log}");
}

#[test]
fn secrets_never_show_in_debug_output() {
    let secrets = [
        ("ADMIN_API_KEY", "admin-secret-value-0123456789abcdef"),
        (
            "VALID_API_KEYS",
            "client-secret-value-1,client-secret-value-2",
        ),
        (
            "SESSION_SECRET",
            "session-secret-value-session-secret-value-session-secret-value-0123",
        ),
        ("INITIAL_SETUP_TOKEN", "setup-secret-value"),
    ];
    let vars: HashMap<String, String> = secrets
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let settings = Settings::from_vars(&vars).unwrap();
    let printed = format!("{settings:?}");
    for (_, value) in secrets {
        for part in value.split(',') {
            assert!(!printed.contains(part), "Debug shows {part}");
        }
    }
    let key = portico::auth::api_key::ApiKey::parse("presented-key-value").unwrap();
    assert!(!format!("{key:?}").contains("presented-key-value"));
}

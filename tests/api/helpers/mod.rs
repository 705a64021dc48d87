//! Test helpers. Every test talks to Portico through one `TestClient`
//! (client.rs for pages and forms, api.rs for the API); the in-process `TestApp` (app.rs) and the spawned binary
//! `RunningServer` (server.rs) both dereference to it, so login, CSRF forms,
//! keys, API calls, questions and job waits are written once.

mod api;
mod app;
mod client;
mod raw;
mod redis;
mod repo;
mod server;

pub use api::{eventually, status_and_json};
pub use app::{
    spawn_app, spawn_app_on, spawn_app_with_jobs_by_hand, spawn_app_with_limits, TestApp,
};
pub use client::{test_client, TestClient};
pub use raw::{raw_form, raw_request, simultaneously, simultaneously_at, RawAnswer};
pub use redis::TestRedis;
pub use repo::{answer_repo, git};
pub use server::{
    launch_server, portico_command, run_cli, run_to_exit, server_vars, start_server,
    start_server_with_args, LaunchedServer, RunningServer,
};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

pub const ADMIN_KEY: &str = "admin-0123456789abcdef0123456789abcdef";

pub const SETUP_TOKEN: &str = "test-setup-token-0123456789";
pub const USERNAME: &str = "owner";
pub const PASSWORD: &str = "correct horse battery staple";

/// The CSRF token of a logged-in page.
pub fn csrf_in(html: &str) -> String {
    extract(html, "name=\"csrf_token\" value=\"", "\"").expect("a CSRF token")
}

/// The text between `start` and the next `end`.
pub fn extract(html: &str, start: &str, end: &str) -> Option<String> {
    let from = html.find(start)? + start.len();
    let len = html[from..].find(end)?;
    Some(html[from..from + len].to_owned())
}

/// The first `ptk_<id>_<secret>` on a page.
pub fn find_key(html: &str) -> Option<String> {
    let start = html.find("ptk_")?;
    let key: String = html[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (key.len() > 50).then_some(key)
}

pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

/// The `Retry-After` of a refused answer, in seconds.
pub fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After is a whole number of seconds")
}

/// Asserts the SPEC §4 error shape and returns the body.
pub async fn assert_error(
    response: reqwest::Response,
    status: u16,
    code: &str,
) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status, "status for {code}");
    let body: serde_json::Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["code"], code, "body: {body}");
    assert!(body["error"].is_string(), "body: {body}");
    body
}

/// The setup form creating the owner with `token`.
pub fn setup_fields(token: &str) -> [(&'static str, &str); 4] {
    setup_fields_with(token, PASSWORD)
}

/// The setup form creating the owner with `token` and `password`.
pub fn setup_fields_with<'a>(token: &'a str, password: &'a str) -> [(&'static str, &'a str); 4] {
    [
        ("token", token),
        ("username", USERNAME),
        ("password", password),
        ("confirm", password),
    ]
}

/// A process's output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The Unix permission bits of `path`.
pub fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The port of `http://host:port`.
pub fn port_of(address: &str) -> u16 {
    address.rsplit(':').next().unwrap().parse().unwrap()
}

/// The TOTP code (RFC 6238: SHA-1, 6 digits, 30 s) of the base32 `secret`
/// at `unix_time`, computed independently of Portico's own code path.
pub fn totp_code(secret: &str, unix_time: u64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret).expect("a base32 secret");
    totp_rs::Builder::new()
        .with_secret(secret)
        .with_account_name("test")
        .build()
        .expect("a valid TOTP")
        .generate(unix_time)
        .to_string()
}

/// The TOTP code `steps` time steps from now.
pub fn totp_code_in(secret: &str, steps: i64) -> String {
    let now = chrono::Utc::now().timestamp() + steps * 30;
    totp_code(secret, u64::try_from(now).unwrap())
}

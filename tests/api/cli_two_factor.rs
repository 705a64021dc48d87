//! `portico user disable-2fa`, run as the real binary: the way back for a
//! lost device turns two-factor login off and ends the user's sessions,
//! and refuses while a server holds the data directory.

use std::process::Output;

use crate::helpers::{
    csrf_at, extract, portico_command, start_server, test_client, totp_code_in, PASSWORD,
    SETUP_TOKEN, USERNAME,
};

fn run(dir: &std::path::Path, vars: &[(&str, &str)], args: &[&str]) -> Output {
    portico_command(dir, vars)
        .args(args)
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Where a fresh password login of the owner is sent.
async fn login_location(base: &str) -> String {
    let response = test_client()
        .post(format!("{base}/login"))
        .header("origin", base)
        .form(&[("username", USERNAME), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    response.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn disable_2fa_turns_two_factor_off_and_ends_the_users_sessions() {
    let cwd = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().display().to_string();
    let vars = [
        ("BIND", "127.0.0.1:0"),
        ("DATA_DIR", data_dir.as_str()),
        ("INITIAL_SETUP_TOKEN", SETUP_TOKEN),
    ];
    let server = start_server(cwd.path(), &vars);
    let base = server.address.clone();
    let browser = server.setup(&base, PASSWORD).await;
    let csrf = csrf_at(&browser, &base).await;
    let start = browser
        .post(format!("{base}/dashboard/security/two-factor/start"))
        .header("origin", &base)
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    let page = start.text().await.unwrap();
    let secret = extract(&page, "id=\"totp-secret\">", "</code>").expect("the secret is shown");
    let enabled = browser
        .post(format!("{base}/dashboard/security/two-factor/enable"))
        .header("origin", &base)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("code", &totp_code_in(&secret, 0)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(enabled.status(), 200);
    assert_eq!(login_location(&base).await, "/login/code", "2FA is on");

    let refused = run(cwd.path(), &vars, &["user", "disable-2fa", USERNAME]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("stop it first"),
        "{}",
        text(&refused.stderr)
    );
    drop(server);

    let unknown = run(cwd.path(), &vars, &["user", "disable-2fa", "nobody"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(text(&unknown.stderr).contains("no user named 'nobody'"));

    let disabled = run(cwd.path(), &vars, &["user", "disable-2fa", USERNAME]);
    assert!(disabled.status.success(), "{}", text(&disabled.stderr));
    let stdout = text(&disabled.stdout);
    assert!(
        stdout.contains("is off") && stdout.contains("2 session(s) ended"),
        "{stdout}"
    );

    let server = start_server(cwd.path(), &vars);
    let base = server.address.clone();
    let old_session = browser
        .get(format!("{base}/dashboard"))
        .send()
        .await
        .unwrap();
    assert_eq!(old_session.status(), 303, "the old session is over");
    assert_eq!(login_location(&base).await, "/dashboard", "no second step");
}

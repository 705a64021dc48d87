//! `portico user disable-2fa`, run as the real binary: the way back for a
//! lost device turns two-factor login off and ends the user's sessions,
//! and refuses while a server holds the data directory.

use crate::helpers::{run_cli, server_vars, start_server, text, TestClient, PASSWORD, USERNAME};
use crate::two_factor::enrol;

/// Where a fresh password login of the owner is sent.
async fn login_location(server: &TestClient) -> String {
    let response = server.fresh().login(USERNAME, PASSWORD).await;
    assert_eq!(response.status(), 303);
    response.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn disable_2fa_turns_two_factor_off_and_ends_the_users_sessions() {
    let cwd = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().display().to_string();
    let vars = server_vars(&data_dir);
    let server = start_server(cwd.path(), &vars);
    let browser = server.http.clone();
    browser.setup_and_login().await;
    enrol(&browser).await;
    assert_eq!(login_location(&server).await, "/login/code", "2FA is on");

    let refused = run_cli(cwd.path(), &vars, &["user", "disable-2fa", USERNAME], "");
    assert_eq!(refused.status.code(), Some(1));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("stop it first") && stderr.contains("turn two-factor login off"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("change the password"),
        "a lost device is not helped by a password change: {stderr}"
    );
    drop(server);

    let unknown = run_cli(cwd.path(), &vars, &["user", "disable-2fa", "nobody"], "");
    assert_eq!(unknown.status.code(), Some(1));
    assert!(text(&unknown.stderr).contains("no user named 'nobody'"));

    let disabled = run_cli(cwd.path(), &vars, &["user", "disable-2fa", USERNAME], "");
    assert!(disabled.status.success(), "{}", text(&disabled.stderr));
    let stdout = text(&disabled.stdout);
    assert!(
        stdout.contains("is off") && stdout.contains("2 session(s) ended"),
        "{stdout}"
    );

    let server = start_server(cwd.path(), &vars);
    let old_session = browser.at(&server.address).get("/dashboard", &[]).await;
    assert_eq!(old_session.status(), 303, "the old session is over");
    assert_eq!(
        login_location(&server).await,
        "/dashboard",
        "no second step"
    );
}

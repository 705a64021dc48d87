//! The command line (SPEC §1.2), run as the real binary: `--help` touches
//! nothing, `user reset-password` is the way back in, `healthcheck` tells a
//! container runtime whether the server answers.

use crate::helpers::{
    run_cli, server_vars, start_server, start_server_with_args, text, TestClient, PASSWORD,
    USERNAME,
};

const NEW_PASSWORD: &str = "a brand new password 42";

#[test]
fn help_and_version_print_and_exit_without_creating_any_file() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["-h"],
        &["--version"],
        &["user", "--help"],
        &["user", "reset-password", "--help"],
        &["help", "healthcheck"],
    ] {
        let output = run_cli(dir.path(), &[], args, "");
        assert!(
            output.status.success(),
            "{args:?}: {}",
            text(&output.stderr)
        );
        let stdout = text(&output.stdout);
        assert!(!stdout.trim().is_empty(), "{args:?} prints");
        assert!(!stdout.contains("listening"), "{args:?} served: {stdout}");
    }
    assert!(text(&run_cli(dir.path(), &[], &["--version"], "").stdout).starts_with("portico "));
    let help = text(&run_cli(dir.path(), &[], &["--help"], "").stdout);
    for command in ["serve", "user", "healthcheck"] {
        assert!(help.contains(command), "{help}");
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "files were created: {left:?}");
}

#[test]
fn an_unknown_command_is_an_error_that_creates_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_cli(dir.path(), &[], &["sevre"], "");
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("sevre"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// The dashboard's status for a new browser sending `cookie`.
async fn dashboard_status(server: &TestClient, cookie: &str) -> u16 {
    let page = server
        .fresh()
        .get("/dashboard", &[("cookie", cookie)])
        .await;
    page.status().as_u16()
}

#[tokio::test]
async fn reset_password_unlocks_a_locked_out_user_and_ends_their_sessions() {
    let cwd = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().display().to_string();
    let vars = server_vars(&data_dir);
    let server = start_server(cwd.path(), &vars);
    let setup = server.fresh().setup().await;
    assert_eq!(setup.status(), 303);
    let cookie = setup.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(dashboard_status(&server, &cookie).await, 200);
    for _ in 0..5 {
        assert_eq!(
            server.fresh_login_status("not the password at all").await,
            401
        );
    }
    assert_eq!(server.fresh_login_status(PASSWORD).await, 429, "locked out");

    let refused = run_cli(
        cwd.path(),
        &vars,
        &["user", "reset-password", USERNAME, "--password-stdin"],
        &format!("{NEW_PASSWORD}\n"),
    );
    assert_eq!(refused.status.code(), Some(1));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("stop it first") && stderr.contains("Account Security"),
        "{stderr}"
    );
    drop(server);

    let unknown = run_cli(
        cwd.path(),
        &vars,
        &["user", "reset-password", "nobody", "--password-stdin"],
        &format!("{NEW_PASSWORD}\n"),
    );
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        text(&unknown.stderr).contains("users are: owner"),
        "{}",
        text(&unknown.stderr)
    );
    let short = run_cli(
        cwd.path(),
        &vars,
        &["user", "reset-password", USERNAME, "--password-stdin"],
        "short\n",
    );
    assert_eq!(short.status.code(), Some(1));
    assert!(
        text(&short.stderr).contains("12"),
        "{}",
        text(&short.stderr)
    );

    let reset = run_cli(
        cwd.path(),
        &vars,
        &["user", "reset-password", USERNAME, "--password-stdin"],
        &format!("{NEW_PASSWORD}\n"),
    );
    assert!(reset.status.success(), "{}", text(&reset.stderr));
    let stdout = text(&reset.stdout);
    assert!(stdout.contains("1 session(s) ended"), "{stdout}");
    assert!(!stdout.contains(NEW_PASSWORD) && !text(&reset.stderr).contains(NEW_PASSWORD));

    let server = start_server(cwd.path(), &vars);
    assert_eq!(
        dashboard_status(&server, &cookie).await,
        303,
        "the old session is over"
    );
    assert_eq!(
        server.fresh_login_status(PASSWORD).await,
        401,
        "the old password is gone"
    );
    assert_eq!(
        server.fresh_login_status(NEW_PASSWORD).await,
        303,
        "the new one works"
    );
}

#[test]
fn reset_password_before_setup_says_there_is_no_user_yet() {
    let cwd = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().display().to_string();
    let vars = [("DATA_DIR", data_dir.as_str())];
    let output = run_cli(cwd.path(), &vars, &["user", "reset-password", USERNAME], "");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("no dashboard user"),
        "{}",
        text(&output.stderr)
    );
}

#[tokio::test]
async fn healthcheck_exits_0_while_the_server_answers_and_1_when_it_is_gone() {
    let cwd = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().display().to_string();
    let server = start_server(
        cwd.path(),
        &[("BIND", "127.0.0.1:0"), ("DATA_DIR", data_dir.as_str())],
    );
    let bind = server.address.trim_start_matches("http://").to_owned();
    let healthy = run_cli(cwd.path(), &[("BIND", bind.as_str())], &["healthcheck"], "");
    assert!(healthy.status.success(), "{}", text(&healthy.stderr));
    drop(server);
    let gone = run_cli(cwd.path(), &[("BIND", bind.as_str())], &["healthcheck"], "");
    assert_eq!(gone.status.code(), Some(1));
    assert!(
        text(&gone.stderr).contains("unhealthy"),
        "{}",
        text(&gone.stderr)
    );
}

#[tokio::test]
async fn serve_runs_the_server_like_no_command_at_all() {
    let cwd = tempfile::tempdir().unwrap();
    let server = start_server_with_args(cwd.path(), &[("BIND", "127.0.0.1:0")], &["serve"]);
    let health = server.get("/api/health", &[]).await;
    assert_eq!(health.status(), 200);
    assert!(
        cwd.path().join("workspaces").is_dir(),
        "the default data dir"
    );
}

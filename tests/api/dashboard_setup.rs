//! First-run setup, login, logout and the life of a session.

use crate::helpers::{
    assert_error, mode, setup_fields, spawn_app, start_server, PASSWORD, SETUP_TOKEN, USERNAME,
};

#[tokio::test]
async fn setup_needs_the_right_token_and_happens_only_once() {
    let app = spawn_app(&[]).await;
    assert_eq!(app.get("/", &[]).await.headers()["location"], "/setup");
    let (status, html) = app.page(&format!("/setup?token={SETUP_TOKEN}")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains(SETUP_TOKEN),
        "the token from the URL is filled in"
    );

    let wrong = app.post_form("/setup", &setup_fields("wrong")).await;
    assert_eq!(wrong.status(), 403);
    assert!(!app.data_file("users.json").exists());

    let created = app.setup().await;
    assert_eq!(created.status(), 303);
    assert_eq!(created.headers()["location"], "/dashboard");

    let users = std::fs::read_to_string(app.data_file("users.json")).unwrap();
    assert!(users.contains("$argon2id$"), "{users}");
    assert!(!users.contains(PASSWORD));
    assert_eq!(mode(&app.data_file("users.json")), 0o600);

    assert_eq!(app.page("/setup").await.0, 404);
    let again = app
        .fresh()
        .post_form(
            "/setup",
            &[
                ("token", SETUP_TOKEN),
                ("username", "intruder"),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(again.status(), 404);
    assert!(!std::fs::read_to_string(app.data_file("users.json"))
        .unwrap()
        .contains("intruder"));
}

#[tokio::test]
async fn setup_refuses_short_or_mismatched_passwords() {
    let app = spawn_app(&[]).await;
    for (password, confirm) in [
        ("elevenchars", "elevenchars"),
        (PASSWORD, "something else entirely"),
    ] {
        let response = app
            .post_form(
                "/setup",
                &[
                    ("token", SETUP_TOKEN),
                    ("username", USERNAME),
                    ("password", password),
                    ("confirm", confirm),
                ],
            )
            .await;
        assert_eq!(response.status(), 400);
    }
    assert!(!app.data_file("users.json").exists());
}

#[tokio::test]
async fn without_a_configured_token_the_setup_url_is_printed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), &[("BIND", "127.0.0.1:0")]);
    let log = server.drain_log();
    let url = log
        .lines()
        .find_map(|line| line.split("Create it at ").nth(1))
        .expect("the setup URL is logged")
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert!(
        url.starts_with(&format!("{}/setup?token=", server.address)),
        "{url}"
    );
    let token = url.split("token=").nth(1).unwrap();
    assert!(token.len() >= 32);

    let response = server.post_form("/setup", &setup_fields(token)).await;
    assert_eq!(response.status(), 303);
}

#[tokio::test]
async fn pages_need_a_login() {
    let app = spawn_app(&[]).await;
    assert_eq!(app.setup().await.status(), 303, "setup succeeds");
    let anonymous = app.fresh();
    for path in ["/dashboard", "/dashboard/security", "/dashboard/nothing"] {
        let response = anonymous.get(path, &[]).await;
        assert_eq!(response.status(), 303, "{path}");
        assert_eq!(response.headers()["location"], "/login", "{path}");
    }
    let post = anonymous
        .post_form(
            "/dashboard/security/keys",
            &[("name", "x"), ("role", "admin"), ("expiry", "never")],
        )
        .await;
    assert_eq!(post.headers()["location"], "/login");
}

#[tokio::test]
async fn login_and_logout() {
    let app = spawn_app(&[]).await;
    app.setup_and_login().await;
    let csrf = app.csrf_token().await;
    let out = app.submit("/logout", &csrf, &[]).await;
    assert_eq!(out.status(), 303);
    assert_eq!(out.headers()["location"], "/login?notice=logged-out");
    assert_eq!(
        app.get("/dashboard", &[]).await.headers()["location"],
        "/login"
    );

    let wrong = app.login(USERNAME, "not the password at all").await;
    assert_eq!(wrong.status(), 401);
    let right = app.login(USERNAME, PASSWORD).await;
    assert_eq!(right.status(), 303);
    assert_eq!(right.headers()["location"], "/dashboard");
    let (status, html) = app.page("/dashboard").await;
    assert_eq!(status, 200);
    assert!(html.contains(USERNAME));
}

#[tokio::test]
async fn session_cookies_are_httponly_strict_and_secure_only_over_https() {
    let app = spawn_app(&[]).await;
    let response = app.setup().await;
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("portico_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "{cookie}");

    let app = spawn_app(&[("PUBLIC_URL", "https://portico.example.com")]).await;
    let response = app
        .client
        .post(app.url("/setup"))
        .header("host", "portico.example.com")
        .header("origin", "https://portico.example.com")
        .form(&setup_fields(SETUP_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn the_session_id_changes_at_login_and_the_old_one_is_dead() {
    let app = spawn_app(&[]).await;
    app.setup_and_login().await;
    let first = app.session_cookie().unwrap();
    assert_eq!(
        app.login(USERNAME, PASSWORD).await.status(),
        303,
        "logged in"
    );
    let second = app.session_cookie().unwrap();
    assert_ne!(first, second);

    let replay = app.fresh().get("/dashboard", &[("cookie", &first)]).await;
    assert_eq!(replay.headers()["location"], "/login");
}

async fn replay_is_refused(app: &crate::helpers::TestApp, cookie: &str) {
    let browser = app.fresh();
    let page = browser.get("/dashboard", &[("cookie", cookie)]).await;
    assert_eq!(page.status(), 303);
    assert_eq!(page.headers()["location"], "/login");
    let api = browser.me(&[("cookie", cookie)]).await;
    assert_error(api, 401, "missing-api-key").await;
}

#[tokio::test]
async fn a_copied_cookie_is_useless_after_logout() {
    let app = spawn_app(&[]).await;
    let csrf = app.setup_and_login().await;
    let copied = app.session_cookie().unwrap();
    let api = app.fresh().me(&[("cookie", &copied)]).await;
    assert_eq!(api.status(), 200, "the copy works while the session lives");

    let logout = app.submit("/logout", &csrf, &[]).await;
    assert_eq!(logout.status(), 303, "logged out");
    replay_is_refused(&app, &copied).await;
}

#[tokio::test]
async fn a_password_change_ends_every_session() {
    let app = spawn_app(&[]).await;
    let csrf = app.setup_and_login().await;
    let copied = app.session_cookie().unwrap();
    let other_browser = app.fresh();
    let login = other_browser.login(USERNAME, PASSWORD).await;
    assert_eq!(login.status(), 303, "a second browser logs in");
    assert_eq!(other_browser.get("/dashboard", &[]).await.status(), 200);
    let new_password = "a brand new password 42";
    let response = app
        .submit(
            "/dashboard/security/password",
            &csrf,
            &[
                ("current", PASSWORD),
                ("new", new_password),
                ("confirm", new_password),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "/login?notice=password-changed"
    );
    replay_is_refused(&app, &copied).await;
    assert_eq!(app.get("/dashboard", &[]).await.status(), 303);
    let elsewhere = other_browser.get("/dashboard", &[]).await;
    assert_eq!(
        elsewhere.status(),
        303,
        "the other browser's session ended too"
    );
    assert_eq!(elsewhere.headers()["location"], "/login");

    assert_eq!(app.login(USERNAME, PASSWORD).await.status(), 401);
    assert_eq!(app.login(USERNAME, new_password).await.status(), 303);
}

#[tokio::test]
async fn a_wrong_current_password_changes_nothing() {
    let app = spawn_app(&[]).await;
    let csrf = app.setup_and_login().await;
    let response = app
        .submit(
            "/dashboard/security/password",
            &csrf,
            &[
                ("current", "not my password"),
                ("new", "another long password"),
                ("confirm", "another long password"),
            ],
        )
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(app.page("/dashboard").await.0, 200, "still logged in");
    assert_eq!(app.fresh_login_status(PASSWORD).await, 303);
}

#[tokio::test]
async fn sessions_survive_a_restart() {
    let mut app = spawn_app(&[]).await;
    app.setup_and_login().await;
    app.restart().await;
    assert_eq!(app.page("/dashboard").await.0, 200);
}

/// Rewrites every stored session's state entry `key` (or its expiry).
fn edit_sessions(app: &crate::helpers::TestApp, edit: impl Fn(&mut serde_json::Value)) {
    let path = app.data_file("sessions.json");
    let mut sessions: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for session in sessions.as_object_mut().unwrap().values_mut() {
        edit(session);
    }
    std::fs::write(&path, serde_json::to_vec(&sessions).unwrap()).unwrap();
}

#[tokio::test]
async fn an_idle_session_expires() {
    let mut app = spawn_app(&[]).await;
    app.setup_and_login().await;
    app.restart_with(|app| {
        edit_sessions(app, |session| {
            session["expiresAt"] =
                serde_json::json!((chrono::Utc::now() - chrono::Duration::seconds(1)).to_rfc3339());
        })
    })
    .await;
    assert_eq!(
        app.get("/dashboard", &[]).await.headers()["location"],
        "/login"
    );
}

#[tokio::test]
async fn a_session_ends_twelve_hours_after_login_however_busy() {
    let mut app = spawn_app(&[]).await;
    app.setup_and_login().await;
    app.restart_with(|app| {
        let thirteen_hours_ago = (chrono::Utc::now() - chrono::Duration::hours(13)).timestamp();
        edit_sessions(app, |session| {
            session["state"]["actix_identity.logged_in_at"] =
                serde_json::json!(thirteen_hours_ago.to_string());
        })
    })
    .await;
    assert_eq!(
        app.get("/dashboard", &[]).await.headers()["location"],
        "/login"
    );
}

#[tokio::test]
async fn a_login_from_another_origin_is_refused_with_the_address_to_use() {
    let app = spawn_app(&[]).await;
    assert_eq!(app.setup().await.status(), 303, "setup succeeds");
    let response = app
        .fresh_client()
        .post(app.url("/login"))
        .header("origin", "http://localhost:9999")
        .form(&[("username", USERNAME), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let page = response.text().await.unwrap();
    assert!(
        page.contains(&app.address) && page.contains("PUBLIC_URL"),
        "{page}"
    );
}

#[tokio::test]
async fn a_form_with_missing_fields_gets_a_readable_page() {
    let app = spawn_app(&[]).await;
    assert_eq!(app.setup().await.status(), 303, "setup succeeds");
    let response = app.post_form("/login", &[("username", USERNAME)]).await;
    assert_eq!(response.status(), 400);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("The form could not be read"));
}

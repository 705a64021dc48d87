//! Failed logins: throttled per user name and per address, and an unknown
//! user looks exactly like a wrong password.

use crate::helpers::{spawn_app, PASSWORD, USERNAME};

#[tokio::test]
async fn five_failed_logins_from_an_address_throttle_it() {
    let app = spawn_app(&[("TRUSTED_PROXIES", "127.0.0.1")]).await;
    assert_eq!(app.setup().await.status(), 303, "setup succeeds");
    for _ in 0..5 {
        assert_eq!(
            app.login_from("198.51.100.1", USERNAME, "wrong password!")
                .await
                .status(),
            401
        );
    }
    let before = app.hasher.verification_count();
    let throttled = app.login_from("198.51.100.1", USERNAME, PASSWORD).await;
    assert_eq!(throttled.status(), 429);
    assert!(throttled.headers().contains_key("retry-after"));
    let page = throttled.text().await.unwrap();
    assert!(page.contains("Too many failed logins"));
    assert!(
        page.contains("stop Portico and run portico user reset-password &#60;name&#62;")
            && !page.contains('`'),
        "the way out is named as on the login page, without Markdown backticks: {page}"
    );
    assert_eq!(
        app.hasher.verification_count(),
        before,
        "no hashing while throttled"
    );
}

#[tokio::test]
async fn five_failed_logins_for_a_user_throttle_that_user_from_everywhere() {
    let app = spawn_app(&[("TRUSTED_PROXIES", "127.0.0.1")]).await;
    assert_eq!(app.setup().await.status(), 303, "setup succeeds");
    for n in 1..=5 {
        let addr = format!("198.51.100.{n}");
        assert_eq!(
            app.login_from(&addr, USERNAME, "wrong password!")
                .await
                .status(),
            401
        );
    }
    assert_eq!(
        app.login_from("203.0.113.9", USERNAME, PASSWORD)
            .await
            .status(),
        429
    );
    assert_eq!(
        app.login_from("203.0.113.9", "someone-else", "whatever password")
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn an_unknown_user_and_a_wrong_password_get_the_same_answer_for_the_same_work() {
    let app = spawn_app(&[]).await;
    assert_eq!(app.setup().await.status(), 303, "setup succeeds");
    let mut answers = Vec::new();
    for username in [USERNAME, "nobody-here"] {
        let before = app.hasher.verification_count();
        let response = app
            .login_from("127.0.0.1", username, "definitely wrong")
            .await;
        let status = response.status();
        let body = response.text().await.unwrap().replace(username, "USER");
        assert_eq!(
            app.hasher.verification_count() - before,
            1,
            "{username}: one argon2 verification"
        );
        answers.push((status, body));
    }
    assert_eq!(answers[0], answers[1]);
}

async fn change_password(app: &crate::helpers::TestApp, csrf: &str, current: &str) -> u16 {
    let new = "another good password";
    let fields = [
        ("csrf_token", csrf),
        ("current", current),
        ("new", new),
        ("confirm", new),
    ];
    app.post_form("/dashboard/security/password", &fields)
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn wrong_current_passwords_on_the_password_form_are_throttled_too() {
    let app = spawn_app(&[]).await;
    let csrf = app.setup_and_login().await;
    for _ in 0..5 {
        assert_eq!(change_password(&app, &csrf, "not my password").await, 400);
    }
    let before = app.hasher.verification_count();
    assert_eq!(
        change_password(&app, &csrf, PASSWORD).await,
        429,
        "even the right one, once throttled"
    );
    assert_eq!(app.hasher.verification_count(), before);
    assert_eq!(
        app.fresh_login_status(PASSWORD).await,
        429,
        "the user's logins are throttled as well"
    );
}

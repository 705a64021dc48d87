//! Two-factor login over HTTP (SPEC §6.1): enrolment from the secret on
//! the page, the second login step, replays, the throttle, recovery codes,
//! disabling, restarts, storage at rest and the offline way back.

use std::sync::Arc;

use crate::helpers::{
    extract, retry_after, spawn_app, totp_code, totp_code_in, TestApp, TestClient, PASSWORD,
    USERNAME,
};

/// Enables 2FA from the page with the code of the step before the current
/// one (accepted by the one-step skew), so the current step stays unused;
/// returns the base32 secret and the recovery codes.
pub(crate) async fn enrol(app: &TestClient) -> (String, Vec<String>) {
    // Away from a step boundary, so "the step before" means the same to both sides.
    if chrono::Utc::now().timestamp() % 30 >= 27 {
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    }
    let csrf = app.csrf_token().await;
    let start = app
        .submit("/dashboard/security/two-factor/start", &csrf, &[])
        .await;
    assert_eq!(start.status(), 200);
    let page = start.text().await.unwrap();
    let secret = extract(&page, "id=\"totp-secret\">", "</code>").expect("the secret is shown");
    let enabled = app
        .submit(
            "/dashboard/security/two-factor/enable",
            &csrf,
            &[("code", &totp_code_in(&secret, -1))],
        )
        .await;
    assert_eq!(enabled.status(), 200);
    let page = enabled.text().await.unwrap();
    let list = extract(&page, "id=\"recovery-codes\">", "</ul>").expect("recovery codes shown");
    let codes: Vec<String> = list
        .split("<li>")
        .skip(1)
        .map(|item| item.split("</li>").next().unwrap().trim().to_owned())
        .collect();
    (secret, codes)
}

pub(crate) async fn logout(app: &TestClient) {
    let csrf = app.csrf_token().await;
    let response = app.submit("/logout", &csrf, &[]).await;
    assert_eq!(response.status(), 303);
}

/// Enrols, logs out and passes the password step again.
pub(crate) async fn enrolled_at_second_step() -> (TestApp, String, Vec<String>) {
    let app = spawn_app(&[]).await;
    app.setup_and_login().await;
    let (secret, codes) = enrol(&app).await;
    logout(&app).await;
    let login = app.login(USERNAME, PASSWORD).await;
    assert_eq!(login.status(), 303);
    assert_eq!(login.headers()["location"], "/login/code");
    (app, secret, codes)
}

pub(crate) async fn give_code(app: &TestClient, code: &str) -> reqwest::Response {
    app.post_form("/login/code", &[("code", code)]).await
}

#[test]
fn codes_computed_by_the_tests_follow_the_rfc_6238_vectors() {
    // "12345678901234567890" in base32; RFC 6238 appendix B, last six digits.
    let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    for (time, code) in [
        (59, "287082"),
        (1_111_111_109, "081804"),
        (1_111_111_111, "050471"),
        (1_234_567_890, "005924"),
        (2_000_000_000, "279037"),
        (20_000_000_000, "353130"),
    ] {
        assert_eq!(totp_code(secret, time), code, "at {time}");
    }
}

#[tokio::test]
async fn enrolment_shows_an_inline_svg_qr_code_and_turns_on_only_after_a_valid_code() {
    let app = spawn_app(&[]).await;
    let csrf = app.setup_and_login().await;
    let start = app
        .submit("/dashboard/security/two-factor/start", &csrf, &[])
        .await;
    let page = start.text().await.unwrap();
    let qr = extract(&page, "id=\"totp-qr\">", "</figure>").unwrap();
    assert!(
        qr.trim_start().starts_with("<svg") && qr.contains("</svg>"),
        "{qr}"
    );
    assert!(!page.contains("data:"), "no data: URL");
    let secret = extract(&page, "id=\"totp-secret\">", "</code>").unwrap();
    assert_eq!(secret.len(), 32, "160 bits of base32: {secret}");

    let wrong = totp_code_in(&secret, 5);
    let refused = app
        .submit(
            "/dashboard/security/two-factor/enable",
            &csrf,
            &[("code", &wrong)],
        )
        .await;
    assert_eq!(refused.status(), 400);
    assert!(app
        .page("/dashboard/security")
        .await
        .1
        .contains("Enable two-factor login"));
    // A password login still goes straight in.
    assert_eq!(app.fresh_login_status(PASSWORD).await, 303);

    let enabled = app
        .submit(
            "/dashboard/security/two-factor/enable",
            &csrf,
            &[("code", &totp_code_in(&secret, 0))],
        )
        .await;
    assert_eq!(enabled.status(), 200);
    let codes = enabled.text().await.unwrap();
    assert_eq!(codes.matches("<li>").count(), 10, "{codes}");
    let (_, security) = app.page("/dashboard/security").await;
    assert!(security.contains("<strong id=\"recovery-left\">10</strong>"));
}

#[tokio::test]
async fn a_password_only_session_has_no_dashboard_and_gets_401_from_the_api() {
    let (app, _, _) = enrolled_at_second_step().await;
    assert_eq!(app.me(&[]).await.status(), 401);
    let dashboard = app.get("/dashboard", &[]).await;
    assert_eq!(dashboard.status(), 303);
    assert_eq!(dashboard.headers()["location"], "/login");
    let (status, page) = app.page("/login/code").await;
    assert_eq!(status, 200);
    assert!(page.contains("authenticator app"));
}

#[tokio::test]
async fn a_correct_code_logs_in_and_the_same_code_is_refused_the_second_time() {
    let (app, secret, _) = enrolled_at_second_step().await;
    let code = totp_code_in(&secret, 1);
    let accepted = give_code(&app, &code).await;
    assert_eq!(accepted.status(), 303);
    assert_eq!(accepted.headers()["location"], "/dashboard");
    assert_eq!(app.page("/dashboard").await.0, 200);
    assert_eq!(app.me(&[]).await.status(), 200);

    logout(&app).await;
    assert_eq!(app.login(USERNAME, PASSWORD).await.status(), 303);
    let replayed = give_code(&app, &code).await;
    assert_eq!(replayed.status(), 401, "a used code is refused");
    assert_eq!(app.me(&[]).await.status(), 401);
}

#[tokio::test]
async fn a_wrong_code_does_not_log_in() {
    let (app, secret, _) = enrolled_at_second_step().await;
    let current = totp_code_in(&secret, 0);
    let wrong = format!("{:06}", (current.parse::<u32>().unwrap() + 1) % 1_000_000);
    let far = totp_code_in(&secret, 3);
    for code in [wrong.as_str(), far.as_str(), "", "abcdef"] {
        let response = give_code(&app, code).await;
        assert_eq!(response.status(), 401, "{code:?}");
        assert!(response
            .text()
            .await
            .unwrap()
            .contains("wrong or was already used"));
    }
    assert_eq!(app.me(&[]).await.status(), 401);
    assert_eq!(app.get("/dashboard", &[]).await.status(), 303);
}

#[tokio::test]
async fn five_codes_in_fifteen_minutes_lock_the_second_step_even_when_sent_at_once() {
    let (app, secret, _) = enrolled_at_second_step().await;
    let app = Arc::new(app);
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { give_code(&app, "000000").await.status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let checked = statuses.iter().filter(|s| **s != 429).count();
    let locked = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, locked), (5, 195), "{statuses:?}");
    let locked_out = give_code(&app, &totp_code_in(&secret, 1)).await;
    assert_eq!(locked_out.status(), 429, "even the right code waits");
    let retry = retry_after(&locked_out);
    assert!((870..=900).contains(&retry), "{retry}");
    assert_eq!(app.me(&[]).await.status(), 401);
}

#[tokio::test]
async fn two_factor_survives_a_restart_and_its_secret_is_not_stored_in_clear() {
    let (mut app, secret, codes) = enrolled_at_second_step().await;
    let stored = std::fs::read_to_string(app.data_file("users.json")).unwrap();
    assert!(stored.contains("sealedSecret"), "{stored}");
    assert!(!stored.contains(&secret) && !stored.contains(&secret.to_lowercase()));
    for code in &codes {
        assert!(!stored.contains(code.as_str()));
    }
    let sessions = std::fs::read_to_string(app.data_file("sessions.json")).unwrap();
    assert!(!sessions.contains(&secret));

    app.restart().await;
    assert_eq!(
        app.me(&[]).await.status(),
        401,
        "still half-way after restart"
    );
    assert_eq!(
        give_code(&app, &totp_code_in(&secret, 1)).await.status(),
        303
    );
    assert_eq!(app.me(&[]).await.status(), 200);
    let fresh = app.fresh().login(USERNAME, PASSWORD).await;
    assert_eq!(fresh.headers()["location"], "/login/code", "2FA still on");
}

#[tokio::test]
async fn activity_records_enrolment_recovery_codes_failures_and_disabling() {
    let (app, secret, codes) = enrolled_at_second_step().await;
    assert_eq!(give_code(&app, "999999").await.status(), 401);
    assert_eq!(give_code(&app, &codes[0]).await.status(), 303);
    let csrf = app.csrf_token().await;
    app.submit(
        "/dashboard/security/two-factor/disable",
        &csrf,
        &[("password", PASSWORD), ("code", &totp_code_in(&secret, 1))],
    )
    .await;
    let (_, page) = app.page("/dashboard/security").await;
    for event in [
        "Two-factor login enabled",
        "Wrong second-factor code",
        "with a recovery code",
        "Two-factor login disabled",
    ] {
        assert!(page.contains(event), "{event} missing");
    }
}

#[tokio::test]
async fn the_second_step_without_the_password_first_leads_back_to_login() {
    let app = spawn_app(&[]).await;
    app.setup_and_login().await;
    let (secret, _) = enrol(&app).await;
    let stranger = app.fresh();
    let response = stranger
        .post_form(
            "/login/code",
            &[("code", totp_code_in(&secret, 1).as_str())],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/login");
    let page = stranger.get("/login/code", &[]).await;
    assert_eq!(page.headers()["location"], "/login");
}

#[tokio::test]
async fn right_codes_do_not_use_up_the_second_step_allowance() {
    let (app, _secret, codes) = enrolled_at_second_step().await;
    // Six good second steps in a row, more than the five wrong ones allowed.
    for (round, code) in codes.iter().take(6).enumerate() {
        let answer = give_code(&app, code).await;
        assert_eq!(
            answer.status(),
            303,
            "round {round}: a right code is accepted"
        );
        assert_ne!(answer.headers()["location"], "/login/code");
        logout(&app).await;
        let login = app.login(USERNAME, PASSWORD).await;
        assert_eq!(login.status(), 303, "round {round}: the password step");
        assert_eq!(login.headers()["location"], "/login/code");
    }
}

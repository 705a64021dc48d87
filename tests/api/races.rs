//! Issue 9.1: every throttle on a guessed secret holds under real
//! concurrency. Hundreds of requests are released at once (see
//! `simultaneously`); a slot is taken before the secret is checked, so at
//! most the limit is ever verified and the right secret sent last is refused.

use crate::helpers::{
    raw_form, raw_request, setup_fields, simultaneously, spawn_app, RawAnswer, TestApp, PASSWORD,
    SETUP_TOKEN, USERNAME,
};

const PROXIED: [(&str, &str); 1] = [("TRUSTED_PROXIES", "127.0.0.1")];

fn login(app: &TestApp, from: &str, username: &str, password: &str) -> Vec<u8> {
    raw_form(
        &app.address,
        "/login",
        &[("X-Forwarded-For", from)],
        &[("username", username), ("password", password)],
    )
}

fn count(answers: &[RawAnswer], status: u16) -> usize {
    answers.iter().filter(|a| a.status == status).count()
}

/// A throttled answer says how long to wait: the whole window, give or take
/// the seconds the test itself took.
fn assert_waits_about_the_window(answer: &RawAnswer, window_secs: u64) {
    let wait: u64 = answer
        .header("retry-after")
        .expect("a throttled answer has Retry-After")
        .parse()
        .unwrap();
    assert!(
        (window_secs - 60..=window_secs).contains(&wait),
        "Retry-After {wait} for a window of {window_secs} s"
    );
}

/// The outcome every race test expects: of the `guesses` sent first, at
/// most `limit` were checked (answered `checked`) and the rest throttled;
/// the right secret, sent last, is refused with the whole window to wait.
fn assert_throttled_race(
    answers: &[RawAnswer],
    guesses: usize,
    checked: u16,
    limit: usize,
) -> &RawAnswer {
    let wrong = &answers[..guesses];
    assert!(
        count(wrong, checked) <= limit,
        "{} guesses were checked (limit {limit})",
        count(wrong, checked)
    );
    assert_eq!(count(wrong, checked) + count(wrong, 429), guesses);
    let right = answers.last().unwrap();
    assert_eq!(right.status, 429, "the right secret, sent last, is refused");
    assert_waits_about_the_window(right, 900);
    right
}

#[tokio::test]
async fn a_thousand_simultaneous_wrong_passwords_cost_at_most_five_verifications_and_the_right_one_sent_last_is_refused(
) {
    let app = spawn_app(&PROXIED).await;
    app.setup().await;
    let before = app.hasher.verification_count();
    let mut requests: Vec<Vec<u8>> = (0..1000)
        .map(|n| {
            let from = format!("10.1.{}.{}", n / 250, n % 250 + 1);
            login(&app, &from, USERNAME, &format!("wrong password {n}"))
        })
        .collect();
    requests.push(login(&app, "203.0.113.77", USERNAME, PASSWORD));
    let answers = simultaneously(&app.address, &requests).await;

    let verified = app.hasher.verification_count() - before;
    assert!(
        verified <= 5,
        "{verified} argon2 verifications for one user"
    );
    let right = assert_throttled_race(&answers, 1000, 401, 5);
    assert!(right.body.contains("Too many failed logins"));
}

#[tokio::test]
async fn simultaneous_logins_from_one_ipv6_64_count_as_one_address() {
    let app = spawn_app(&PROXIED).await;
    app.setup().await;
    let before = app.hasher.verification_count();
    let mut requests: Vec<Vec<u8>> = (0..300)
        .map(|n| {
            let from = format!("2001:db8:7:9:{n:x}::1");
            login(&app, &from, &format!("guess{n}"), "some password")
        })
        .collect();
    requests.push(login(&app, "2001:db8:7:9:ffff:1:2:3", USERNAME, PASSWORD));
    let answers = simultaneously(&app.address, &requests).await;

    let verified = app.hasher.verification_count() - before;
    assert!(verified <= 5, "{verified} verifications from one /64");
    assert!(count(&answers, 401) <= 5);
    assert_eq!(answers.last().unwrap().status, 429);
    assert_eq!(
        app.fresh_login_status(PASSWORD).await,
        303,
        "the user, from another address, is not locked out"
    );
}

#[tokio::test]
async fn three_hundred_simultaneous_wrong_secrets_for_a_real_key_id_cost_at_most_twenty_verifications(
) {
    let app = spawn_app(&[]).await;
    let csrf = app.setup_and_login().await;
    let key = app.generate_key(&csrf, "target", "client", "never").await;
    let id = key.split('_').nth(1).unwrap().to_owned();
    let before = app.hasher.verification_count();
    let mut requests: Vec<Vec<u8>> = (0..300)
        .map(|n| {
            let wrong = format!("ptk_{id}_{n:0>48}");
            raw_request(&app.address, "GET", "/api/me", &[("x-api-key", &wrong)], "")
        })
        .collect();
    requests.push(raw_request(
        &app.address,
        "GET",
        "/api/me",
        &[("x-api-key", &key)],
        "",
    ));
    let answers = simultaneously(&app.address, &requests).await;

    let verified = app.hasher.verification_count() - before;
    assert!(verified <= 20, "{verified} argon2 verifications (limit 20)");
    let right = assert_throttled_race(&answers, 300, 401, 20);
    assert!(right.body.contains("auth-throttled"), "{}", right.body);
}

#[tokio::test]
async fn simultaneous_wrong_setup_tokens_are_throttled_and_the_right_token_sent_last_is_refused() {
    let app = spawn_app(&[]).await;
    let setup = |token: &str| raw_form(&app.address, "/setup", &[], &setup_fields(token));
    let mut requests: Vec<Vec<u8>> = (0..300).map(|n| setup(&format!("guess-{n}"))).collect();
    requests.push(setup(SETUP_TOKEN));
    let answers = simultaneously(&app.address, &requests).await;

    let right = assert_throttled_race(&answers, 300, 403, 5);
    assert!(right.body.contains("Too many wrong setup tokens"));
    assert_eq!(app.page("/setup").await.0, 200, "no user was created");
}

#[tokio::test]
async fn simultaneous_wrong_current_passwords_on_the_password_form_cost_at_most_five_verifications()
{
    let app = spawn_app(&[]).await;
    let csrf = app.setup_and_login().await;
    let cookie = app.session_cookie().expect("logged in");
    let change = |current: &str| {
        let new = "another good password";
        raw_form(
            &app.address,
            "/dashboard/security/password",
            &[("Cookie", &cookie)],
            &[
                ("csrf_token", &csrf),
                ("current", current),
                ("new", new),
                ("confirm", new),
            ],
        )
    };
    let before = app.hasher.verification_count();
    let mut requests: Vec<Vec<u8>> = (0..200).map(|n| change(&format!("not it {n}"))).collect();
    requests.push(change(PASSWORD));
    let answers = simultaneously(&app.address, &requests).await;

    let verified = app.hasher.verification_count() - before;
    assert!(
        verified <= 5,
        "{verified} verifications of the current password"
    );
    assert!(count(&answers, 400) <= 5);
    let right = answers.last().unwrap();
    assert_eq!(right.status, 429, "the right password, sent last");
    assert_waits_about_the_window(right, 900);
    assert_eq!(
        app.fresh_login_status(PASSWORD).await,
        429,
        "the password was not changed, and logins wait"
    );
}

async fn retry_after(app: &TestApp, request: Vec<u8>) -> u64 {
    let answer = simultaneously(&app.address, &[request]).await.remove(0);
    assert_eq!(answer.status, 429, "{}", answer.body);
    answer.header("retry-after").unwrap().parse().unwrap()
}

#[tokio::test]
async fn retry_after_on_throttled_setup_tokens_and_api_keys_is_the_time_left() {
    let app = spawn_app(&[]).await;
    let setup = |token: &str| raw_form(&app.address, "/setup", &[], &setup_fields(token));
    let me = |key: &str| raw_request(&app.address, "GET", "/api/me", &[("x-api-key", key)], "");
    for n in 0..5 {
        let answer = simultaneously(&app.address, &[setup(&format!("guess {n}"))]).await;
        assert_eq!(answer[0].status, 403);
    }
    for _ in 0..20 {
        let answer = simultaneously(&app.address, &[me("not-a-key")]).await;
        assert_eq!(answer[0].status, 401);
    }
    let setup_wait = retry_after(&app, setup(SETUP_TOKEN)).await;
    let api_wait = retry_after(&app, me("still-not-a-key")).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    for (first, again) in [
        (setup_wait, retry_after(&app, setup(SETUP_TOKEN)).await),
        (api_wait, retry_after(&app, me("still-not-a-key")).await),
    ] {
        assert!((880..=900).contains(&first), "first wait {first}");
        assert!(again <= first - 2, "{again} s left 2 s after {first} s");
    }
}

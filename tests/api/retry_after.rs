//! `Retry-After` is the true number of seconds until a request would pass
//! (SPEC §4), for the hourly quota, the failed-key throttle and the login
//! throttle. Each test opens a window, waits a few seconds and checks the
//! header against the time that has really passed, so a constant fails.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::helpers::{
    assert_error, retry_after, spawn_app, TestApp, ADMIN_KEY, PASSWORD, USERNAME,
};

/// How long each test lets its window run before it is refused: long
/// enough that the full window length is outside the tolerance.
const WAIT: Duration = Duration::from_secs(3);

/// When a request was sent and when its answer arrived: the server saw it
/// somewhere in between.
#[derive(Clone, Copy)]
struct Span {
    sent: Instant,
    answered: Instant,
}

async fn timed<T>(request: impl Future<Output = T>) -> (T, Span) {
    let sent = Instant::now();
    let value = request.await;
    let answered = Instant::now();
    (value, Span { sent, answered })
}

/// Asserts that `seconds` is the time left of a `window` that the server
/// opened during `opened` and measured during `refused`, to within ±1 s.
fn assert_remaining(seconds: u64, window: Duration, opened: Span, refused: Span) {
    let longest = refused.answered - opened.sent;
    let shortest = refused.sent.saturating_duration_since(opened.answered);
    let low = (window - longest).as_secs_f64().ceil() as u64 - 1;
    let high = (window - shortest).as_secs_f64().ceil() as u64 + 1;
    assert!(
        (low..=high).contains(&seconds),
        "Retry-After {seconds}, but {:.1}–{:.1} s of the {} s window had passed: expected {low}–{high}",
        shortest.as_secs_f64(),
        longest.as_secs_f64(),
        window.as_secs()
    );
}

#[tokio::test]
async fn the_quota_s_retry_after_counts_down_the_rest_of_the_hour() {
    let app = spawn_app(&[("API_RATE_LIMIT", "2"), ("VALID_API_KEYS", "alpha")]).await;
    let key = [("x-api-key", "alpha")];
    let (first, opened) = timed(app.me(&key)).await;
    assert_eq!(first.status(), 200);
    tokio::time::sleep(WAIT).await;
    assert_eq!(app.me(&key).await.status(), 200);

    let (refused, span) = timed(app.me(&key)).await;
    let seconds = retry_after(&refused);
    assert_remaining(seconds, Duration::from_secs(3600), opened, span);
    let state = refused.headers()["ratelimit"].to_str().unwrap().to_owned();
    assert_eq!(
        state,
        format!("\"hourly\";r=0;t={seconds}"),
        "RateLimit's t= agrees with Retry-After"
    );
    assert_error(refused, 429, "rate-limited").await;
}

async fn me_from(app: &TestApp, key: &str, address: &str) -> reqwest::Response {
    app.me(&[("x-api-key", key), ("x-forwarded-for", address)])
        .await
}

#[tokio::test]
async fn the_failed_key_throttle_s_retry_after_counts_down_its_fifteen_minutes() {
    let app = spawn_app(&[
        ("ADMIN_API_KEY", ADMIN_KEY),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let attacker = "198.51.100.70";
    let (first, opened) = timed(me_from(&app, "guess-0", attacker)).await;
    assert_error(first, 401, "invalid-api-key").await;
    tokio::time::sleep(WAIT).await;
    for n in 1..20 {
        let guess = format!("guess-{n}");
        assert_eq!(me_from(&app, &guess, attacker).await.status(), 401);
    }

    let (throttled, span) = timed(me_from(&app, ADMIN_KEY, attacker)).await;
    assert_remaining(
        retry_after(&throttled),
        Duration::from_secs(900),
        opened,
        span,
    );
    assert_error(throttled, 429, "auth-throttled").await;
}

#[tokio::test]
async fn the_login_throttle_s_retry_after_counts_down_its_fifteen_minutes() {
    let app = spawn_app(&[("TRUSTED_PROXIES", "127.0.0.1")]).await;
    assert_eq!(app.setup().await.status(), 303, "setup succeeds");
    let address = "198.51.100.71";
    let (first, opened) = timed(app.login_from(address, USERNAME, "wrong password!")).await;
    assert_eq!(first.status(), 401);
    tokio::time::sleep(WAIT).await;
    for _ in 1..5 {
        assert_eq!(
            app.login_from(address, USERNAME, "wrong password!")
                .await
                .status(),
            401
        );
    }

    let (throttled, span) = timed(app.login_from(address, USERNAME, PASSWORD)).await;
    assert_eq!(throttled.status(), 429);
    assert_remaining(
        retry_after(&throttled),
        Duration::from_secs(900),
        opened,
        span,
    );
}

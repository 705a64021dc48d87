//! Session lifetimes on a running server (SPEC §6, §6.1): the idle and the
//! absolute limit pinned on both sides of their edge, with short limits
//! injected through `Settings`, and the defaults as documented.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use portico::auth::session::SessionLimits;
use portico::config::Settings;

use crate::helpers::{spawn_app_with_limits, TestApp};

fn limits(idle_secs: u64, absolute_secs: u64) -> SessionLimits {
    SessionLimits {
        idle: Duration::from_secs(idle_secs),
        absolute: Duration::from_secs(absolute_secs),
    }
}

/// 200 with a session, 303 to `/login` without.
async fn dashboard_status(app: &TestApp) -> u16 {
    app.get("/dashboard", &[]).await.status().as_u16()
}

async fn sleep_until(start: Instant, secs: f64) {
    tokio::time::sleep_until((start + Duration::from_secs_f64(secs)).into()).await;
}

#[test]
fn the_default_limits_are_thirty_minutes_idle_and_twelve_hours_absolute() {
    let settings = Settings::from_vars(&HashMap::new()).unwrap();
    assert_eq!(settings.session_limits.idle, Duration::from_secs(30 * 60));
    assert_eq!(
        settings.session_limits.absolute,
        Duration::from_secs(12 * 60 * 60)
    );
    assert_eq!(SessionLimits::default(), settings.session_limits);
}

#[tokio::test]
async fn an_idle_session_ends_after_exactly_the_idle_time_on_a_running_server() {
    let app = spawn_app_with_limits("127.0.0.1:0", &[], limits(4, 3600)).await;
    assert_eq!(app.setup().await.status(), 303, "setup logs in");
    let visit = Instant::now();
    sleep_until(visit, 2.5).await;
    assert_eq!(
        dashboard_status(&app).await,
        200,
        "idle for less than the limit"
    );
    let visit = Instant::now();
    sleep_until(visit, 2.5).await;
    assert_eq!(
        dashboard_status(&app).await,
        200,
        "each visit starts the idle time again (5 s since login, limit 4 s)"
    );
    let copied = app.session_cookie().unwrap();
    let visit = Instant::now();
    sleep_until(visit, 4.4).await;
    assert_eq!(
        dashboard_status(&app).await,
        303,
        "idle for just over the limit"
    );
    assert_eq!(
        app.me(&[("cookie", &copied)]).await.status(),
        401,
        "ended for the API too"
    );
}

#[tokio::test]
async fn a_session_ends_at_exactly_the_absolute_limit_however_busy() {
    let app = spawn_app_with_limits("127.0.0.1:0", &[], limits(3600, 4)).await;
    assert_eq!(app.setup().await.status(), 303, "setup logs in");
    let login = Instant::now();
    for at in [1.0, 2.0, 2.5] {
        sleep_until(login, at).await;
        assert_eq!(dashboard_status(&app).await, 200, "{at} s after login");
    }
    sleep_until(login, 4.4).await;
    assert_eq!(dashboard_status(&app).await, 303, "just past the limit");
    assert_eq!(app.me(&[]).await.status(), 401);
}

//! One Portico in Redis mode (`REDIS_URL`), in process, on a throwaway
//! Redis: where the state goes, and what every kind of caller gets while
//! Redis is down and after it is back. Two real instances are in
//! `instances/`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, TestApp, TestRedis, ADMIN_KEY, PASSWORD, USERNAME};

const CLIENT_KEY: &str = "client-0123456789abcdef0123456789abcdef";

async fn spawn_on(redis: &TestRedis) -> TestApp {
    let url = redis.url();
    spawn_app(&[
        ("REDIS_URL", &url),
        ("REDIS_PREFIX", "t:"),
        ("ADMIN_API_KEY", ADMIN_KEY),
        ("VALID_API_KEYS", CLIENT_KEY),
    ])
    .await
}

async fn health(app: &TestApp) -> (u16, Value) {
    let response = app.get("/api/health", &[]).await;
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON health body"))
}

fn stop(redis: &mut TestRedis) {
    tokio::task::block_in_place(|| redis.stop());
}

fn restart(redis: &mut TestRedis) {
    tokio::task::block_in_place(|| redis.restart());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_url_users_keys_and_sessions_live_in_redis_and_the_data_dir_is_not_locked() {
    let redis = TestRedis::start();
    let app = spawn_on(&redis).await;
    let (status, body) = health(&app).await;
    assert_eq!(
        (status, &body["store"], &body["ok"]),
        (200, &json!("redis"), &json!(true))
    );
    let csrf = app.setup_and_login().await;
    let key = app.generate_key(&csrf, "in redis", "client", "never").await;
    assert_eq!(app.me_with_key(&key).await.0, 200);

    let stored = redis.cli(&["--scan", "--pattern", "t:*"]);
    for part in ["t:users", "t:session:", "t:keys", "t:secret:session-secret"] {
        assert!(stored.contains(part), "no {part} in Redis:\n{stored}");
    }
    let files: Vec<String> = std::fs::read_dir(app.data_dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for file in [
        "users.json",
        "api-keys.json",
        "sessions.json",
        "session-secret",
        ".portico.lock",
    ] {
        assert!(
            !files.iter().any(|f| f == file),
            "{file} in the data dir: {files:?}"
        );
    }
    // Another instance on the same Redis and its own data directory shares
    // the users, the secrets and so the session.
    let second = spawn_on(&redis).await;
    assert_eq!(second.me_with_key(&key).await.0, 200);
    let login = second.login(USERNAME, PASSWORD).await;
    assert_eq!(
        login.status(),
        303,
        "the owner made on the first logs in on the second"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_the_store_answers_503_env_keys_work_and_service_resumes_by_itself() {
    let mut redis = TestRedis::start();
    let app = spawn_on(&redis).await;
    let csrf = app.setup_and_login().await;
    let key = app
        .generate_key(&csrf, "dashboard key", "client", "never")
        .await;

    stop(&mut redis);
    let (status, body) = health(&app).await;
    assert_eq!(
        (status, &body["store"], &body["ok"]),
        (503, &json!("unavailable"), &json!(false))
    );
    // Environment keys need no store.
    let me = app.me_fresh(&[("x-api-key", CLIENT_KEY)]).await;
    assert_eq!(me.status(), 200);
    // Everything that needs Redis says so: never a 500, never a wrong 401.
    let jobs = app
        .api_with(
            reqwest::Method::GET,
            "/api/jobs",
            &[("x-api-key", CLIENT_KEY)],
            None,
        )
        .await;
    let body = assert_error(jobs, 503, "store-unavailable").await;
    assert!(body["error"].as_str().unwrap().contains("Redis"), "{body}");
    let me = app.me_fresh(&[("x-api-key", &key)]).await;
    assert_ne!(
        me.status().as_u16(),
        401,
        "a dashboard key is not refused for Redis being down"
    );
    assert_ne!(me.status().as_u16(), 500);
    let (status, page) = app.page("/dashboard").await;
    assert_eq!(status, 503, "a logged-in page while Redis is down");
    assert!(page.contains("Redis"), "{page}");
    let login = app.fresh().login(USERNAME, PASSWORD).await;
    assert_eq!(login.status(), 503);

    restart(&mut redis);
    let mut back = false;
    for _ in 0..50 {
        if health(&app).await.0 == 200 {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "health is 200 again without restarting Portico");
    assert_eq!(health(&app).await.1["store"], "redis");
    let (status, _) = app.get_json("/api/jobs", CLIENT_KEY).await;
    assert_eq!(status, 200);
    // A server that restarted empty (no persistence) forgot the user:
    // the old session is simply not logged in any more.
    assert_eq!(app.fresh().login(USERNAME, PASSWORD).await.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_counted_in_redis_so_every_instance_sees_them() {
    let redis = TestRedis::start();
    let first = spawn_on(&redis).await;
    first.setup().await;
    let second = spawn_on(&redis).await;
    let mut statuses = Vec::new();
    for attempt in 0..6 {
        let app = if attempt % 2 == 0 { &first } else { &second };
        statuses.push(
            app.fresh()
                .login(USERNAME, "wrong password")
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 401, 401, 429],
        "five per user name, across instances"
    );
}

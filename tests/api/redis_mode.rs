//! One Portico in Redis mode (`REDIS_URL`), in process, on a throwaway
//! Redis: where the state goes, and what every kind of caller gets while
//! Redis is down and after it is back. Two real instances are in
//! `instances/`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{
    assert_error, raw_form, simultaneously_at, spawn_app, TestApp, TestRedis, ADMIN_KEY, PASSWORD,
    USERNAME,
};

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
    let openapi: Value = app
        .get("/api/openapi.json", &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        openapi["components"]["schemas"]["StoreState"]["enum"],
        json!(["file", "redis", "unavailable", "diverged"]),
        "the health answer's store states are documented"
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
    let mut redis = TestRedis::persistent();
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
    // Nothing accepted before the outage is lost: the session, the key.
    assert_eq!(app.page("/dashboard").await.0, 200);
    assert_eq!(app.me_fresh(&[("x-api-key", &key)]).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_counted_in_redis_so_every_instance_sees_them() {
    let redis = TestRedis::start();
    let first = spawn_on(&redis).await;
    first.setup().await;
    let second = spawn_on(&redis).await;
    // Sixty simultaneous guesses, split over both instances: the slot is
    // reserved in Redis before the password is checked, so exactly five
    // (the limit per user name and per address) are checked in all.
    let guess = |app: &TestApp| {
        raw_form(
            &app.address,
            "/login",
            &[],
            &[("username", USERNAME), ("password", "guess")],
        )
    };
    let targets: Vec<(&str, Vec<u8>)> = (0..60)
        .map(|n| {
            let app = if n % 2 == 0 { &first } else { &second };
            (app.address.as_str(), guess(app))
        })
        .collect();
    let answers = simultaneously_at(&targets).await;
    let wrong = answers.iter().filter(|a| a.status == 401).count();
    let throttled = answers.iter().filter(|a| a.status == 429).count();
    assert_eq!(
        (wrong, throttled),
        (5, 55),
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_started_before_redis_waits_for_it_and_then_serves() {
    let mut redis = TestRedis::start();
    stop(&mut redis);
    let url = redis.url();
    let vars = [("REDIS_URL", url.as_str()), ("VALID_API_KEYS", CLIENT_KEY)];
    let began = std::time::Instant::now();
    // Without waiting, the start would fail at once (and `spawn_app`
    // panic); Redis comes back only after 2.5 s.
    let (app, ()) = tokio::join!(spawn_app(&vars), async {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        restart(&mut redis);
    });
    assert!(began.elapsed() >= Duration::from_millis(2500));
    let (status, body) = health(&app).await;
    assert_eq!((status, &body["store"]), (200, &json!("redis")));
    assert_eq!(app.me_with_key(CLIENT_KEY).await.0, 200);
}

#[test]
fn portico_healthcheck_fails_and_names_the_store_while_redis_is_down() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut redis = TestRedis::start();
    let app = runtime.block_on(spawn_on(&redis));
    let bind = app
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let cwd = tempfile::tempdir().unwrap();
    let check = |redis: &TestRedis| {
        crate::helpers::run_cli(
            cwd.path(),
            &[("BIND", &bind), ("REDIS_URL", &redis.url())],
            &["healthcheck"],
            "",
        )
    };
    assert_eq!(check(&redis).status.code(), Some(0));
    redis.stop();
    let down = check(&redis);
    assert_eq!(down.status.code(), Some(1));
    let said = String::from_utf8_lossy(&down.stderr);
    assert!(said.contains("503") && said.contains("Redis"), "{said}");
    drop(app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_cloned_by_one_instance_is_cloned_again_by_another_on_its_first_job_there() {
    let redis = TestRedis::start();
    let first = spawn_on(&redis).await;
    let repo = crate::helpers::answer_repo();
    let workspace = first
        .add_workspace(json!({"name": "cloned", "repoUrl": repo.path()}))
        .await;
    let id = workspace["id"].as_str().unwrap().to_owned();
    // The first instance goes away with its disk: only Redis remains.
    let gone = first.stop().await;
    drop(gone);

    let second = spawn_on(&redis).await;
    let job = second
        .ask_and_wait(
            CLIENT_KEY,
            json!({"workspaceId": id, "question": "how is the token bucket refilled?"}),
        )
        .await;
    assert_eq!(job["status"], "completed", "{job}");
    let clone = second.data_dir.path().join("repos").join(&id);
    assert!(
        clone.join("src/token_bucket.rs").is_file(),
        "cloned into its own DATA_DIR"
    );
    let again = second
        .ask_and_wait(
            CLIENT_KEY,
            json!({"workspaceId": id, "question": "token bucket"}),
        )
        .await;
    assert_eq!(again["status"], "completed", "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_password_works_beside_a_running_server_ends_sessions_and_lifts_the_lockout() {
    let redis = TestRedis::start();
    let url = redis.url();
    let app = spawn_app(&[("REDIS_URL", &url), ("TRUSTED_PROXIES", "127.0.0.1")]).await;
    app.setup().await;
    assert_eq!(app.page("/dashboard").await.0, 200);
    for _ in 0..5 {
        app.login_from("198.51.100.1", USERNAME, "wrong password!")
            .await;
    }
    let locked = app.login_from("198.51.100.2", USERNAME, PASSWORD).await;
    assert_eq!(locked.status(), 429, "the user name is locked out");

    let cwd = tempfile::tempdir().unwrap();
    let output = tokio::task::block_in_place(|| {
        crate::helpers::run_cli(
            cwd.path(),
            &[("REDIS_URL", &url)],
            &["user", "reset-password", USERNAME, "--password-stdin"],
            "a brand new password 42\n",
        )
    });
    let said = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(
        said.contains("1 session(s) ended") && said.contains("lifted"),
        "{said}"
    );
    let (status, _) = app.page("/dashboard").await;
    assert_ne!(status, 200, "the session ended on the running server");
    let login = app
        .login_from("198.51.100.2", USERNAME, "a brand new password 42")
        .await;
    assert_eq!(login.status(), 303, "the user name's lockout is lifted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_metrics_still_serves_every_family_but_the_job_gauges() {
    let mut redis = TestRedis::persistent();
    let app = spawn_on(&redis).await;
    assert_eq!(
        app.me_fresh(&[("x-api-key", CLIENT_KEY)]).await.status(),
        200
    );

    stop(&mut redis);
    let (status, _) = app.get_json("/api/jobs", CLIENT_KEY).await;
    assert_eq!(status, 503, "the store error this scrape must count");
    let response = app.fresh().get("/metrics", &[]).await;
    assert_eq!(
        response.status(),
        200,
        "monitoring keeps its metrics in an outage"
    );
    let text = response.text().await.unwrap();
    for family in [
        "portico_http_requests_total",
        "portico_auth_attempts_total",
        "portico_store_errors_total",
    ] {
        assert!(text.contains(family), "{family} missing from:\n{text}");
    }
    restart(&mut redis);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_flushall_the_secrets_come_back_and_a_conflicting_one_makes_health_503() {
    let redis = TestRedis::start();
    let app = spawn_on(&redis).await;
    let secret_keys = || {
        let listed = redis.cli(&["--raw", "KEYS", "*secret:*"]);
        listed.lines().map(str::to_owned).collect::<Vec<_>>()
    };
    let before = secret_keys();
    assert!(!before.is_empty());
    redis.cli(&["FLUSHALL"]);
    let mut back = false;
    for _ in 0..60 {
        if secret_keys().len() == before.len() {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "the running instance writes its secrets back");
    assert_eq!(health(&app).await.0, 200);

    // As if a new instance had stored its own secret before the write-back.
    redis.cli(&["SET", &before[0], "another-instance-s-value"]);
    let mut answer = (0, Value::Null);
    for _ in 0..60 {
        answer = health(&app).await;
        if answer.0 == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = answer;
    assert_eq!(
        (status, &body["store"]),
        (503, &json!("diverged")),
        "{body}"
    );
    let reason = body["reason"].as_str().unwrap();
    assert!(reason.contains("restart"), "{reason}");
    assert!(!reason.contains("another-instance-s-value"), "{reason}");
}

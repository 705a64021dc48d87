//! `portico migrate to-redis`: a file data directory copied into Redis,
//! then served from Redis; a second run copies nothing; a running server's
//! directory is refused.

use serde_json::json;

use crate::helpers::{
    answer_repo, run_cli, spawn_app, spawn_app_with_jobs_by_hand, TestRedis, ADMIN_KEY, PASSWORD,
    USERNAME,
};

const CLIENT_KEY: &str = "client-migrating-0123456789abcdef0123456789";

fn migrate(data_dir: &str, redis: &TestRedis) -> (Option<i32>, String, String) {
    let cwd = tempfile::tempdir().unwrap();
    let output = run_cli(
        cwd.path(),
        &[("DATA_DIR", data_dir), ("REDIS_URL", &redis.url())],
        &["migrate", "to-redis"],
        "",
    );
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn copied_line<'a>(report: &'a str, what: &str) -> &'a str {
    report
        .lines()
        .find(|line| line.starts_with(what))
        .unwrap_or_else(|| panic!("no '{what}' line in:\n{report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_data_dir_moves_to_redis_once_and_is_served_from_there() {
    let redis = TestRedis::start();
    let app = spawn_app_with_jobs_by_hand(
        &[("ADMIN_API_KEY", ADMIN_KEY), ("VALID_API_KEYS", CLIENT_KEY)],
        std::time::Duration::from_secs(30),
    )
    .await;
    let csrf = app.setup_and_login().await;
    let key = app
        .generate_key(&csrf, "moving key", "client", "never")
        .await;
    let repo = answer_repo();
    let workspace = app.register_workspace(repo.path()).await;
    let answered = app
        .ask_and_wait(
            &key,
            json!({"workspaceId": workspace, "question": "where is main?"}),
        )
        .await;
    assert_eq!(answered["status"], "completed", "{answered}");
    let queued = app.ask_question(&key, &workspace, "still waiting?").await;
    let me = app.me_fresh(&[("x-api-key", CLIENT_KEY)]).await;
    let client_id = me.json::<serde_json::Value>().await.unwrap()["id"].clone();
    let data = app.data_dir.path().display().to_string();

    // Refused while the server holds the directory.
    let (code, _, stderr) = migrate(&data, &redis);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("stop it first"), "{stderr}");

    let data_dir = app.stop().await;
    let (code, first, stderr) = migrate(&data, &redis);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        copied_line(&first, "users").contains(" 1 copied"),
        "{first}"
    );
    assert!(copied_line(&first, "keys").contains(" 1 copied"), "{first}");
    assert!(
        copied_line(&first, "workspaces").contains(" 1 copied"),
        "{first}"
    );
    assert!(copied_line(&first, "jobs").contains(" 2 copied"), "{first}");
    assert!(
        copied_line(&first, "secrets").contains(" 2 copied"),
        "{first}"
    );

    let before = redis.cli(&["--scan", "--pattern", "portico:*"]);
    let dump = |redis: &TestRedis| {
        let mut keys: Vec<String> = redis
            .cli(&["--scan", "--pattern", "portico:*"])
            .lines()
            .map(str::to_owned)
            .collect();
        keys.sort();
        keys.iter()
            .map(|key| format!("{key} {}", redis.cli(&["DUMP", key])))
            .collect::<Vec<_>>()
    };
    let state = dump(&redis);
    let (code, second, stderr) = migrate(&data, &redis);
    assert_eq!(code, Some(0), "{stderr}");
    for what in [
        "users",
        "keys",
        "workspaces",
        "jobs",
        "account events",
        "failure rows",
    ] {
        assert!(
            copied_line(&second, what).contains(" 0 copied"),
            "{what}: {second}"
        );
    }
    assert_eq!(dump(&redis), state, "a second run changes nothing in Redis");
    assert!(!before.is_empty());

    // Served from Redis, on another (empty) data directory.
    let url = redis.url();
    let moved = spawn_app(&[
        ("REDIS_URL", &url),
        ("ADMIN_API_KEY", ADMIN_KEY),
        ("VALID_API_KEYS", CLIENT_KEY),
    ])
    .await;
    let (status, me) = moved.me_with_key(CLIENT_KEY).await;
    assert_eq!(
        (status, &me["id"]),
        (200, &client_id),
        "an env key keeps its client id"
    );
    assert_eq!(moved.login(USERNAME, PASSWORD).await.status(), 303);
    assert_eq!(moved.me_with_key(&key).await.0, 200);
    let job = moved.job(&key, answered["id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "completed");
    assert_eq!(job["result"], answered["result"]);
    let waiting = moved.job(&key, &queued).await;
    assert_eq!(waiting["id"], queued.as_str());
    let (status, workspaces) = moved.get_json("/api/workspaces", ADMIN_KEY).await;
    assert_eq!(status, 200);
    assert_eq!(workspaces.as_array().unwrap().len(), 1, "{workspaces}");
    drop(data_dir);
}

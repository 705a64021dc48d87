//! What Portico keeps on disk, attacked from outside: the data directory's
//! mode, and a key record damaged by hand.

use std::os::unix::fs::PermissionsExt;

use crate::helpers::{assert_error, mode, spawn_app, TestApp};

#[tokio::test]
async fn a_new_data_dir_is_created_0700_so_other_users_cannot_read_anything_inside() {
    let parent = tempfile::tempdir().unwrap();
    std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data_dir = parent.path().join("portico-data");
    let app = spawn_app(&[("DATA_DIR", data_dir.to_str().unwrap())]).await;
    app.setup_and_login().await;
    assert_eq!(mode(&data_dir), 0o700);
    assert!(data_dir.join("users.json").exists(), "the data went there");
}

#[tokio::test]
async fn an_existing_world_readable_data_dir_is_tightened_to_0700_at_start() {
    let mut app = spawn_app(&[]).await;
    app.setup_and_login().await;
    app.restart_with(|app| {
        std::fs::set_permissions(app.data_dir.path(), std::fs::Permissions::from_mode(0o755))
            .unwrap();
    })
    .await;
    assert_eq!(mode(app.data_dir.path()), 0o700);
}

/// `GET /api/me` with only the key, no session cookie.
async fn key_only(app: &TestApp, key: &str) -> reqwest::Response {
    app.me_fresh(&[("x-api-key", key)]).await
}

#[tokio::test]
async fn a_hand_damaged_key_hash_is_an_invalid_key_counted_as_a_failure_never_a_500() {
    let mut app = spawn_app(&[]).await;
    let csrf = app.setup_and_login().await;
    let key = app.generate_key(&csrf, "damaged", "admin", "never").await;
    assert_eq!(key_only(&app, &key).await.status(), 200);
    app.restart_with(|app| {
        let path = app.data_file("api-keys.json");
        let mut records: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        records[0]["keyHash"] = "hand-edited, not a PHC string".into();
        std::fs::write(&path, serde_json::to_vec(&records).unwrap()).unwrap();
    })
    .await;
    for attempt in 1..=20 {
        let response = key_only(&app, &key).await;
        let body = assert_error(response, 401, "invalid-api-key").await;
        assert_eq!(body["error"], "Invalid API key", "attempt {attempt}");
    }
    let response = key_only(&app, &key).await;
    assert_error(response, 429, "auth-throttled").await;
}

//! Session keys (ASVS V7.2.3): each is 64 characters from the 62-letter
//! alphabet of the operating system's generator, about 381 bits.

use std::collections::BTreeSet;

use crate::helpers::{spawn_app, PASSWORD, USERNAME};

#[tokio::test]
async fn every_session_key_is_64_random_alphanumeric_characters() {
    let mut app = spawn_app(&[]).await;
    assert_eq!(app.setup().await.status(), 303, "setup succeeds");
    for _ in 0..5 {
        assert_eq!(
            app.fresh_login_status(PASSWORD).await,
            303,
            "{USERNAME} logs in"
        );
    }
    // Stopping the server writes the sessions it holds in memory.
    app.restart().await;
    let stored: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(app.data_file("sessions.json")).expect("sessions.json"),
    )
    .expect("sessions.json is a JSON object keyed by session key");
    let keys: BTreeSet<&String> = stored.keys().collect();
    assert_eq!(keys.len(), 6, "the setup session and five logins: {keys:?}");
    for key in &keys {
        assert!(
            key.len() >= 64 && key.bytes().all(|b| b.is_ascii_alphanumeric()),
            "a session key of {} characters: {key}",
            key.len()
        );
    }
    let distinct_prefixes: BTreeSet<&str> = keys.iter().map(|k| &k[..16]).collect();
    assert_eq!(distinct_prefixes.len(), keys.len(), "keys share no prefix");
}

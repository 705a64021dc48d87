//! Many key generations and revocations at once: the file ends with exactly
//! the keys that should remain, and the server accepts exactly those.

use std::collections::BTreeSet;

use futures_util::future::join_all;

use reqwest::Method;

use crate::helpers::{spawn_app, TestApp};

async fn generate(app: &TestApp, csrf: &str, name: String) -> String {
    app.generate_key(csrf, &name, "client", "never").await
}

/// `GET /api/me` from an address of the key's own, so that checking many
/// revoked keys does not trip the failed-attempt throttle.
async fn me_status(app: &TestApp, key: &str) -> u16 {
    let octet = key
        .bytes()
        .fold(0u8, |acc, b| acc.wrapping_mul(31).wrapping_add(b));
    let address = format!("198.51.100.{octet}");
    let pairs = [("x-api-key", key), ("x-forwarded-for", &address)];
    let response = app.api_with(Method::GET, "/api/me", &pairs, None).await;
    response.status().as_u16()
}

fn id_of(key: &str) -> String {
    key.split('_').nth(1).unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_generations_and_revocations_leave_exactly_the_expected_keys() {
    let app = spawn_app(&[("TRUSTED_PROXIES", "127.0.0.1")]).await;
    let csrf = app.setup_and_login().await;
    let keys: Vec<String> =
        join_all((0..50).map(|n| generate(&app, &csrf, format!("key {n}")))).await;
    assert_eq!(
        keys.iter().map(|k| id_of(k)).collect::<BTreeSet<_>>().len(),
        50,
        "50 distinct keys"
    );
    let secrets: BTreeSet<&str> = keys.iter().map(|k| k.rsplit('_').next().unwrap()).collect();
    assert_eq!(secrets.len(), 50, "50 distinct secrets");
    assert!(
        secrets.iter().all(|s| s.len() >= 40),
        "secrets of at least 40 characters"
    );
    for status in join_all(keys.iter().map(|key| me_status(&app, key))).await {
        assert_eq!(status, 200, "every key works");
    }

    let (revoked, kept) = keys.split_at(25);
    let revocations = revoked.iter().map(|key| {
        let path = format!("/dashboard/security/keys/{}/revoke", id_of(key));
        let csrf = csrf.clone();
        let app = &app;
        async move { app.submit(&path, &csrf, &[]).await.status().as_u16() }
    });
    let more: Vec<String> = {
        let generations = join_all((50..75).map(|n| generate(&app, &csrf, format!("key {n}"))));
        let (statuses, more) = tokio::join!(join_all(revocations), generations);
        assert!(statuses.iter().all(|s| *s == 303), "{statuses:?}");
        more
    };

    let stored: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(app.data_file("api-keys.json")).unwrap())
            .unwrap();
    let stored_ids: BTreeSet<String> = stored
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    let expected: BTreeSet<String> = kept.iter().chain(&more).map(|k| id_of(k)).collect();
    assert_eq!(
        stored_ids, expected,
        "the file holds exactly the kept and the new keys"
    );

    for key in revoked {
        assert_eq!(me_status(&app, key).await, 401, "a revoked key still works");
    }
    for key in kept.iter().chain(&more) {
        assert_eq!(me_status(&app, key).await, 200);
    }
}

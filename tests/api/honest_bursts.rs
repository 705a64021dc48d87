//! Issue 18 goal 4: the failed-attempt throttle refuses guessers, not
//! honest bursts. A key known valid takes no throttle slot; a request that
//! finds the window full of attempts still being verified waits for a slot
//! instead of being refused; and still at most 20 unverified guesses per
//! address are ever verified, under any concurrency.

use serde_json::json;

use crate::helpers::{raw_request, simultaneously, spawn_app, RawAnswer, ADMIN_KEY};

const ENV_KEY: &str = "client-0123456789abcdef0123456789abcdef";

fn me(app_address: &str, key: &str) -> Vec<u8> {
    raw_request(app_address, "GET", "/api/me", &[("x-api-key", key)], "")
}

fn statuses(answers: &[RawAnswer]) -> std::collections::BTreeMap<u16, usize> {
    let mut counted = std::collections::BTreeMap::new();
    for answer in answers {
        *counted.entry(answer.status).or_default() += 1;
    }
    counted
}

#[tokio::test]
async fn three_hundred_simultaneous_requests_with_valid_keys_beside_nineteen_guesses_are_never_throttled(
) {
    let app = spawn_app(&[
        ("ADMIN_API_KEY", ADMIN_KEY),
        ("VALID_API_KEYS", ENV_KEY),
        ("API_RATE_LIMIT", "100000"),
    ])
    .await;
    let (dashboard_key, id) = app.create_key(json!({"name": "busy"})).await;
    assert_eq!(app.me(&[("x-api-key", &dashboard_key)]).await.status(), 200);
    // Nineteen wrong secrets go out first: one short of the limit, so the
    // window is full of attempts in flight while the valid keys arrive.
    let mut requests: Vec<Vec<u8>> = (0..19)
        .map(|n| me(&app.address, &format!("ptk_{id}_{n:0>48}")))
        .collect();
    requests.extend((0..300).map(|n| match n % 3 {
        0 => me(&app.address, &dashboard_key),
        1 => me(&app.address, ENV_KEY),
        _ => me(&app.address, ADMIN_KEY),
    }));
    let answers = simultaneously(&app.address, &requests).await;

    let valid = &answers[19..];
    assert_eq!(
        statuses(valid),
        [(200, 300)].into(),
        "valid keys: {:?}",
        statuses(valid)
    );
    assert_eq!(statuses(&answers[..19]), [(401, 19)].into());
}

#[tokio::test]
async fn a_hundred_new_keys_used_at_once_from_one_address_all_pass_with_one_verification_each() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY), ("API_RATE_LIMIT", "100000")]).await;
    let mut keys = Vec::new();
    for n in 0..100 {
        keys.push(app.create_key(json!({"name": format!("new-{n}")})).await.0);
    }
    let before = app.hasher.verification_count();
    let requests: Vec<Vec<u8>> = keys.iter().map(|key| me(&app.address, key)).collect();
    let answers = simultaneously(&app.address, &requests).await;

    assert_eq!(
        statuses(&answers),
        [(200, 100)].into(),
        "{:?}",
        statuses(&answers)
    );
    assert_eq!(app.hasher.verification_count() - before, 100);
}

#[tokio::test]
async fn a_thousand_simultaneous_guesses_cost_at_most_twenty_verifications_and_then_valid_keys_are_refused(
) {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let (key, id) = app.create_key(json!({"name": "target"})).await;
    let before = app.hasher.verification_count();
    let requests: Vec<Vec<u8>> = (0..1000)
        .map(|n| me(&app.address, &format!("ptk_{id}_{n:0>48}")))
        .collect();
    let answers = simultaneously(&app.address, &requests).await;

    let verified = app.hasher.verification_count() - before;
    assert!(verified <= 20, "{verified} argon2 verifications (limit 20)");
    let counted = statuses(&answers);
    assert_eq!(
        counted.get(&401).copied().unwrap_or(0) + counted[&429],
        1000,
        "{counted:?}"
    );
    assert!(counted.get(&401).copied().unwrap_or(0) <= 20, "{counted:?}");
    // Twenty confirmed failures: even a key known valid is refused now.
    for valid in [ADMIN_KEY, key.as_str()] {
        let response = app.me(&[("x-api-key", valid)]).await;
        assert_eq!(response.status(), 429, "{valid:.8}…");
    }
}

//! Issue 18 goal 4: the failed-attempt throttle refuses guessers, not
//! honest bursts. A key known valid takes no throttle slot; a request that
//! finds the window full of attempts still being verified waits for a slot
//! instead of being refused; and still at most 20 unverified guesses per
//! address are ever verified, under any concurrency.

use serde_json::json;

use crate::helpers::{raw_request, simultaneously, spawn_app, RawAnswer, ADMIN_KEY};

const ENV_KEY: &str = "client-0123456789abcdef0123456789abcdef";
const GUESSER: &str = "198.51.100.7";

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
async fn valid_keys_are_never_throttled_by_a_window_full_of_guesses_still_in_flight() {
    let app = spawn_app(&[
        ("ADMIN_API_KEY", ADMIN_KEY),
        ("VALID_API_KEYS", ENV_KEY),
        ("API_RATE_LIMIT", "100000"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let (dashboard_key, _) = app.create_key(json!({"name": "busy"})).await;
    assert_eq!(app.me(&[("x-api-key", &dashboard_key)]).await.status(), 200);
    // Guesses at a key never verified cost argon2 each (a verified key's
    // id is answered from its cached digest).
    let (_, id) = app.create_key(json!({"name": "target"})).await;
    let mut fresh = Vec::new();
    for n in 0..40 {
        fresh.push(
            app.create_key(json!({"name": format!("fresh-{n}")}))
                .await
                .0,
        );
    }
    let from = |addr: &str, key: &str| {
        raw_request(
            &app.address,
            "GET",
            "/api/me",
            &[("x-api-key", key), ("X-Forwarded-For", addr)],
            "",
        )
    };
    // Forty first uses from elsewhere queue ahead on the hashing pool, so
    // the twenty guesses below stay in flight — the window of their
    // address full of reservations — while three hundred valid keys from
    // the same address arrive.
    let mut requests: Vec<Vec<u8>> = fresh.iter().map(|key| from("203.0.113.9", key)).collect();
    requests.extend((0..20).map(|n| from(GUESSER, &format!("ptk_{id}_{n:0>48}"))));
    requests.extend((0..300).map(|n| from(GUESSER, [&*dashboard_key, ENV_KEY, ADMIN_KEY][n % 3])));
    let answers = simultaneously(&app.address, &requests).await;

    assert_eq!(
        statuses(&answers[..40]),
        [(200, 40)].into(),
        "first uses elsewhere"
    );
    assert_eq!(
        statuses(&answers[40..60]),
        [(401, 20)].into(),
        "each guess verified once"
    );
    let valid = &answers[60..];
    assert_eq!(
        statuses(valid),
        [(200, 300)].into(),
        "valid keys: {:?}",
        statuses(valid)
    );
    // The twenty guesses are now confirmed failures: the address is refused.
    let after = simultaneously(&app.address, &[from(GUESSER, ENV_KEY)]).await;
    assert_eq!(after[0].status, 429);
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

//! The gate in Redis mode over HTTP, two apps on one throwaway Redis
//! standing for two instances: a revocation or a re-scope on one is seen by
//! the other at its next request, the quota is exact across both, and an
//! honest burst of new keys is not throttled. (Two real processes:
//! `instances/`; the gate's own tests: `src/auth/gate_shared_tests.rs`.)

use serde_json::json;

use crate::helpers::{raw_request, simultaneously_at, spawn_app, TestApp, TestRedis, ADMIN_KEY};

async fn instance(redis: &TestRedis, rate_limit: &str) -> TestApp {
    let url = redis.url();
    spawn_app(&[
        ("REDIS_URL", &url),
        ("REDIS_PREFIX", "g:"),
        ("ADMIN_API_KEY", ADMIN_KEY),
        ("API_RATE_LIMIT", rate_limit),
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_on_one_instance_gets_401_on_the_other_at_its_next_request() {
    let redis = TestRedis::start();
    let (a, b) = (
        instance(&redis, "1000").await,
        instance(&redis, "1000").await,
    );
    let (key, id) = a.create_key(json!({"name": "roaming"})).await;
    assert_eq!(b.me_with_key(&key).await.0, 200, "verified on B");
    assert_eq!(b.me_with_key(&key).await.0, 200, "cached on B");

    let response = a
        .patch_json(
            &format!("/api/keys/{id}"),
            ADMIN_KEY,
            &json!({"hourlyLimit": 3}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let response = b.me(&[("x-api-key", &key)]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["ratelimit-policy"],
        "\"hourly\";q=3;w=3600",
        "re-scoped on A"
    );

    assert_eq!(
        a.delete(&format!("/api/keys/{id}"), ADMIN_KEY)
            .await
            .status(),
        204
    );
    let (status, body) = b.me_with_key(&key).await;
    assert_eq!(
        (status, &body["code"]),
        (401, &json!("invalid-api-key")),
        "revoked on A"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_alternating_between_two_instances_get_exactly_api_rate_limit() {
    let redis = TestRedis::start();
    let (a, b) = (instance(&redis, "10").await, instance(&redis, "10").await);
    let mut statuses = Vec::new();
    for n in 0..30 {
        let on = if n % 2 == 0 { &a } else { &b };
        statuses.push(on.me_with_key(ADMIN_KEY).await.0);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        20,
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_new_keys_used_at_once_half_on_each_instance_all_pass() {
    let redis = TestRedis::start();
    let (a, b) = (
        instance(&redis, "1000").await,
        instance(&redis, "1000").await,
    );
    let mut requests = Vec::new();
    for n in 0..50 {
        let (key, _) = a.create_key(json!({"name": format!("new-{n}")})).await;
        let on = if n % 2 == 0 { &a } else { &b };
        let request = raw_request(&on.address, "GET", "/api/me", &[("x-api-key", &key)], "");
        requests.push((on.address.as_str(), request));
    }
    let answers: Vec<u16> = simultaneously_at(&requests)
        .await
        .iter()
        .map(|answer| answer.status)
        .collect();
    assert!(answers.iter().all(|s| *s == 200), "{answers:?}");
}

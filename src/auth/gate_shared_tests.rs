//! Two `Gate`s on one Redis stand for two instances (SPEC §7): revocation,
//! re-scoping, the quota and the failure throttle are seen by both at the
//! next request, exactly, under concurrency; a cached key costs one round
//! trip; with Redis down, environment keys still work and dashboard keys
//! answer `store-unavailable`. (`tests/api/instances` does the same with
//! two real processes.)

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use actix_web::test::TestRequest;
use secrecy::{ExposeSecret, SecretString};

use super::super::{Gate, Refusal};
use crate::auth::dashboard_keys::{Expiry, Keys, RedisKeyStore};
use crate::auth::env_keys::{EnvKeys, KeyIdSecret};
use crate::auth::hashing::Hasher;
use crate::auth::principal::Role;
use crate::auth::scope::Scope;
use crate::auth::{activity::ActivityLog, users::Users};
use crate::config::Settings;
use crate::store::redis::{test_server, Redis};
use crate::store::StoreError;

const ENV_KEY: &str = "client-0123456789abcdef0123456789abcdef";
const ADDR: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));

struct Instance {
    gate: Gate,
    keys: Arc<Keys>,
    redis: Redis,
    hasher: Arc<Hasher>,
    _dir: tempfile::TempDir,
}

/// An instance on its own connection to the Redis of `shared` (same
/// prefix), with `API_RATE_LIMIT` = `rate_limit`.
async fn instance(url: &str, prefix: &str, ids: &KeyIdSecret, rate_limit: u32) -> Instance {
    let redis = Redis::connect(url, prefix).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let vars = HashMap::from([
        ("API_RATE_LIMIT".to_owned(), rate_limit.to_string()),
        ("DATA_DIR".to_owned(), dir.path().display().to_string()),
    ]);
    let settings = Settings::from_vars(&vars).unwrap();
    let hasher = Hasher::new(1);
    let keys = Arc::new(Keys::new(
        Arc::new(RedisKeyStore::new(redis.clone())),
        "Redis".into(),
        hasher.clone(),
    ));
    let env_keys = EnvKeys::new(None, &[SecretString::from(ENV_KEY)], ids);
    let gate = Gate::new(
        &settings,
        Arc::new(Users::load(dir.path(), hasher.clone()).unwrap()),
        keys.clone(),
        Arc::new(ActivityLog::load(dir.path()).unwrap()),
        env_keys,
        Some(redis.clone()),
    );
    Instance {
        gate,
        keys,
        redis,
        hasher,
        _dir: dir,
    }
}

async fn two_instances(name: &str, rate_limit: u32) -> [Arc<Instance>; 2] {
    let prefix = test_server::connect(name).await.prefix().to_owned();
    let url = test_server::url();
    let ids_dir = tempfile::tempdir().unwrap();
    let ids = KeyIdSecret::load_or_create(ids_dir.path()).unwrap();
    [
        Arc::new(instance(&url, &prefix, &ids, rate_limit).await),
        Arc::new(instance(&url, &prefix, &ids, rate_limit).await),
    ]
}

async fn new_key(on: &Instance, name: &str, scope: Scope) -> String {
    let (key, _) = on
        .keys
        .generate(name, "u1", Role::Client, Expiry::Never, scope)
        .await
        .unwrap();
    key.expose_secret().to_owned()
}

fn id_of(key: &str) -> &str {
    key.split('_').nth(1).unwrap()
}

/// One `/api/me` request with `key` from `ADDR` through `on`'s gate.
async fn ask(on: &Instance, key: &str) -> Result<Option<u32>, Refusal> {
    let req = TestRequest::get()
        .uri("/api/me")
        .insert_header(("x-api-key", key))
        .to_srv_request();
    let (_, quota) = on.gate.authenticate_key(&req, ADDR).await?;
    Ok(quota.map(|quota| quota.remaining))
}

fn refused_as(result: &Result<Option<u32>, Refusal>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(Refusal::InvalidKey) => "invalid",
        Err(Refusal::RateLimited(_)) => "rate-limited",
        Err(Refusal::AuthThrottled { .. }) => "throttled",
        Err(Refusal::Storage(StoreError::Unavailable { .. })) => "unavailable",
        Err(_) => "other",
    }
}

#[tokio::test]
async fn a_cached_key_costs_one_round_trip_and_a_revocation_on_one_instance_is_seen_by_the_other() {
    let [a, b] = two_instances("gate-revoke", 1000).await;
    let key = new_key(&a, "shared", Scope::for_role(Role::Client)).await;
    assert!(ask(&b, &key).await.is_ok(), "verified on B");
    for _ in 0..3 {
        let before = b.redis.round_trips();
        assert!(ask(&b, &key).await.is_ok());
        assert_eq!(
            b.redis.round_trips() - before,
            1,
            "one round trip per cached request"
        );
    }
    let before = b.redis.round_trips();
    assert!(ask(&b, ENV_KEY).await.is_ok());
    assert_eq!(
        b.redis.round_trips() - before,
        1,
        "one round trip for an env key"
    );

    a.keys.revoke(id_of(&key)).await.unwrap();
    assert_eq!(
        refused_as(&ask(&b, &key).await),
        "invalid",
        "revoked on A: 401 on B"
    );
}

#[tokio::test]
async fn a_key_rescoped_on_one_instance_has_its_new_limit_on_the_other_at_the_next_request() {
    let [a, b] = two_instances("gate-rescope", 1000).await;
    let key = new_key(&a, "rescoped", Scope::for_role(Role::Client)).await;
    assert_eq!(ask(&b, &key).await.unwrap(), Some(999));
    let mut narrower = Scope::for_role(Role::Client);
    narrower.hourly_limit = std::num::NonZeroU32::new(5);
    a.keys.set_scope(id_of(&key), narrower).await.unwrap();
    let remaining = ask(&b, &key).await.unwrap();
    assert_eq!(remaining, Some(3), "the key's own limit of 5, two used");
}

#[tokio::test]
async fn requests_alternating_between_two_instances_get_exactly_the_rate_limit() {
    let [a, b] = two_instances("gate-alternate", 10).await;
    let key = new_key(&a, "alternating", Scope::for_role(Role::Client)).await;
    let mut outcomes = Vec::new();
    for n in 0..30 {
        let on = if n % 2 == 0 { &a } else { &b };
        outcomes.push(refused_as(&ask(on, &key).await));
        outcomes.push(refused_as(&ask(on, ENV_KEY).await));
    }
    let ok = outcomes.iter().filter(|o| **o == "ok").count();
    let limited = outcomes.iter().filter(|o| **o == "rate-limited").count();
    assert_eq!(
        (ok, limited),
        (20, 40),
        "10 each for two clients: {outcomes:?}"
    );
}

#[tokio::test]
async fn three_hundred_concurrent_requests_on_two_instances_get_exactly_the_rate_limit() {
    let [a, b] = two_instances("gate-concurrent", 10).await;
    let key = new_key(&a, "concurrent", Scope::for_role(Role::Client)).await;
    assert!(ask(&a, &key).await.is_ok());
    assert!(ask(&b, &key).await.is_ok());
    let tasks: Vec<_> = (0..300)
        .map(|n| {
            let (on, key) = ([&a, &b][n % 2], key.clone());
            async move { refused_as(&ask(on, &key).await) }
        })
        .collect();
    let outcomes = futures_util::future::join_all(tasks).await;
    let ok = outcomes.iter().filter(|o| **o == "ok").count();
    let limited = outcomes.iter().filter(|o| **o == "rate-limited").count();
    assert_eq!((ok, limited), (8, 292), "10 in all, 2 used before");
}

#[tokio::test]
async fn the_failure_throttle_is_shared_by_two_instances_under_concurrency() {
    let [a, b] = two_instances("gate-throttle", 1000).await;
    let key = new_key(&a, "target", Scope::for_role(Role::Client)).await;
    assert!(ask(&b, &key).await.is_ok(), "cached on B before the attack");
    let id = id_of(&key).to_owned();
    let verified_before = a.hasher.verification_count() + b.hasher.verification_count();
    let tasks: Vec<_> = (0..300)
        .map(|n| {
            let on = [&a, &b][n % 2];
            let guess = format!("ptk_{id}_{n:0>48}");
            async move { refused_as(&ask(on, &guess).await) }
        })
        .collect();
    let outcomes = futures_util::future::join_all(tasks).await;
    let verified = a.hasher.verification_count() + b.hasher.verification_count() - verified_before;
    assert!(
        verified <= 20,
        "{verified} verifications on two instances (limit 20)"
    );
    let invalid = outcomes.iter().filter(|o| **o == "invalid").count();
    let throttled = outcomes.iter().filter(|o| **o == "throttled").count();
    assert_eq!(invalid + throttled, 300);
    assert!(invalid <= 20, "{invalid} guesses answered 401");
    assert_eq!(
        refused_as(&ask(&b, &key).await),
        "throttled",
        "even a cached key"
    );
    assert_eq!(
        refused_as(&ask(&a, ENV_KEY).await),
        "throttled",
        "even an env key"
    );
}

#[tokio::test]
async fn thirty_new_keys_used_at_once_on_two_instances_all_pass() {
    let [a, b] = two_instances("gate-burst", 1000).await;
    let mut keys = Vec::new();
    for n in 0..30 {
        keys.push(new_key(&a, &format!("new-{n}"), Scope::for_role(Role::Client)).await);
    }
    let tasks: Vec<_> = keys
        .into_iter()
        .enumerate()
        .map(|(n, key)| {
            let on = [&a, &b][n % 2];
            async move { refused_as(&ask(on, &key).await) }
        })
        .collect();
    let outcomes = futures_util::future::join_all(tasks).await;
    assert!(outcomes.iter().all(|o| *o == "ok"), "{outcomes:?}");
}

#[tokio::test]
async fn with_redis_down_env_keys_still_work_and_dashboard_keys_are_unavailable_not_invalid() {
    let mut server = test_server::Throwaway::start();
    let ids_dir = tempfile::tempdir().unwrap();
    let ids = KeyIdSecret::load_or_create(ids_dir.path()).unwrap();
    let on = instance(&server.url(), "outage", &ids, 1000).await;
    let cached = new_key(&on, "cached", Scope::for_role(Role::Client)).await;
    let fresh = new_key(&on, "fresh", Scope::for_role(Role::Client)).await;
    assert!(ask(&on, &cached).await.is_ok());

    server.stop();
    assert!(ask(&on, ENV_KEY).await.is_ok(), "env key, local counters");
    assert_eq!(refused_as(&ask(&on, &cached).await), "unavailable");
    assert_eq!(refused_as(&ask(&on, &fresh).await), "unavailable");
    assert_eq!(refused_as(&ask(&on, "not-a-key").await), "invalid");
}

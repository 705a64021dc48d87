use std::sync::Arc;

use super::*;
use crate::store::conformance;
use crate::store::redis::test_server;

#[tokio::test]
async fn the_redis_key_store_passes_the_conformance_suite() {
    let redis = test_server::connect("keys").await;
    conformance::keys::check(
        test_server::opener(&redis, |redis| {
            Arc::new(RedisKeyStore::new(redis)) as Arc<dyn KeyStore>
        }),
        test_server::write_faults(&redis),
    )
    .await;
}

#[tokio::test]
async fn every_change_of_a_key_record_moves_its_version_and_a_touch_does_not() {
    let store = RedisKeyStore::new(test_server::connect("key-versions").await);
    let record = KeyRecord {
        id: "k1".into(),
        name: "laptop".into(),
        user_id: "u1".into(),
        role: crate::auth::Role::Client,
        created_at: Utc::now(),
        expires_at: None,
        last_used_at: None,
        key_hash: "hash".into(),
        previous: None,
        scope: None,
    };
    assert_eq!(store.version("k1").await.unwrap(), 0);
    store.insert(record.clone()).await.unwrap();
    assert_eq!(store.version("k1").await.unwrap(), 1);
    store.touch("k1", Utc::now()).await.unwrap();
    store.flush().await.unwrap();
    assert_eq!(
        store.version("k1").await.unwrap(),
        1,
        "a touch is no change"
    );
    let current = store.get("k1").await.unwrap().unwrap();
    let mut rolled = current.clone();
    rolled.key_hash = "rolled".into();
    store.replace(&current, rolled).await.unwrap();
    assert_eq!(store.version("k1").await.unwrap(), 2);
    store.remove("k1").await.unwrap();
    assert_eq!(store.version("k1").await.unwrap(), 3, "a removal is seen");
}

#[tokio::test]
async fn a_key_rolled_by_another_instance_takes_its_new_secret_here_at_once() {
    use crate::auth::dashboard_keys::{Expiry, KeyCheck, Keys};
    use crate::auth::hashing::Hasher;
    use crate::auth::scope::Scope;
    use std::time::Duration;

    let redis = test_server::connect("key-rolled-elsewhere").await;
    let hasher = Hasher::new(1);
    let here = Keys::new(
        Arc::new(RedisKeyStore::new(redis.clone())),
        "here".into(),
        hasher.clone(),
    );
    let there = Keys::new(Arc::new(RedisKeyStore::new(redis)), "there".into(), hasher);
    let role = crate::auth::Role::Client;
    let (old, record) = here
        .generate("k", "user", role, Expiry::Never, Scope::for_role(role))
        .await
        .unwrap();
    let valid = |check: KeyCheck| matches!(check, KeyCheck::Valid(_));
    assert!(valid(here.check(&old).await.unwrap()), "cached here");
    // Rolled elsewhere without grace: the new secret works here at once,
    // though this process verified the old one.
    let (new, _) = there
        .roll(&record.id, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert!(valid(here.check(&new).await.unwrap()), "the new secret");
    assert!(!valid(here.check(&old).await.unwrap()), "the old secret");
    // And with a grace period: both work here.
    let (newer, _) = there
        .roll(&record.id, Duration::from_secs(600))
        .await
        .unwrap()
        .unwrap();
    assert!(valid(here.check(&newer).await.unwrap()), "the newer secret");
    assert!(valid(here.check(&new).await.unwrap()), "in its grace");
}

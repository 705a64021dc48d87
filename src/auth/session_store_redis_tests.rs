use super::*;
use crate::store::conformance;
use crate::store::redis::test_server;

#[tokio::test]
async fn the_redis_session_store_passes_the_conformance_suite() {
    let redis = test_server::connect("sessions").await;
    conformance::sessions::check(
        test_server::opener(&redis, RedisSessionStore::new),
        test_server::write_faults(&redis),
    )
    .await;
}

#[tokio::test]
async fn a_purge_by_an_entry_without_an_index_ends_exactly_the_sessions_holding_it() {
    let redis = test_server::connect("session-scan").await;
    // Glob characters in the prefix must not reach a neighbour's keys.
    let store = RedisSessionStore::new(redis.with_prefix(&format!("{}:[a]*?", redis.prefix())));
    let neighbour = RedisSessionStore::new(redis.with_prefix(&format!("{}:abc", redis.prefix())));
    let ttl = CookieDuration::hours(1);
    let with = |value: &str| State::from([("team".to_owned(), format!("\"{value}\""))]);
    let a = store.save(with("red"), &ttl).await.unwrap();
    let b = store.save(with("red"), &ttl).await.unwrap();
    let c = store.save(with("blue"), &ttl).await.unwrap();
    let other = neighbour.save(with("red"), &ttl).await.unwrap();
    assert_eq!(store.purge_where("team", "red").await.unwrap(), 2);
    assert_eq!(store.load(&a).await.unwrap(), None);
    assert_eq!(store.load(&b).await.unwrap(), None);
    assert_eq!(store.load(&c).await.unwrap(), Some(with("blue")));
    assert_eq!(neighbour.load(&other).await.unwrap(), Some(with("red")));
}

#[tokio::test]
async fn a_session_that_changed_user_is_purged_with_its_new_user_only() {
    let store = RedisSessionStore::new(test_server::connect("session-move").await);
    let ttl = CookieDuration::hours(1);
    let user = |id: &str| State::from([(USER_ID.to_owned(), format!("\"{id}\""))]);
    let key = store.save(user("alice"), &ttl).await.unwrap();
    let key = store.update(key, user("bob"), &ttl).await.unwrap();
    assert_eq!(store.purge_where(USER_ID, "alice").await.unwrap(), 0);
    assert_eq!(store.load(&key).await.unwrap(), Some(user("bob")));
    assert_eq!(store.purge_where(USER_ID, "bob").await.unwrap(), 1);
    assert_eq!(store.load(&key).await.unwrap(), None);
}

#[tokio::test]
async fn a_session_and_its_index_expire_with_the_time_to_live() {
    let redis = test_server::connect("session-ttl").await;
    let store = RedisSessionStore::new(redis.clone());
    let user = State::from([(USER_ID.to_owned(), "\"alice\"".to_owned())]);
    let key = store
        .save(user.clone(), &CookieDuration::seconds(60))
        .await
        .unwrap();
    store
        .update_ttl(&key, &CookieDuration::hours(2))
        .await
        .unwrap();
    let ttl = |name: String| {
        let mut conn = redis.conn();
        async move {
            redis::cmd("TTL")
                .arg(name)
                .query_async::<i64>(&mut conn)
                .await
                .unwrap()
        }
    };
    let session_ttl = ttl(store.session(key.as_ref())).await;
    let index_ttl = ttl(store.index(USER_ID, "\"alice\"")).await;
    assert!(session_ttl > 3600, "{session_ttl}");
    assert!(index_ttl >= session_ttl, "{index_ttl} < {session_ttl}");
}

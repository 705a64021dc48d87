//! The Redis stores of the auth area while Redis is down and after it came
//! back: every operation that needs Redis reports `Unavailable` (never a
//! panic, never "not found" or `Conflict`, which callers would turn into a
//! wrong 401 or a retry), buffered recording is kept, and the stores work
//! again after a restart without being opened again (the connection
//! manager reconnects by itself).

use std::net::IpAddr;
use std::time::Duration;

use actix_session::storage::{SessionKey, SessionStore};
use actix_web::cookie::time::Duration as CookieDuration;
use chrono::Utc;

use super::activity::{AccountAction, AccountEvent};
use super::activity_store::ActivityStore;
use super::activity_store_redis::RedisActivityStore;
use super::dashboard_keys::{KeyRecord, KeyStore, RedisKeyStore};
use super::session_store::SessionPurge;
use super::session_store_redis::RedisSessionStore;
use super::user_store::UserStore;
use super::user_store_redis::RedisUserStore;
use super::Role;
use crate::store::redis::test_server::Throwaway;
use crate::store::redis::Redis;
use crate::store::StoreError;

fn key(id: &str) -> KeyRecord {
    KeyRecord {
        id: id.into(),
        name: id.into(),
        user_id: "u1".into(),
        role: Role::Client,
        created_at: Utc::now(),
        expires_at: None,
        last_used_at: None,
        key_hash: "hash".into(),
        previous: None,
        scope: None,
    }
}

fn unavailable<T: std::fmt::Debug>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Unavailable { .. }))
}

#[tokio::test]
async fn the_stores_answer_unavailable_while_redis_is_down_and_work_again_after_it_restarts() {
    let mut server = Throwaway::start();
    let redis = Redis::connect(&server.url(), "outage").await.unwrap();
    let keys = RedisKeyStore::new(redis.clone());
    let users = RedisUserStore::new(redis.clone());
    let sessions = RedisSessionStore::new(redis.clone());
    let activity = RedisActivityStore::new(redis.clone());
    keys.insert(key("before")).await.unwrap();
    let ttl = CookieDuration::hours(1);
    let session = sessions.save(Default::default(), &ttl).await.unwrap();

    server.stop();
    assert!(unavailable(keys.get("before").await), "not a 401");
    assert!(unavailable(keys.list().await));
    assert!(unavailable(keys.insert(key("during")).await));
    assert!(unavailable(users.list().await));
    assert!(unavailable(users.find_by_name("owner").await));
    assert!(
        sessions.load(&session).await.is_err(),
        "not a logged-out session"
    );
    assert!(sessions.save(Default::default(), &ttl).await.is_err());
    assert!(unavailable(sessions.purge_where("user_id", "u1").await));
    activity.push_account(AccountEvent {
        at: Utc::now(),
        action: AccountAction::Login,
        actor: "owner".into(),
        client: IpAddr::from([192, 0, 2, 1]),
        detail: None,
    });
    assert!(unavailable(activity.flush().await));

    server.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while keys.list().await.is_err() {
        assert!(std::time::Instant::now() < deadline, "no reconnection");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The restarted server is empty (it persists nothing); what was kept
    // in memory is written now.
    activity.flush().await.unwrap();
    assert_eq!(activity.account_events().await.unwrap().len(), 1);
    keys.insert(key("after")).await.unwrap();
    assert_eq!(keys.get("after").await.unwrap().unwrap().id, "after");
    let unknown = SessionKey::try_from(session.as_ref().to_owned()).unwrap();
    assert_eq!(sessions.load(&unknown).await.unwrap(), None);
}

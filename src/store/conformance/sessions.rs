//! What every session back end must do: actix-session's `SessionStore`
//! plus `SessionPurge`.

use std::collections::HashMap;
use std::path::Path;

use actix_session::storage::{SessionKey, SessionStore};
use actix_web::cookie::time::Duration as CookieDuration;

use crate::auth::session_store::SessionPurge;
use crate::store::StoreError;

fn state(user: &str) -> HashMap<String, String> {
    HashMap::from([("user_id".to_owned(), format!("\"{user}\""))])
}

const TTL: CookieDuration = CookieDuration::hours(1);

/// Runs every check on fresh places below a temporary directory.
pub async fn check<S: SessionStore + SessionPurge>(
    open: impl Fn(&Path) -> S,
    fail_writes: impl Fn(&Path, bool),
) {
    let root = tempfile::tempdir().unwrap();
    let place = |name: &str| {
        let dir = root.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        dir
    };
    save_load_update_delete(&open, &place("crud")).await;
    purge_ends_the_sessions_of_one_user(&open, &place("purge")).await;
    a_failed_write_changes_nothing(&open, &fail_writes, &place("faults")).await;
}

async fn save_load_update_delete<S: SessionStore + SessionPurge>(
    open: &impl Fn(&Path) -> S,
    at: &Path,
) {
    let store = open(at);
    let key = store.save(state("u1"), &TTL).await.unwrap();
    assert_eq!(store.load(&key).await.unwrap(), Some(state("u1")));
    let key = store.update(key, state("u2"), &TTL).await.unwrap();
    assert_eq!(store.load(&key).await.unwrap(), Some(state("u2")));
    drop(store);
    let store = open(at);
    assert_eq!(
        store.load(&key).await.unwrap(),
        Some(state("u2")),
        "kept across a reopen"
    );
    store.delete(&key).await.unwrap();
    assert_eq!(store.load(&key).await.unwrap(), None);
    // A session deleted meanwhile does not come back with an update.
    let again = SessionKey::try_from(key.as_ref().to_owned()).unwrap();
    let fresh = store.update(again, state("u3"), &TTL).await.unwrap();
    assert_ne!(fresh.as_ref(), key.as_ref());
    assert_eq!(store.load(&key).await.unwrap(), None);
    assert_eq!(
        store.load(&fresh).await.unwrap(),
        Some(HashMap::new()),
        "neither the old key nor its state comes back"
    );
    let unknown = SessionKey::try_from("x".repeat(64)).unwrap();
    assert_eq!(store.load(&unknown).await.unwrap(), None);
}

async fn purge_ends_the_sessions_of_one_user<S: SessionStore + SessionPurge>(
    open: &impl Fn(&Path) -> S,
    at: &Path,
) {
    let store = open(at);
    let a1 = store.save(state("alice"), &TTL).await.unwrap();
    let a2 = store.save(state("alice"), &TTL).await.unwrap();
    let b = store.save(state("bob"), &TTL).await.unwrap();
    assert_eq!(store.purge_where("user_id", "alice").await.unwrap(), 2);
    assert_eq!(store.purge_where("user_id", "alice").await.unwrap(), 0);
    assert_eq!(store.load(&a1).await.unwrap(), None);
    assert_eq!(store.load(&a2).await.unwrap(), None);
    assert_eq!(store.load(&b).await.unwrap(), Some(state("bob")));
    drop(store);
    assert_eq!(open(at).load(&a1).await.unwrap(), None, "purged on disk");
}

async fn a_failed_write_changes_nothing<S: SessionStore + SessionPurge>(
    open: &impl Fn(&Path) -> S,
    fail_writes: &impl Fn(&Path, bool),
    at: &Path,
) {
    let store = open(at);
    let kept = store.save(state("alice"), &TTL).await.unwrap();
    fail_writes(at, true);
    let saved = store.save(state("bob"), &TTL).await;
    let purged = store.purge_where("user_id", "alice").await;
    let deleted = store.delete(&kept).await;
    fail_writes(at, false);
    assert!(saved.is_err());
    assert!(matches!(purged, Err(StoreError::Unavailable { .. })));
    assert!(deleted.is_err());
    assert_eq!(store.load(&kept).await.unwrap(), Some(state("alice")));
}

//! What every `KeyStore` must do.

use std::path::Path;
use std::sync::Arc;

use chrono::{Duration, Utc};

use crate::auth::dashboard_keys::{KeyRecord, KeyStore};
use crate::auth::Role;
use crate::store::StoreError;

fn key(id: &str, user: &str, name: &str) -> KeyRecord {
    KeyRecord {
        id: id.to_owned(),
        name: name.to_owned(),
        user_id: user.to_owned(),
        role: Role::Client,
        created_at: Utc::now(),
        expires_at: None,
        last_used_at: None,
        key_hash: format!("hash-of-{id}"),
        previous: None,
        scope: None,
    }
}

fn sorted(mut keys: Vec<KeyRecord>) -> Vec<String> {
    keys.sort_by(|a, b| a.id.cmp(&b.id));
    keys.into_iter().map(|k| k.id).collect()
}

/// Runs every check on fresh places below a temporary directory.
pub async fn check(open: impl Fn(&Path) -> Arc<dyn KeyStore>, fail_writes: impl Fn(&Path, bool)) {
    let root = tempfile::tempdir().unwrap();
    let place = |name: &str| {
        let dir = root.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        dir
    };
    insert_get_list_remove(&open, &place("crud")).await;
    names_are_unique_per_user(&open, &place("names")).await;
    replace_is_a_compare_and_swap(&open, &place("cas")).await;
    touches_are_kept_and_flushed(&open, &place("touch")).await;
    a_failed_write_changes_nothing(&open, &fail_writes, &place("faults")).await;
}

async fn insert_get_list_remove(open: &impl Fn(&Path) -> Arc<dyn KeyStore>, at: &Path) {
    let store = open(at);
    assert!(store.list().await.unwrap().is_empty());
    let a = key("ka", "u1", "laptop");
    let b = key("kb", "u1", "ci");
    store.insert(a.clone()).await.unwrap();
    store.insert(b.clone()).await.unwrap();
    assert_eq!(sorted(store.list().await.unwrap()), ["ka", "kb"]);
    assert_eq!(store.get("ka").await.unwrap(), Some(a.clone()));
    assert_eq!(store.get("kz").await.unwrap(), None);
    assert_eq!(store.remove("ka").await.unwrap(), Some(a));
    assert_eq!(store.remove("ka").await.unwrap(), None);
    assert_eq!(store.get("ka").await.unwrap(), None);
    drop(store);
    let again = open(at);
    assert_eq!(again.list().await.unwrap(), vec![b], "kept across a reopen");
}

async fn names_are_unique_per_user(open: &impl Fn(&Path) -> Arc<dyn KeyStore>, at: &Path) {
    let store = open(at);
    store.insert(key("k1", "u1", "Laptop")).await.unwrap();
    let same_name = store.insert(key("k2", "u1", "laptop")).await;
    assert!(matches!(same_name, Err(StoreError::Conflict)));
    let same_id = store.insert(key("k1", "u2", "other")).await;
    assert!(matches!(same_id, Err(StoreError::Conflict)));
    store.insert(key("k3", "u2", "laptop")).await.unwrap();
    assert_eq!(sorted(store.list().await.unwrap()), ["k1", "k3"]);
}

async fn replace_is_a_compare_and_swap(open: &impl Fn(&Path) -> Arc<dyn KeyStore>, at: &Path) {
    let store = open(at);
    let first = key("k1", "u1", "laptop");
    store.insert(first.clone()).await.unwrap();
    let mut rolled = first.clone();
    rolled.key_hash = "rolled".to_owned();
    store.replace(&first, rolled.clone()).await.unwrap();
    let mut late = first.clone();
    late.key_hash = "late".to_owned();
    assert!(matches!(
        store.replace(&first, late).await,
        Err(StoreError::Conflict)
    ));
    let gone = key("k9", "u1", "gone");
    assert!(matches!(
        store.replace(&gone, gone.clone()).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.get("k1").await.unwrap(), Some(rolled.clone()));
    drop(store);
    assert_eq!(open(at).get("k1").await.unwrap(), Some(rolled));
}

async fn touches_are_kept_and_flushed(open: &impl Fn(&Path) -> Arc<dyn KeyStore>, at: &Path) {
    let store = open(at);
    store.insert(key("k1", "u1", "laptop")).await.unwrap();
    let now = Utc::now();
    store.touch("k1", now).await.unwrap();
    store.touch("k1", now - Duration::minutes(5)).await.unwrap();
    store.touch("missing", now).await.unwrap();
    let touched = store.get("k1").await.unwrap().unwrap();
    assert_eq!(touched.last_used_at, Some(now), "never moved back");
    store.flush().await.unwrap();
    drop(store);
    let again = open(at).get("k1").await.unwrap().unwrap();
    assert_eq!(again.last_used_at, Some(now));
}

async fn a_failed_write_changes_nothing(
    open: &impl Fn(&Path) -> Arc<dyn KeyStore>,
    fail_writes: &impl Fn(&Path, bool),
    at: &Path,
) {
    let store = open(at);
    let a = key("k1", "u1", "laptop");
    store.insert(a.clone()).await.unwrap();
    fail_writes(at, true);
    let inserted = store.insert(key("k2", "u1", "ci")).await;
    let removed = store.remove("k1").await;
    let mut changed = a.clone();
    changed.name = "renamed".to_owned();
    let replaced = store.replace(&a, changed).await;
    store.touch("k1", Utc::now()).await.unwrap();
    let flushed = store.flush().await;
    fail_writes(at, false);
    for result in [inserted, replaced, flushed] {
        assert!(matches!(result, Err(StoreError::Unavailable { .. })));
    }
    assert!(matches!(removed, Err(StoreError::Unavailable { .. })));
    assert_eq!(store.list().await.unwrap().len(), 1);
    assert_eq!(store.get("k1").await.unwrap().unwrap().name, "laptop");
    // The touch was kept and is written by the next flush that works.
    store.flush().await.unwrap();
    let again = open(at).get("k1").await.unwrap().unwrap();
    assert!(again.last_used_at.is_some());
}

//! What every `UserStore` must do.

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;

use crate::auth::user_store::UserStore;
use crate::auth::users::UserRecord;
use crate::store::StoreError;

fn user(id: &str, name: &str) -> UserRecord {
    UserRecord {
        id: id.to_owned(),
        username: name.to_owned(),
        password_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".to_owned(),
        created_at: Utc::now(),
        session_epoch: 0,
        two_factor: None,
    }
}

/// Runs every check on fresh places below a temporary directory.
pub async fn check(open: impl Fn(&Path) -> Arc<dyn UserStore>, fail_writes: impl Fn(&Path, bool)) {
    let root = tempfile::tempdir().unwrap();
    let place = |name: &str| {
        let dir = root.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        dir
    };
    only_the_first_user_is_created(&open, &place("first")).await;
    replace_is_a_compare_and_swap(&open, &place("cas")).await;
    records_survive_a_reopen(&open, &place("reopen")).await;
    a_failed_write_changes_nothing(&open, &fail_writes, &place("faults")).await;
}

async fn only_the_first_user_is_created(open: &impl Fn(&Path) -> Arc<dyn UserStore>, at: &Path) {
    let store = open(at);
    assert!(store.list().await.unwrap().is_empty());
    assert_eq!(store.get("u1").await.unwrap(), None);
    let owner = user("u1", "owner");
    store.create_first(owner.clone()).await.unwrap();
    let second = store.create_first(user("u2", "other")).await;
    assert!(matches!(second, Err(StoreError::Conflict)));
    assert_eq!(store.list().await.unwrap(), vec![owner.clone()]);
    assert_eq!(store.get("u1").await.unwrap(), Some(owner.clone()));
    assert_eq!(store.find_by_name("owner").await.unwrap(), Some(owner));
    assert_eq!(store.find_by_name("other").await.unwrap(), None);
}

async fn replace_is_a_compare_and_swap(open: &impl Fn(&Path) -> Arc<dyn UserStore>, at: &Path) {
    let store = open(at);
    let first = user("u1", "owner");
    store.create_first(first.clone()).await.unwrap();
    let mut changed = first.clone();
    changed.session_epoch = 1;
    store.replace(&first, changed.clone()).await.unwrap();
    assert_eq!(store.get("u1").await.unwrap(), Some(changed.clone()));
    // A writer that read `first` lost the race: it must read again.
    let mut late = first.clone();
    late.password_hash = "late".to_owned();
    assert!(matches!(
        store.replace(&first, late).await,
        Err(StoreError::Conflict)
    ));
    let ghost = user("nobody", "ghost");
    assert!(matches!(
        store.replace(&ghost, ghost.clone()).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.list().await.unwrap(), vec![changed]);
}

async fn records_survive_a_reopen(open: &impl Fn(&Path) -> Arc<dyn UserStore>, at: &Path) {
    let store = open(at);
    let owner = user("u1", "owner");
    store.create_first(owner.clone()).await.unwrap();
    drop(store);
    assert_eq!(open(at).list().await.unwrap(), vec![owner]);
}

async fn a_failed_write_changes_nothing(
    open: &impl Fn(&Path) -> Arc<dyn UserStore>,
    fail_writes: &impl Fn(&Path, bool),
    at: &Path,
) {
    let store = open(at);
    fail_writes(at, true);
    let created = store.create_first(user("u0", "lost")).await;
    fail_writes(at, false);
    assert!(matches!(created, Err(StoreError::Unavailable { .. })));
    assert!(store.list().await.unwrap().is_empty());
    let owner = user("u1", "owner");
    store.create_first(owner.clone()).await.unwrap();
    let mut changed = owner.clone();
    changed.session_epoch = 9;
    fail_writes(at, true);
    let replaced = store.replace(&owner, changed).await;
    fail_writes(at, false);
    assert!(matches!(replaced, Err(StoreError::Unavailable { .. })));
    assert_eq!(store.get("u1").await.unwrap(), Some(owner.clone()));
    assert_eq!(open(at).list().await.unwrap(), vec![owner]);
}

//! The cache of verified keys decides alone only while it agrees with the
//! records: a revocation, a roll or a new scope is seen at the next check,
//! even one that lands while the key's first verification is running.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{oneshot, Mutex};

use super::super::{Expiry, FileKeyStore, KeyCheck, KeyRecord, KeyStore, Keys, Lookup};
use crate::auth::hashing::Hasher;
use crate::auth::principal::Role;
use crate::auth::scope::{Permission, Scope};
use crate::store::StoreError;

/// A file store whose next `get`, once armed, reads the record and then
/// waits for a go-ahead before answering.
#[derive(Debug)]
struct PausingStore {
    inner: FileKeyStore,
    pause: Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>,
}

#[async_trait]
impl KeyStore for PausingStore {
    async fn list(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.inner.list().await
    }
    async fn get(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let record = self.inner.get(id).await?;
        let pause = self.pause.lock().await.take();
        if let Some((reached, go)) = pause {
            reached.send(()).unwrap();
            go.await.unwrap();
        }
        Ok(record)
    }
    async fn insert(&self, record: KeyRecord) -> Result<(), StoreError> {
        self.inner.insert(record).await
    }
    async fn remove(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        self.inner.remove(id).await
    }
    async fn replace(&self, current: &KeyRecord, next: KeyRecord) -> Result<(), StoreError> {
        self.inner.replace(current, next).await
    }
    async fn touch(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.inner.touch(id, at).await
    }
    async fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush().await
    }
}

struct Fixture {
    keys: Arc<Keys>,
    store: Arc<PausingStore>,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(PausingStore {
        inner: FileKeyStore::load(dir.path()).unwrap(),
        pause: Mutex::new(None),
    });
    let keys = Arc::new(Keys::new(store.clone(), "test".into(), Hasher::new(1)));
    Fixture {
        keys,
        store,
        _dir: dir,
    }
}

async fn new_key(keys: &Keys) -> (SecretString, String) {
    let scope = Scope::for_role(Role::Client);
    let (secret, record) = keys
        .generate("k", "user", Role::Client, Expiry::Never, scope)
        .await
        .unwrap();
    (secret, record.id)
}

/// A check of `key` that argon2 never has to decide: `None` when it would.
async fn decided(keys: &Keys, key: &SecretString) -> Option<KeyCheck> {
    match keys.lookup(key.expose_secret()).await.unwrap() {
        Lookup::Decided(check) => Some(check),
        Lookup::Unverified(_) => None,
    }
}

fn is_valid(check: Option<KeyCheck>) -> bool {
    matches!(check, Some(KeyCheck::Valid(_)))
}

#[tokio::test]
async fn a_key_revoked_while_its_first_verification_runs_is_refused_at_its_next_check() {
    let Fixture { keys, store, _dir } = fixture();
    let (key, id) = new_key(&keys).await;
    // The verification has read the record; the revocation lands before it
    // caches its result.
    let (verifying, go) = verification_paused_after_its_read(&keys, &store, &key).await;
    assert!(keys.revoke(&id).await.unwrap().is_some());
    go.send(()).unwrap();
    let first = verifying.await.unwrap();
    assert!(
        matches!(first, KeyCheck::Valid(_)),
        "it began before the revocation"
    );
    for _ in 0..2 {
        assert!(
            matches!(decided(&keys, &key).await, Some(KeyCheck::NotStored)),
            "a revoked key is not stored"
        );
    }
}

#[tokio::test]
async fn a_cached_key_sees_a_new_scope_a_roll_and_a_revocation_at_its_next_check() {
    let Fixture { keys, _dir, .. } = fixture();
    let (key, id) = new_key(&keys).await;
    assert!(is_valid(Some(keys.check(&key).await.unwrap())));
    assert!(is_valid(decided(&keys, &key).await), "cached");
    assert!(is_valid(decided(&keys, &key).await), "and again");

    let narrow = Scope {
        permissions: vec![Permission::Ask],
        ..Scope::for_role(Role::Client)
    };
    keys.set_scope(&id, narrow.clone()).await.unwrap().unwrap();
    for _ in 0..2 {
        let Some(KeyCheck::Valid(principal)) = decided(&keys, &key).await else {
            panic!("a re-scoped key stays valid");
        };
        assert_eq!(*principal.scope, narrow);
    }

    let (rolled, _) = keys.roll(&id, Duration::ZERO).await.unwrap().unwrap();
    assert!(
        decided(&keys, &key).await.is_none(),
        "the old secret is no longer known"
    );
    assert!(matches!(keys.check(&key).await.unwrap(), KeyCheck::Invalid));
    assert!(is_valid(Some(keys.check(&rolled).await.unwrap())));
    assert!(is_valid(decided(&keys, &rolled).await));

    keys.revoke(&id).await.unwrap().unwrap();
    assert!(matches!(
        decided(&keys, &rolled).await,
        Some(KeyCheck::NotStored)
    ));
}

#[tokio::test]
async fn a_cached_key_is_refused_as_expired_once_its_time_is_up() {
    let Fixture { keys, store, _dir } = fixture();
    let (key, id) = new_key(&keys).await;
    let record = store.inner.get(&id).await.unwrap().unwrap();
    let expiring = KeyRecord {
        expires_at: Some(Utc::now() + chrono::Duration::milliseconds(1_500)),
        ..record.clone()
    };
    store.inner.replace(&record, expiring).await.unwrap();
    assert!(is_valid(Some(keys.check(&key).await.unwrap())));
    assert!(is_valid(decided(&keys, &key).await), "cached");
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    for _ in 0..2 {
        assert!(matches!(
            decided(&keys, &key).await,
            Some(KeyCheck::Expired)
        ));
    }
}

/// Starts the first verification of `key` and holds it just after it read
/// the record, before it caches its result; `go` lets it finish.
async fn verification_paused_after_its_read(
    keys: &Arc<Keys>,
    store: &PausingStore,
    key: &SecretString,
) -> (tokio::task::JoinHandle<KeyCheck>, oneshot::Sender<()>) {
    let Lookup::Unverified(unverified) = keys.lookup(key.expose_secret()).await.unwrap() else {
        panic!("a key never seen needs argon2");
    };
    let (reached_tx, reached) = oneshot::channel();
    let (go, go_rx) = oneshot::channel();
    *store.pause.lock().await = Some((reached_tx, go_rx));
    let verifying = {
        let (keys, key) = (keys.clone(), key.clone());
        tokio::spawn(async move { keys.verify(&key, unverified).await.unwrap() })
    };
    tokio::time::timeout(Duration::from_secs(30), reached)
        .await
        .unwrap()
        .unwrap();
    (verifying, go)
}

#[tokio::test]
async fn a_key_rolled_while_its_first_verification_runs_refuses_the_old_secret_next() {
    let Fixture { keys, store, _dir } = fixture();
    let (key, id) = new_key(&keys).await;
    let (verifying, go) = verification_paused_after_its_read(&keys, &store, &key).await;
    let (rolled, _) = keys.roll(&id, Duration::ZERO).await.unwrap().unwrap();
    go.send(()).unwrap();
    verifying.await.unwrap();
    for _ in 0..2 {
        assert!(
            !is_valid(Some(keys.check(&key).await.unwrap())),
            "the old secret died with the roll"
        );
    }
    assert!(
        is_valid(Some(keys.check(&rolled).await.unwrap())),
        "the new secret works"
    );
    assert!(!is_valid(Some(keys.check(&key).await.unwrap())));
}

#[tokio::test]
async fn a_key_rescoped_while_its_first_verification_runs_has_the_new_scope_next() {
    let Fixture { keys, store, _dir } = fixture();
    let (key, id) = new_key(&keys).await;
    let (verifying, go) = verification_paused_after_its_read(&keys, &store, &key).await;
    let narrow = Scope {
        permissions: vec![Permission::Ask],
        ..Scope::for_role(Role::Client)
    };
    keys.set_scope(&id, narrow.clone()).await.unwrap().unwrap();
    go.send(()).unwrap();
    verifying.await.unwrap();
    for _ in 0..3 {
        let KeyCheck::Valid(principal) = keys.check(&key).await.unwrap() else {
            panic!("a re-scoped key stays valid");
        };
        assert_eq!(*principal.scope, narrow, "the new scope applies");
    }
}

#[tokio::test]
async fn debug_prints_of_the_keys_and_a_pending_check_hold_no_hash_or_digest() {
    let Fixture { keys, store, _dir } = fixture();
    let (key, id) = new_key(&keys).await;
    let Lookup::Unverified(unverified) = keys.lookup(key.expose_secret()).await.unwrap() else {
        panic!("a key never seen needs argon2");
    };
    let record = store.inner.get(&id).await.unwrap().unwrap();
    let pending = format!("{unverified:?}");
    assert!(!pending.contains(&record.key_hash), "{pending}");
    assert!(!pending.contains("argon2"), "{pending}");
    assert!(is_valid(Some(keys.verify(&key, unverified).await.unwrap())));
    let digest = keys.digest(key.expose_secret());
    let printed = format!("{keys:?}");
    for shown in [digest.to_string(), format!("{digest:x}")] {
        assert!(!printed.contains(&shown), "{printed}");
    }
    assert!(!printed.contains(&record.key_hash));
    assert!(!printed.contains(key.expose_secret()));
}

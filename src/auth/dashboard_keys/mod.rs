//! Dashboard-generated API keys (SPEC §3): `ptk_<id>_<secret>`, stored in
//! a `KeyStore` (`api-keys.json` by default) as argon2id hashes only. A
//! check is one look-up by id and at most one argon2 verification per key
//! per process: a verified key is remembered as a keyed digest, forgotten
//! when the key is revoked.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use chrono::{DateTime, Utc};
use secrecy::SecretString;

mod check;
mod recall;
mod record;
pub mod redis_store;
pub mod store;

pub use check::{CachedKey, Lookup, Unverified};
use record::KEY_PREFIX;
pub use record::{Expiry, KeyRecord, PreviousSecret};
pub use redis_store::RedisKeyStore;
pub use store::{FileKeyStore, KeyStore};

use super::api_key::SecretDigester;
use super::hashing::Hasher;
use super::principal::{Principal, Role};
use super::scope::Scope;
use crate::core::{random_alphanumeric, random_token};
use crate::store::StoreError;

const ID_LEN: usize = 12;
/// 48 characters of 62 possible: 285 bits from the OS CSPRNG.
const SECRET_LEN: usize = 48;
/// Last-used times are written at most this often per key.
const LAST_USED_RESOLUTION_SECS: i64 = 60;

/// The secrets of a key that argon2 accepted, as keyed digests: the
/// current one and, after a roll, the old one; who the key is; and, for a
/// shared store, the record's version they were verified against.
struct Verified {
    current: Option<u128>,
    previous: Option<u128>,
    principal: Principal,
    version: Option<u64>,
    /// The times below in milliseconds since the Unix epoch: the gate
    /// compares them to the clock on every request, and a `DateTime`'s
    /// calendar costs more to convert than the rest of the comparison.
    expires_at: Option<i64>,
    previous_until: Option<i64>,
    /// The last use written to the store (at most once a minute).
    touched_at: Option<i64>,
    /// `Keys::generation` when this entry last agreed with the record: while
    /// it still is the current one, the entry alone decides (`recall`).
    generation: u64,
}

/// Without the digests of the secrets (SPEC §2: no hash in a `Debug` print).
impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verified")
            .field("principal", &self.principal)
            .field("version", &self.version)
            .field("expires_at", &self.expires_at)
            .field("previous_until", &self.previous_until)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

fn same_digest(known: Option<u128>, digest: u128) -> bool {
    known.is_some_and(|known| super::api_key::same_digest(known, digest))
}

/// `generate` refused: a key of the user already has this name.
#[derive(Debug, thiserror::Error)]
#[error("a key with this name exists already")]
pub struct DuplicateKeyName;

/// What a dashboard-key check found.
#[derive(Debug)]
pub enum KeyCheck {
    /// Not a stored key: the gate goes on to the environment keys.
    NotStored,
    Valid(Principal),
    Invalid,
    Expired,
}

/// The dashboard keys: the rules (hashing, rolls, scopes, the cache of
/// verified secrets) over a `KeyStore` that keeps the records.
#[derive(Debug)]
pub struct Keys {
    store: Arc<dyn KeyStore>,
    /// Where the records are, for messages about a damaged one.
    location: String,
    /// Keys verified by argon2 in this process, by id. Hashed with a
    /// randomly seeded foldhash: only verified ids are ever inserted, so a
    /// client choosing ids can cause look-ups, never collisions in it.
    verified: RwLock<HashMap<String, Verified, foldhash::quality::RandomState>>,
    digester: SecretDigester,
    hasher: Arc<Hasher>,
    /// Moved on after every change this process makes to a record, once
    /// the cache above reflects it. Only for a store this process owns
    /// alone (`owns_store`): nothing else changes its records.
    generation: AtomicU64,
    owns_store: bool,
    /// Ids whose stored `keyHash` is not a PHC string, already reported.
    malformed_reported: Mutex<HashSet<String>>,
}

/// `ptk_<id>_<secret>` with a fresh secret from the OS CSPRNG.
fn new_secret(id: &str) -> SecretString {
    SecretString::from(format!(
        "{KEY_PREFIX}{id}_{}",
        random_alphanumeric(SECRET_LEN)
    ))
}

impl Keys {
    /// The record with this id, if any.
    pub async fn get(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        self.store.get(id).await
    }

    /// The keys in `api-keys.json` in the data directory.
    pub fn load(data_dir: &Path, hasher: Arc<Hasher>) -> anyhow::Result<Self> {
        let store = FileKeyStore::load(data_dir)?;
        let location = store.path().display().to_string();
        Ok(Self::new(Arc::new(store), location, hasher))
    }

    pub fn new(store: Arc<dyn KeyStore>, location: String, hasher: Arc<Hasher>) -> Self {
        Self {
            owns_store: store.versions_key().is_none(),
            store,
            location,
            verified: RwLock::new(HashMap::default()),
            digester: SecretDigester::random(),
            hasher,
            generation: AtomicU64::new(0),
            malformed_reported: Mutex::new(HashSet::new()),
        }
    }

    fn digest(&self, key: &str) -> u128 {
        self.digester.digest(key)
    }

    /// Every key, newest first.
    pub async fn list(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let mut keys = self.store.list().await?;
        keys.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(keys)
    }

    /// How many keys there are.
    pub async fn count(&self) -> Result<usize, StoreError> {
        Ok(self.store.list().await?.len())
    }

    /// Creates a key and returns its plaintext, which exists nowhere else,
    /// only once the record is safely stored.
    pub async fn generate(
        &self,
        name: &str,
        user_id: &str,
        role: Role,
        expiry: Expiry,
        scope: Scope,
    ) -> anyhow::Result<(SecretString, KeyRecord)> {
        let id = random_token(ID_LEN);
        let plaintext = new_secret(&id);
        let now = Utc::now();
        let record = KeyRecord {
            id: id.clone(),
            name: name.to_owned(),
            user_id: user_id.to_owned(),
            role,
            created_at: now,
            expires_at: expiry.from(now),
            last_used_at: None,
            key_hash: self.hasher.hash(&plaintext).await?,
            previous: None,
            scope: Some(scope),
        };
        // The store refuses a second key of the user with this name, so
        // two racing forms cannot both pass.
        match self.store.insert(record.clone()).await {
            Ok(()) => Ok((plaintext, record)),
            Err(StoreError::Conflict) => Err(DuplicateKeyName.into()),
            Err(err) => Err(err.into()),
        }
    }

    /// Removes a key and returns it; `None` when there was none with this id.
    pub async fn revoke(&self, id: &str) -> anyhow::Result<Option<KeyRecord>> {
        let revoked = self.store.remove(id).await?;
        if revoked.is_some() {
            let mut verified = self.verified.write();
            verified.remove(id);
            self.moved_on();
        }
        Ok(revoked)
    }

    /// Applies `change` to the record `id` by compare-and-swap, again on
    /// a fresh read when another write got there first. The record before
    /// and after, or `None` when there is no key with this id.
    async fn change(
        &self,
        id: &str,
        change: impl Fn(&mut KeyRecord),
    ) -> Result<Option<(KeyRecord, KeyRecord)>, StoreError> {
        loop {
            let Some(before) = self.store.get(id).await? else {
                return Ok(None);
            };
            let mut after = before.clone();
            change(&mut after);
            match self.store.replace(&before, after.clone()).await {
                Ok(()) => return Ok(Some((before, after))),
                Err(StoreError::Conflict) => continue,
                Err(err) => return Err(err),
            }
        }
    }

    /// Replaces the scope of the key `id`, keeping its secret: the new
    /// reach applies from the next request. The record before and after,
    /// or `None` when there is no key with this id.
    pub async fn set_scope(
        &self,
        id: &str,
        scope: Scope,
    ) -> anyhow::Result<Option<(KeyRecord, KeyRecord)>> {
        let Some((before, after)) = self
            .change(id, |record| record.scope = Some(scope.clone()))
            .await?
        else {
            return Ok(None);
        };
        let mut verified = self.verified.write();
        if let Some(known) = verified.get_mut(id) {
            known.principal = after.principal();
        }
        self.moved_on();
        drop(verified);
        Ok(Some((before, after)))
    }

    /// Gives the key `id` a new secret and returns it. The old secret keeps
    /// working for `grace` (none: it dies now), then never again; `None`
    /// when there is no key with this id.
    pub async fn roll(
        &self,
        id: &str,
        grace: std::time::Duration,
    ) -> anyhow::Result<Option<(SecretString, KeyRecord)>> {
        let plaintext = new_secret(id);
        let key_hash = self.hasher.hash(&plaintext).await?;
        let now = Utc::now();
        let grace = chrono::Duration::from_std(grace)?;
        let rolled = self
            .change(id, |record| {
                record.previous = (grace > chrono::Duration::zero()).then(|| PreviousSecret {
                    key_hash: record.key_hash.clone(),
                    valid_until: now + grace,
                });
                record.key_hash.clone_from(&key_hash);
            })
            .await?;
        let Some((_, record)) = rolled else {
            return Ok(None);
        };
        let mut verified = self.verified.write();
        match (verified.get_mut(id), &record.previous) {
            (Some(known), Some(previous)) => {
                known.previous = known.current.take();
                known.previous_until = Some(previous.valid_until.timestamp_millis());
            }
            (Some(_), None) => {
                verified.remove(id);
            }
            (None, _) => {}
        }
        self.moved_on();
        drop(verified);
        Ok(Some((plaintext, record)))
    }

    /// A record changed and the cache reflects it: every cached entry is
    /// checked against its record once more before it decides alone.
    /// Called with the cache's write lock held, so a verification that read
    /// the record before the change either sees the generation moved on
    /// when it takes the lock (and caches nothing), or caches first and has
    /// its entry corrected by the change.
    fn moved_on(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn report_malformed(&self, id: &str) {
        let first = self.malformed_reported.lock().insert(id.to_owned());
        if first {
            tracing::error!(
                key = id,
                file = %self.location,
                "a stored keyHash is malformed, so this key is refused; \
                 revoke it in Account Security and generate a new one"
            );
        }
    }

    /// Notes the use of a key, at most once a minute per key; the store
    /// may keep it in memory until `flush_last_used`.
    async fn touch(&self, record: &KeyRecord, now: DateTime<Utc>) -> Result<(), StoreError> {
        let stale = record
            .last_used_at
            .is_none_or(|used| (now - used).num_seconds() >= LAST_USED_RESOLUTION_SECS);
        if stale {
            self.store.touch(&record.id, now).await?;
        }
        Ok(())
    }

    /// Writes the last-used times noted since the last write.
    pub async fn flush_last_used(&self) -> anyhow::Result<()> {
        Ok(self.store.flush().await?)
    }
}

//! Dashboard-generated API keys (SPEC §3): `ptk_<id>_<secret>`, stored in
//! `api-keys.json` as argon2id hashes only. A check is one look-up by id and
//! at most one argon2 verification per key per process: a verified key is
//! remembered as a keyed digest, forgotten when the key is revoked.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use argon2::password_hash::PasswordHash;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

mod record;

use record::{split_key, KEY_PREFIX};
pub use record::{Expiry, KeyRecord, PreviousSecret};

use super::hashing::Hasher;
use super::principal::{Principal, Role};
use super::scope::Scope;
use crate::core::{random_alphanumeric, random_token};
use crate::store::{read_json, write_json};

const ID_LEN: usize = 12;
/// 48 characters of 62 possible: 285 bits from the OS CSPRNG.
const SECRET_LEN: usize = 48;
/// Last-used times are written at most this often per key.
const LAST_USED_RESOLUTION_SECS: i64 = 60;

/// The secrets of a key that argon2 accepted, as keyed digests: the
/// current one and, after a roll, the old one; and who the key is.
#[derive(Debug)]
struct Verified {
    current: Option<[u8; 32]>,
    previous: Option<[u8; 32]>,
    principal: Principal,
}

fn same_digest(known: Option<[u8; 32]>, digest: &[u8; 32]) -> bool {
    known.is_some_and(|known| bool::from(known.ct_eq(digest)))
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

#[derive(Debug)]
pub struct KeyStore {
    path: PathBuf,
    records: RwLock<HashMap<String, KeyRecord>>,
    /// Keys verified by argon2 in this process, by id.
    verified: RwLock<HashMap<String, Verified>>,
    digest_key: [u8; 32],
    writes: tokio::sync::Mutex<()>,
    /// A last-used time changed in memory since the file was written.
    last_used_dirty: AtomicBool,
    hasher: Arc<Hasher>,
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

impl KeyStore {
    /// The record with this id, if any.
    pub fn get(&self, id: &str) -> Option<KeyRecord> {
        self.records
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    pub fn load(data_dir: &Path, hasher: Arc<Hasher>) -> anyhow::Result<Self> {
        let path = data_dir.join("api-keys.json");
        let records: Vec<KeyRecord> = read_json(&path)?.unwrap_or_default();
        Ok(Self {
            path,
            records: RwLock::new(records.into_iter().map(|r| (r.id.clone(), r)).collect()),
            verified: RwLock::new(HashMap::new()),
            digest_key: rand::random(),
            writes: tokio::sync::Mutex::new(()),
            last_used_dirty: AtomicBool::new(false),
            hasher,
            malformed_reported: Mutex::new(HashSet::new()),
        })
    }

    fn digest(&self, key: &str) -> [u8; 32] {
        *blake3::keyed_hash(&self.digest_key, key.as_bytes()).as_bytes()
    }

    /// Every key, newest first.
    pub fn list(&self) -> Vec<KeyRecord> {
        let mut keys: Vec<KeyRecord> = self
            .records
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        keys.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        keys
    }

    pub fn len(&self) -> usize {
        self.records.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the records with `change` applied, then makes them current.
    /// Callers hold `writes`, so changes never overtake each other.
    async fn commit(
        &self,
        change: impl FnOnce(&mut HashMap<String, KeyRecord>),
    ) -> anyhow::Result<()> {
        let mut next = self
            .records
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        change(&mut next);
        let mut ordered: Vec<&KeyRecord> = next.values().collect();
        ordered.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        write_json(&self.path, &ordered).await?;
        *self.records.write().unwrap_or_else(|e| e.into_inner()) = next;
        Ok(())
    }

    /// Creates a key and returns its plaintext, which exists nowhere else,
    /// only once the record is safely on disk.
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
        let _write = self.writes.lock().await;
        // Checked under the write lock, so two racing forms cannot both pass.
        let taken = self
            .records
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .any(|other| other.user_id == user_id && other.name.eq_ignore_ascii_case(name));
        if taken {
            return Err(DuplicateKeyName.into());
        }
        let stored = record.clone();
        self.commit(move |records| {
            records.insert(id, stored);
        })
        .await?;
        Ok((plaintext, record))
    }

    /// Removes a key and returns it; `None` when there was none with this id.
    pub async fn revoke(&self, id: &str) -> anyhow::Result<Option<KeyRecord>> {
        let _write = self.writes.lock().await;
        let Some(revoked) = self
            .records
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
        else {
            return Ok(None);
        };
        self.commit(|records| {
            records.remove(id);
        })
        .await?;
        self.verified
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        Ok(Some(revoked))
    }

    /// Replaces the scope of the key `id`, keeping its secret: the new
    /// reach applies from the next request. The record before and after,
    /// or `None` when there is no key with this id.
    pub async fn set_scope(
        &self,
        id: &str,
        scope: Scope,
    ) -> anyhow::Result<Option<(KeyRecord, KeyRecord)>> {
        let _write = self.writes.lock().await;
        let Some(before) = self.get(id) else {
            return Ok(None);
        };
        let mut after = before.clone();
        after.scope = Some(scope);
        let stored = after.clone();
        self.commit(move |records| {
            records.insert(stored.id.clone(), stored);
        })
        .await?;
        if let Some(known) = self
            .verified
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(id)
        {
            known.principal = after.principal();
        }
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
        let _write = self.writes.lock().await;
        let Some(mut record) = self
            .records
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
        else {
            return Ok(None);
        };
        let now = Utc::now();
        let grace = chrono::Duration::from_std(grace)?;
        record.previous = (grace > chrono::Duration::zero()).then(|| PreviousSecret {
            key_hash: std::mem::replace(&mut record.key_hash, key_hash.clone()),
            valid_until: now + grace,
        });
        record.key_hash = key_hash;
        let stored = record.clone();
        self.commit(move |records| {
            records.insert(stored.id.clone(), stored);
        })
        .await?;
        let mut verified = self.verified.write().unwrap_or_else(|e| e.into_inner());
        match (verified.get_mut(id), &record.previous) {
            (Some(known), Some(_)) => {
                known.previous = known.current.take();
            }
            (Some(_), None) => {
                verified.remove(id);
            }
            (None, _) => {}
        }
        Ok(Some((plaintext, record)))
    }

    /// Checks a presented key against the stored ones. A key verified
    /// before costs a digest and a comparison; a new one, one argon2
    /// verification on the blocking pool (two while a rolled key's old
    /// secret is in its grace period and neither was seen yet).
    pub async fn check(&self, key: &SecretString) -> anyhow::Result<KeyCheck> {
        let presented = key.expose_secret();
        let Some(parts) = split_key(presented) else {
            return Ok(KeyCheck::NotStored);
        };
        let digest = self.digest(presented);
        let now = Utc::now();
        let (expired, candidates) = {
            let records = self.records.read().unwrap_or_else(|e| e.into_inner());
            let Some(record) = records.get(parts.id) else {
                return Ok(KeyCheck::NotStored);
            };
            let in_grace = record.previous_hash(now).is_some();
            let verified = self.verified.read().unwrap_or_else(|e| e.into_inner());
            let known = verified.get(parts.id);
            if let Some(known) = known {
                let matches = same_digest(known.current, &digest)
                    || (in_grace && same_digest(known.previous, &digest));
                if matches {
                    crate::metrics::key_cache(true);
                    let principal = known.principal.clone();
                    drop(verified);
                    return Ok(if record.is_expired(now) {
                        KeyCheck::Expired
                    } else {
                        drop(records);
                        self.touch(parts.id, now);
                        KeyCheck::Valid(principal)
                    });
                }
            }
            // Only secrets not yet seen are worth an argon2 verification.
            let mut candidates = Vec::with_capacity(2);
            if known.is_none_or(|k| k.current.is_none()) {
                candidates.push(record.key_hash.clone());
            }
            if let Some(previous) = record.previous_hash(now) {
                if known.is_none_or(|k| k.previous.is_none()) {
                    candidates.push(previous.to_owned());
                }
            }
            (record.is_expired(now), candidates)
        };
        crate::metrics::key_cache(false);
        let mut matched = None;
        for key_hash in candidates {
            if PasswordHash::new(&key_hash).is_err() {
                // A hand-edited or damaged record: no key can match it, so it
                // is an invalid key (counted as a failure), not a server error.
                self.report_malformed(parts.id);
                continue;
            }
            if self.hasher.verify(key, &key_hash).await? {
                matched = Some(key_hash);
                break;
            }
        }
        let Some(matched) = matched else {
            return Ok(KeyCheck::Invalid);
        };
        // A revocation or a roll may have happened while argon2 ran.
        let principal = {
            let records = self.records.read().unwrap_or_else(|e| e.into_inner());
            let Some(record) = records.get(parts.id) else {
                return Ok(KeyCheck::Invalid);
            };
            let is_current = record.key_hash == matched;
            if !is_current && record.previous_hash(Utc::now()) != Some(matched.as_str()) {
                return Ok(KeyCheck::Invalid);
            }
            let mut verified = self.verified.write().unwrap_or_else(|e| e.into_inner());
            let entry = verified
                .entry(record.id.clone())
                .or_insert_with(|| Verified {
                    current: None,
                    previous: None,
                    principal: record.principal(),
                });
            if is_current {
                entry.current = Some(digest);
            } else {
                entry.previous = Some(digest);
            }
            entry.principal.clone()
        };
        if expired {
            return Ok(KeyCheck::Expired);
        }
        self.touch(parts.id, now);
        Ok(KeyCheck::Valid(principal))
    }

    fn report_malformed(&self, id: &str) {
        let first = self
            .malformed_reported
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_owned());
        if first {
            tracing::error!(
                key = id,
                file = %self.path.display(),
                "a stored keyHash is malformed, so this key is refused; \
                 revoke it in Account Security and generate a new one"
            );
        }
    }

    /// Notes the use of a key in memory; `flush_last_used` writes it.
    fn touch(&self, id: &str, now: DateTime<Utc>) {
        let stale = |record: &KeyRecord| {
            record
                .last_used_at
                .is_none_or(|used| (now - used).num_seconds() >= LAST_USED_RESOLUTION_SECS)
        };
        if !self
            .records
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .is_some_and(stale)
        {
            return;
        }
        if let Some(record) = self
            .records
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(id)
        {
            if stale(record) {
                record.last_used_at = Some(now);
                self.last_used_dirty.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Writes the file if a last-used time changed since it was written.
    pub async fn flush_last_used(&self) -> anyhow::Result<()> {
        let _write = self.writes.lock().await;
        if self.last_used_dirty.swap(false, Ordering::Relaxed) {
            if let Err(err) = self.commit(|_| {}).await {
                self.last_used_dirty.store(true, Ordering::Relaxed);
                return Err(err);
            }
        }
        Ok(())
    }
}

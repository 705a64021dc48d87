//! Dashboard-generated API keys (SPEC §3): `ptk_<id>_<secret>`, stored in
//! `api-keys.json` as argon2id hashes only. A check is one look-up by id and
//! at most one argon2 verification per key per process: a verified key is
//! remembered as a keyed digest, forgotten when the key is revoked.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::hashing::Hasher;
use super::principal::{Principal, PrincipalKind, Role};
use super::{random_alphanumeric, random_token};
use crate::store::{read_json, write_json};

const KEY_PREFIX: &str = "ptk_";
const ID_LEN: usize = 12;
/// 48 characters of 62 possible: 285 bits from the OS CSPRNG.
const SECRET_LEN: usize = 48;
/// Last-used times are written at most this often per key.
const LAST_USED_RESOLUTION_SECS: i64 = 60;

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRecord {
    pub id: String,
    pub name: String,
    pub user_id: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<DateTime<Utc>>,
    pub key_hash: String,
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl KeyRecord {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|expiry| expiry <= now)
    }

    /// What may be shown of the key after its one-time display.
    pub fn display_prefix(&self) -> String {
        format!("{KEY_PREFIX}{}_…", self.id)
    }

    fn principal(&self) -> Principal {
        Principal {
            id: self.id.as_str().into(),
            kind: PrincipalKind::DashboardKey,
            name: self.name.as_str().into(),
            role: self.role,
        }
    }
}

/// The parts of a presented key in the dashboard-key format.
struct KeyParts<'a> {
    id: &'a str,
}

fn split_key(key: &str) -> Option<KeyParts<'_>> {
    let (id, secret) = key.strip_prefix(KEY_PREFIX)?.split_once('_')?;
    let id_ok = (8..=16).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let secret_ok = secret.len() >= 40 && secret.bytes().all(|b| b.is_ascii_alphanumeric());
    (id_ok && secret_ok).then_some(KeyParts { id })
}

/// How long a new key lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Never,
    Days(u16),
}

impl Expiry {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "never" | "" => Some(Self::Never),
            "30" => Some(Self::Days(30)),
            "90" => Some(Self::Days(90)),
            "365" => Some(Self::Days(365)),
            _ => None,
        }
    }

    fn from(self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Never => None,
            Self::Days(days) => Some(now + Duration::days(i64::from(days))),
        }
    }
}

/// A key that argon2 accepted: its keyed digest and who it is.
#[derive(Debug)]
struct Verified {
    digest: [u8; 32],
    principal: Principal,
}

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
}

impl KeyStore {
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
    ) -> anyhow::Result<(SecretString, KeyRecord)> {
        let id = random_token(ID_LEN);
        let plaintext = SecretString::from(format!(
            "{KEY_PREFIX}{id}_{}",
            random_alphanumeric(SECRET_LEN)
        ));
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
        };
        let _write = self.writes.lock().await;
        let stored = record.clone();
        self.commit(move |records| {
            records.insert(id, stored);
        })
        .await?;
        Ok((plaintext, record))
    }

    /// Removes a key; `false` when there was none with this id.
    pub async fn revoke(&self, id: &str) -> anyhow::Result<bool> {
        let _write = self.writes.lock().await;
        if !self
            .records
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(id)
        {
            return Ok(false);
        }
        self.commit(|records| {
            records.remove(id);
        })
        .await?;
        self.verified
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        Ok(true)
    }

    /// Checks a presented key against the stored ones. A key verified
    /// before costs a digest and a comparison; a new one, one argon2
    /// verification on the blocking pool.
    pub async fn check(&self, key: &SecretString) -> anyhow::Result<KeyCheck> {
        let presented = key.expose_secret();
        let Some(parts) = split_key(presented) else {
            return Ok(KeyCheck::NotStored);
        };
        let digest = self.digest(presented);
        let now = Utc::now();
        let (expired, key_hash) = {
            let records = self.records.read().unwrap_or_else(|e| e.into_inner());
            let Some(record) = records.get(parts.id) else {
                return Ok(KeyCheck::NotStored);
            };
            let known = self
                .verified
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(parts.id)
                .map(|verified| (verified.digest, verified.principal.clone()));
            if let Some((known, principal)) = known {
                return Ok(if !bool::from(known.ct_eq(&digest)) {
                    KeyCheck::Invalid
                } else if record.is_expired(now) {
                    KeyCheck::Expired
                } else {
                    drop(records);
                    self.touch(parts.id, now);
                    KeyCheck::Valid(principal)
                });
            }
            (record.is_expired(now), record.key_hash.clone())
        };
        if !self.hasher.verify(key, &key_hash).await? {
            return Ok(KeyCheck::Invalid);
        }
        // A revocation may have happened while argon2 ran.
        let principal = {
            let records = self.records.read().unwrap_or_else(|e| e.into_inner());
            let Some(record) = records.get(parts.id) else {
                return Ok(KeyCheck::Invalid);
            };
            let principal = record.principal();
            self.verified
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(
                    record.id.clone(),
                    Verified {
                        digest,
                        principal: principal.clone(),
                    },
                );
            principal
        };
        if expired {
            return Ok(KeyCheck::Expired);
        }
        self.touch(parts.id, now);
        Ok(KeyCheck::Valid(principal))
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

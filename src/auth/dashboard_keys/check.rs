//! Checking a presented dashboard key, in two steps so the gate can tell a
//! key it already knows from one that costs an argon2 verification (and a
//! throttle slot): `lookup` decides what it can from the record and the
//! cache of verified keys, `verify` runs argon2 on what is left. `cached`
//! answers from the cache alone, for a shared store whose record version
//! the gate reads in its one round trip per request.

use std::sync::Arc;

use argon2::password_hash::PasswordHash;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use std::sync::atomic::Ordering;

use super::recall;
use super::record::split_key;
use super::{same_digest, KeyCheck, KeyRecord, Keys, Verified};
use crate::auth::principal::Principal;

/// What `lookup` found.
#[derive(Debug)]
pub enum Lookup {
    /// Decided without argon2: not a stored key, or a secret seen before.
    Decided(KeyCheck),
    /// A stored key whose secret was never seen: `verify` decides.
    Unverified(Unverified),
}

/// A stored key whose secret argon2 has to check.
pub struct Unverified {
    record: Arc<KeyRecord>,
    candidates: Vec<String>,
    digest: u128,
    now: DateTime<Utc>,
}

/// Neither the stored hashes nor the presented key's digest (SPEC §2: no
/// hash in a `Debug` print).
impl std::fmt::Debug for Unverified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unverified")
            .field("record", &self.record)
            .field("candidates", &self.candidates.len())
            .finish_non_exhaustive()
    }
}

/// A key this process verified against the record version `version`:
/// valid while the shared store still holds that version.
#[derive(Debug, Clone)]
pub struct CachedKey {
    pub id: String,
    pub version: u64,
    pub principal: Principal,
}

impl Keys {
    /// Checks a presented key against the stored ones. A key verified
    /// before costs a digest and a comparison; a new one, one argon2
    /// verification on the hashing pool (two while a rolled key's old
    /// secret is in its grace period and neither was seen yet).
    pub async fn check(&self, key: &SecretString) -> anyhow::Result<KeyCheck> {
        match self.lookup(key.expose_secret()).await? {
            Lookup::Decided(check) => Ok(check),
            Lookup::Unverified(unverified) => self.verify(key, unverified).await,
        }
    }

    /// What can be decided about `key` without argon2: from the cache of
    /// verified keys alone while it agrees with the records (`recall`),
    /// else with one record read.
    pub async fn lookup(&self, presented: &str) -> anyhow::Result<Lookup> {
        let Some(id) = recall::id_of(presented) else {
            return Ok(Lookup::Decided(KeyCheck::NotStored));
        };
        let digest = self.digest(presented);
        if let Some(check) = self.recall(id, digest).await? {
            return Ok(Lookup::Decided(check));
        }
        let Some(parts) = split_key(presented) else {
            return Ok(Lookup::Decided(KeyCheck::NotStored));
        };
        // Read before the record: a change after it moves it on.
        let generation = self.generation.load(Ordering::Acquire);
        let now = Utc::now();
        let Some(record) = self.store.get_shared(parts.id).await? else {
            return Ok(Lookup::Decided(KeyCheck::NotStored));
        };
        if !self.owns_store {
            // A shared store: another instance may have rolled or re-scoped
            // the key since this process cached it. An entry verified
            // against another version than the one read after the record
            // is dropped, lest its secrets be taken for the record's (the
            // new secret of a key rolled elsewhere was refused here).
            let version = self.store.record_version(parts.id).await?;
            let cached = self.verified.read().get(parts.id).and_then(|k| k.version);
            if let Some(cached) = cached.filter(|&cached| Some(cached) != version) {
                self.forget_stale(parts.id, cached);
            }
        }
        // Decided under the cache's lock, which no await may hold: a secret
        // seen before is a hit; otherwise the hashes worth an argon2 check.
        let seen = {
            let in_grace = record.previous_hash(now).is_some();
            let verified = self.verified.read();
            let known = verified.get(parts.id);
            let hit = known.filter(|known| {
                same_digest(known.current, digest)
                    || (in_grace && same_digest(known.previous, digest))
            });
            match hit {
                Some(known) => Ok(known.principal.clone()),
                None => {
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
                    Err(candidates)
                }
            }
        };
        match seen {
            Ok(principal) => {
                crate::metrics::key_cache(true);
                let previous_until = record.previous.as_ref().map(|p| p.valid_until);
                self.agreed(&record.id, generation, record.expires_at, previous_until);
                if record.is_expired(now) {
                    return Ok(Lookup::Decided(KeyCheck::Expired));
                }
                self.touch(&record, now).await?;
                Ok(Lookup::Decided(KeyCheck::Valid(principal)))
            }
            Err(candidates) => Ok(Lookup::Unverified(Unverified {
                record,
                candidates,
                digest,
                now,
            })),
        }
    }

    /// Runs argon2 on the secret `lookup` could not decide.
    pub async fn verify(
        &self,
        key: &SecretString,
        unverified: Unverified,
    ) -> anyhow::Result<KeyCheck> {
        let Unverified {
            record,
            candidates,
            digest,
            now,
        } = unverified;
        crate::metrics::key_cache(false);
        let mut matched = None;
        for key_hash in candidates {
            if PasswordHash::new(&key_hash).is_err() {
                // A hand-edited or damaged record: no key can match it, so it
                // is an invalid key (counted as a failure), not a server error.
                self.report_malformed(&record.id);
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
        // A revocation or a roll may have happened while argon2 ran. The
        // version is read first: a change after it moves it on, so the
        // cached result is checked again at the next request.
        let generation = self.generation.load(Ordering::Acquire);
        let version = self.store.record_version(&record.id).await?;
        let Some(record) = self.store.get(&record.id).await? else {
            return Ok(KeyCheck::Invalid);
        };
        let principal = {
            let is_current = record.key_hash == matched;
            let previous_until = record.previous.as_ref().map(|p| p.valid_until);
            if !is_current && record.previous_hash(Utc::now()) != Some(matched.as_str()) {
                return Ok(KeyCheck::Invalid);
            }
            let mut verified = self.verified.write();
            if self.generation.load(Ordering::Acquire) != generation {
                // A record changed since the one above was read (a roll, a
                // revocation, a new scope): it may be stale, so nothing is
                // cached from it. The key was valid when this check began;
                // the next check reads the record again.
                drop(verified);
                return Ok(if record.is_expired(now) {
                    KeyCheck::Expired
                } else {
                    KeyCheck::Valid(record.principal())
                });
            }
            let entry = verified
                .entry(record.id.clone())
                .or_insert_with(|| Verified::of(&record, version));
            if entry.version != version {
                *entry = Verified::of(&record, version);
            }
            entry.previous_until = previous_until.map(|until| until.timestamp_millis());
            entry.expires_at = record.expires_at.map(|at| at.timestamp_millis());
            entry.generation = generation;
            if is_current {
                entry.current = Some(digest);
            } else {
                entry.previous = Some(digest);
            }
            entry.principal.clone()
        };
        if record.is_expired(now) {
            return Ok(KeyCheck::Expired);
        }
        self.touch(&record, now).await?;
        Ok(KeyCheck::Valid(principal))
    }

    /// The key `key` if this process verified it against a known record
    /// version and it has not expired; the caller must check the version
    /// is still the store's before trusting it.
    pub fn cached(&self, presented: &str) -> Option<CachedKey> {
        let parts = split_key(presented)?;
        let digest = self.digest(presented);
        let now = Utc::now().timestamp_millis();
        let verified = self.verified.read();
        let known = verified.get(parts.id)?;
        let in_grace = known.previous_until.is_some_and(|until| until > now);
        let hit =
            same_digest(known.current, digest) || (in_grace && same_digest(known.previous, digest));
        let expired = known.expires_at.is_some_and(|expiry| expiry <= now);
        if !hit || expired {
            return None;
        }
        Some(CachedKey {
            id: parts.id.to_owned(),
            version: known.version?,
            principal: known.principal.clone(),
        })
    }

    /// Drops the cached verification of key `id` made against `version`,
    /// which the store has moved past.
    pub fn forget_stale(&self, id: &str, version: u64) {
        let mut verified = self.verified.write();
        if verified
            .get(id)
            .is_some_and(|known| known.version == Some(version))
        {
            verified.remove(id);
        }
    }

    /// Notes a use of a cached key, at most once a minute per key.
    pub async fn note_use(&self, id: &str) -> anyhow::Result<()> {
        let now = Utc::now();
        let is_stale = |touched_at| recall::is_stale(touched_at, now.timestamp_millis());
        // A read lock on the common path; the write lock once a minute.
        if !self
            .verified
            .read()
            .get(id)
            .is_some_and(|known| is_stale(known.touched_at))
        {
            return Ok(());
        }
        let claimed = match self.verified.write().get_mut(id) {
            Some(known) if is_stale(known.touched_at) => {
                known.touched_at = Some(now.timestamp_millis());
                true
            }
            _ => false,
        };
        if claimed {
            self.store.touch(id, now).await?;
        }
        Ok(())
    }
}

impl Verified {
    fn of(record: &KeyRecord, version: Option<u64>) -> Self {
        Self {
            current: None,
            previous: None,
            principal: record.principal(),
            version,
            expires_at: record.expires_at.map(|at| at.timestamp_millis()),
            previous_until: None,
            touched_at: record.last_used_at.map(|at| at.timestamp_millis()),
            generation: 0,
        }
    }
}

impl Keys {
    /// Whether `key` has the form of a dashboard key (`ptk_<id>_<secret>`),
    /// so only the store can say whether it is one.
    pub fn has_stored_form(key: &str) -> bool {
        split_key(key).is_some()
    }

    /// The Redis hash of the records' versions, when the store is shared.
    pub fn versions_key(&self) -> Option<&str> {
        self.store.versions_key()
    }

    /// The current version of record `id` in a shared store.
    pub async fn version(&self, id: &str) -> Result<Option<u64>, crate::store::StoreError> {
        self.store.record_version(id).await
    }
}

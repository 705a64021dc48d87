//! A key verified before, decided from the cache of verified keys alone,
//! without reading its record: allowed only while nothing changed a record
//! since the cache entry last agreed with it (`Keys::generation`), and only
//! for a store this process owns (in a shared store another instance may
//! change a record at any time: there the record is read, or its version).

use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};

use super::{same_digest, KeyCheck, Keys, LAST_USED_RESOLUTION_SECS};
use crate::auth::principal::Principal;

/// The id of a key presented in the dashboard form (`ptk_<id>_...`),
/// without checking its characters: a cache hit proves the whole key is
/// one verified before, and a miss goes on to the full check.
pub(super) fn id_of(presented: &str) -> Option<&str> {
    let rest = presented.strip_prefix(super::KEY_PREFIX)?;
    // A plain byte scan: the id is a dozen characters, too short for the
    // set-up of `split_once`'s searcher to pay.
    let end = rest.bytes().position(|b| b == b'_')?;
    Some(&rest[..end])
}

/// Whether a last use noted at `touched_at` is worth noting again at `now`
/// (both in milliseconds since the Unix epoch).
pub(super) fn is_stale(touched_at: Option<i64>, now: i64) -> bool {
    touched_at.is_none_or(|at| now - at >= LAST_USED_RESOLUTION_SECS * 1000)
}

/// The wall clock in milliseconds since the Unix epoch.
fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

/// What the cache decided, and whether the last use is worth noting.
enum Recalled {
    Valid(Principal, bool),
    Expired,
}

impl Keys {
    /// The check of the key `id` whose presented secret has `digest`, when
    /// the cache can decide it alone; `None` sends it to the record.
    pub(super) async fn recall(&self, id: &str, digest: u128) -> anyhow::Result<Option<KeyCheck>> {
        let Some(recalled) = self.recalled(id, digest) else {
            return Ok(None);
        };
        crate::metrics::key_cache(true);
        match recalled {
            Recalled::Expired => Ok(Some(KeyCheck::Expired)),
            Recalled::Valid(principal, stale) => {
                if stale {
                    self.note_use(id).await?;
                }
                Ok(Some(KeyCheck::Valid(principal)))
            }
        }
    }

    /// `lookup`'s answer when it takes no wait and no write: `NotStored`
    /// for a key not in the dashboard form, `Valid` for a secret the cache
    /// verified whose last use needs no noting. `None` for anything else
    /// (then `lookup` decides), with nothing done or counted.
    pub fn lookup_now(&self, presented: &str) -> Option<KeyCheck> {
        let Some(id) = id_of(presented) else {
            return Some(KeyCheck::NotStored);
        };
        match self.recalled(id, self.digest(presented))? {
            Recalled::Valid(principal, false) => {
                crate::metrics::key_cache(true);
                Some(KeyCheck::Valid(principal))
            }
            Recalled::Valid(_, true) | Recalled::Expired => None,
        }
    }

    /// What the cache alone says of the key `id` presented with `digest`.
    fn recalled(&self, id: &str, digest: u128) -> Option<Recalled> {
        if !self.owns_store {
            return None;
        }
        let verified = self.verified.read();
        let known = verified.get(id)?;
        if known.generation != self.generation.load(Ordering::Acquire) {
            return None;
        }
        // Milliseconds since the epoch: the times of the entry are
        // compared to the clock without building a calendar date.
        let now = now_millis();
        let in_grace = known.previous_until.is_some_and(|until| until > now);
        let hit =
            same_digest(known.current, digest) || (in_grace && same_digest(known.previous, digest));
        if !hit {
            return None;
        }
        if known.expires_at.is_some_and(|expiry| expiry <= now) {
            return Some(Recalled::Expired);
        }
        let stale = is_stale(known.touched_at, now);
        Some(Recalled::Valid(known.principal.clone(), stale))
    }

    /// After the record of `id`, read when the generation was `generation`,
    /// confirmed a cached secret: the entry agrees with the record again.
    pub(super) fn agreed(
        &self,
        id: &str,
        generation: u64,
        expires_at: Option<DateTime<Utc>>,
        previous_until: Option<DateTime<Utc>>,
    ) {
        if !self.owns_store {
            return;
        }
        if let Some(known) = self.verified.write().get_mut(id) {
            known.generation = generation;
            known.expires_at = expires_at.map(|at| at.timestamp_millis());
            known.previous_until = previous_until.map(|until| until.timestamp_millis());
        }
    }
}

#[cfg(test)]
#[path = "recall_tests.rs"]
mod tests;

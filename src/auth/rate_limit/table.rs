//! `WindowCounter`: fixed windows per key in a table of fixed size, with
//! `reserve` as the only way to count, so a limit holds under concurrency.

use parking_lot::Mutex;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::sketch::ExhaustedFilter;
use super::Quota;

/// Slots per bucket. A key lives in one bucket; a full bucket evicts its
/// least-used slot, so a heavily failing key is the last to go.
const WAYS: usize = 8;

/// The fixed size of a counter: how many keys it tracks exactly, and how
/// many bits per row the filter of evicted exhausted keys has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub slots_log2: u32,
    pub filter_width_log2: u32,
}

impl Bounds {
    /// Failed API-key checks per client address: 65,536 addresses exactly.
    pub const API_FAILURES: Self = Self {
        slots_log2: 16,
        filter_width_log2: 20,
    };
    /// Failed logins and setup tokens per user name and per address.
    pub const LOGIN_FAILURES: Self = Self {
        slots_log2: 14,
        filter_width_log2: 16,
    };
    /// The hourly quota per API client (only authenticated clients).
    pub const QUOTAS: Self = Self {
        slots_log2: 14,
        filter_width_log2: 12,
    };

    pub fn slots(&self) -> usize {
        1 << self.slots_log2
    }

    /// Everything the counter allocates, fixed at creation.
    pub fn memory_bytes(&self) -> usize {
        self.slots() * std::mem::size_of::<Slot>()
            + ExhaustedFilter::memory_bytes(self.filter_width_log2)
    }
}

/// One key's window. Free when `used` is 0 or the window has passed.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    key: u128,
    started_ms: u64,
    last_ms: u64,
    used: u32,
    /// The limit the key was counted against (a key may have its own).
    limit: u32,
}

#[derive(Debug)]
struct Table {
    slots: Vec<Slot>,
    exhausted: ExhaustedFilter,
}

/// Counts events per key in fixed windows that start with a key's first
/// event: a new key may use its whole allowance at once, and the count
/// starts again when its window has passed. Memory is fixed by `Bounds`,
/// whatever the number of keys. A full bucket pushes out its least-used,
/// least recently counted key; one that had reached its limit is kept in
/// a filter that may wrongly refuse a fresh key but never frees it.
#[derive(Debug)]
pub struct WindowCounter {
    limit: u32,
    window_ms: u64,
    bucket_mask: usize,
    table: Mutex<Table>,
    /// How keys become the table's 128-bit digests.
    hash_keys: KeyHasher,
    /// No key is held exhausted (against the counter's own limit) at or
    /// after this time (ms since `epoch`): until a key reaches its limit,
    /// `exhausted_now` answers without hashing or locking. Only ever
    /// raised, under the table's lock.
    exhausted_before_ms: AtomicU64,
    epoch: Instant,
}

/// Two hashers with keys drawn at random for the counter, each giving 64
/// bits of a key's digest.
#[derive(Debug)]
enum KeyHasher {
    /// SipHash-1-3: a keyed digest nobody outside the process can predict,
    /// for keys a client chooses (its address, a user name).
    Keyed([RandomState; 2]),
    /// foldhash, randomly seeded: several times cheaper, for keys no client
    /// chooses (the ids of principals already authenticated).
    Fast([foldhash::quality::RandomState; 2]),
}

/// One counted event, taken before the work it guards. Dropping it (or
/// `keep`) leaves it counted; `refund` gives it back, as after a success.
#[derive(Debug)]
#[must_use = "a reservation is counted unless refunded"]
pub struct Reservation<'a> {
    counter: &'a WindowCounter,
    key: u128,
    started_ms: u64,
    quota: Quota,
}

impl Reservation<'_> {
    /// The standing of the key with this event counted.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// Leaves the event counted (a failure).
    pub fn keep(self) {}

    /// Takes the event back (a success), unless its window has been replaced.
    pub fn refund(self) {
        let mut table = self.counter.lock();
        let bucket = self.counter.bucket(self.key);
        if let Some(slot) = table.slots[bucket]
            .iter_mut()
            .find(|s| s.key == self.key && s.started_ms == self.started_ms && s.used > 0)
        {
            slot.used -= 1;
        }
    }
}

impl WindowCounter {
    pub fn new(limit: NonZeroU32, window: Duration, bounds: Bounds) -> Self {
        Self::with_hasher(
            limit,
            window,
            bounds,
            KeyHasher::Keyed([RandomState::new(), RandomState::new()]),
        )
    }

    /// A counter for keys no client chooses, such as the ids of principals
    /// the gate has already authenticated (the hourly quota): hashed with a
    /// randomly seeded foldhash instead of SipHash.
    pub fn for_trusted_keys(limit: NonZeroU32, window: Duration, bounds: Bounds) -> Self {
        let seeded = foldhash::quality::RandomState::default;
        Self::with_hasher(limit, window, bounds, KeyHasher::Fast([seeded(), seeded()]))
    }

    fn with_hasher(
        limit: NonZeroU32,
        window: Duration,
        bounds: Bounds,
        hash_keys: KeyHasher,
    ) -> Self {
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX / 4);
        Self {
            limit: limit.get(),
            window_ms,
            bucket_mask: (bounds.slots() / WAYS).max(1) - 1,
            table: Mutex::new(Table {
                slots: vec![Slot::default(); bounds.slots().max(WAYS)],
                exhausted: ExhaustedFilter::new(bounds.filter_width_log2, window_ms),
            }),
            hash_keys,
            exhausted_before_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, Table> {
        self.table.lock()
    }

    /// A digest under the counter's random keys: callers' keys may be long
    /// or (in a `new` counter) chosen by an attacker; the table holds 16
    /// bytes per key whose placement nobody can predict.
    fn digest(&self, key: &[u8]) -> u128 {
        fn both<S: BuildHasher>([high, low]: &[S; 2], key: &[u8]) -> u128 {
            u128::from(high.hash_one(key)) << 64 | u128::from(low.hash_one(key))
        }
        match &self.hash_keys {
            KeyHasher::Keyed(hashers) => both(hashers, key),
            KeyHasher::Fast(hashers) => both(hashers, key),
        }
    }

    /// Notes, under the table's lock, that some key may be held exhausted
    /// until `until_ms`.
    fn note_exhausted(&self, until_ms: u64) {
        self.exhausted_before_ms
            .fetch_max(until_ms, Ordering::Relaxed);
    }

    fn bucket(&self, key: u128) -> std::ops::Range<usize> {
        let mixed = (key >> 64) as u64 ^ (key as u64).rotate_left(29);
        let start = (mixed as usize & self.bucket_mask) * WAYS;
        start..start + WAYS
    }

    fn now_ms(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX / 4)
    }

    fn quota_of(&self, limit: u32, used: u32, until_ms: u64, now_ms: u64) -> Quota {
        let left_ms = until_ms.saturating_sub(now_ms);
        Quota {
            limit,
            remaining: limit.saturating_sub(used),
            reset_secs: left_ms.div_ceil(1000),
        }
    }

    fn is_live(&self, slot: &Slot, now_ms: u64) -> bool {
        slot.used > 0 && now_ms.saturating_sub(slot.started_ms) < self.window_ms
    }

    /// The standing of `key` before counting: `Err` when exhausted.
    fn standing(
        &self,
        table: &mut Table,
        key: u128,
        limit: u32,
        now_ms: u64,
    ) -> Result<Quota, Quota> {
        let bucket = self.bucket(key);
        let quota = match table.slots[bucket]
            .iter()
            .find(|s| s.key == key && self.is_live(s, now_ms))
        {
            Some(slot) => self.quota_of(limit, slot.used, slot.started_ms + self.window_ms, now_ms),
            None => match table.exhausted.exhausted_until(key, now_ms) {
                Some(until_ms) => self.quota_of(limit, limit, until_ms, now_ms),
                None => self.quota_of(limit, 0, now_ms + self.window_ms, now_ms),
            },
        };
        if quota.remaining == 0 {
            Err(quota)
        } else {
            Ok(quota)
        }
    }

    /// Counts one event for `key`, which `standing` allowed.
    fn take(&self, table: &mut Table, key: u128, limit: u32, now_ms: u64) -> (u64, Quota) {
        let bucket = self.bucket(key);
        if let Some(slot) = table.slots[bucket.clone()]
            .iter_mut()
            .find(|s| s.key == key && self.is_live(s, now_ms))
        {
            return self.count_in(slot, limit, now_ms);
        }
        self.insert(table, bucket, key, limit, now_ms)
    }

    /// `standing` then `take` in one pass over the key's bucket: `Err`
    /// with the exhausted quota, or the event counted.
    fn standing_and_take(
        &self,
        table: &mut Table,
        key: u128,
        limit: u32,
        now_ms: u64,
    ) -> Result<(u64, Quota), Quota> {
        let bucket = self.bucket(key);
        if let Some(slot) = table.slots[bucket.clone()]
            .iter_mut()
            .find(|s| s.key == key && self.is_live(s, now_ms))
        {
            if slot.used >= limit {
                let until_ms = slot.started_ms + self.window_ms;
                return Err(self.quota_of(limit, slot.used, until_ms, now_ms));
            }
            return Ok(self.count_in(slot, limit, now_ms));
        }
        if let Some(until_ms) = table.exhausted.exhausted_until(key, now_ms) {
            return Err(self.quota_of(limit, limit, until_ms, now_ms));
        }
        Ok(self.insert(table, bucket, key, limit, now_ms))
    }

    /// One more event in the live `slot`.
    fn count_in(&self, slot: &mut Slot, limit: u32, now_ms: u64) -> (u64, Quota) {
        slot.used += 1;
        slot.last_ms = now_ms;
        slot.limit = limit;
        let slot = *slot;
        if slot.used >= limit.min(self.limit) {
            self.note_exhausted(slot.started_ms + self.window_ms);
        }
        (
            slot.started_ms,
            self.quota_of(limit, slot.used, slot.started_ms + self.window_ms, now_ms),
        )
    }

    /// A new window for `key`, in the bucket's free or least-used slot.
    fn insert(
        &self,
        table: &mut Table,
        bucket: std::ops::Range<usize>,
        key: u128,
        limit: u32,
        now_ms: u64,
    ) -> (u64, Quota) {
        let victim = table.slots[bucket.clone()]
            .iter()
            .enumerate()
            .min_by_key(|(_, s)| match self.is_live(s, now_ms) {
                false => (0, 0, 0),
                true => (1, s.used, s.last_ms),
            })
            .map(|(way, _)| bucket.start + way)
            .expect("a bucket has slots");
        let evicted = table.slots[victim];
        if self.is_live(&evicted, now_ms) && evicted.used >= evicted.limit {
            table.exhausted.insert(evicted.key, now_ms);
            // The filter holds a key for up to two windows.
            self.note_exhausted(now_ms + 2 * self.window_ms);
        }
        let slot = Slot {
            key,
            started_ms: now_ms,
            last_ms: now_ms,
            used: 1,
            limit,
        };
        table.slots[victim] = slot;
        if slot.used >= limit.min(self.limit) {
            self.note_exhausted(now_ms + self.window_ms);
        }
        (
            now_ms,
            self.quota_of(limit, slot.used, now_ms + self.window_ms, now_ms),
        )
    }

    /// Takes one event for `key` if its allowance is not used up, before
    /// the caller does the work the limit guards: `Err` with the exhausted
    /// quota (whose `reset_secs` is the true wait) when it is.
    pub fn reserve(&self, key: &[u8]) -> Result<Reservation<'_>, Quota> {
        self.reserve_at(key, Instant::now())
    }

    pub fn reserve_at(&self, key: &[u8], now: Instant) -> Result<Reservation<'_>, Quota> {
        self.reserve_limited_at(key, self.limit, now)
    }

    /// `reserve_all_limited_at` for one key, without its vectors.
    fn reserve_limited_at(
        &self,
        key: &[u8],
        limit: u32,
        now: Instant,
    ) -> Result<Reservation<'_>, Quota> {
        let key = self.digest(key);
        let now_ms = self.now_ms(now);
        let (started_ms, quota) = self.standing_and_take(&mut self.lock(), key, limit, now_ms)?;
        Ok(Reservation {
            counter: self,
            key,
            started_ms,
            quota,
        })
    }

    /// One event for each of `keys`, all or none: refused if any is used up,
    /// with the longest wait among those that are.
    pub fn reserve_all(&self, keys: &[&[u8]]) -> Result<Vec<Reservation<'_>>, Quota> {
        self.reserve_all_at(keys, Instant::now())
    }

    pub fn reserve_all_at(
        &self,
        keys: &[&[u8]],
        now: Instant,
    ) -> Result<Vec<Reservation<'_>>, Quota> {
        self.reserve_all_limited_at(keys, self.limit, now)
    }

    fn reserve_all_limited_at(
        &self,
        keys: &[&[u8]],
        limit: u32,
        now: Instant,
    ) -> Result<Vec<Reservation<'_>>, Quota> {
        let digests: Vec<u128> = keys.iter().map(|key| self.digest(key)).collect();
        let now_ms = self.now_ms(now);
        let mut table = self.lock();
        let refused = digests
            .iter()
            .filter_map(|&key| self.standing(&mut table, key, limit, now_ms).err())
            .max_by_key(|quota| quota.reset_secs);
        if let Some(refused) = refused {
            return Err(refused);
        }
        Ok(digests
            .into_iter()
            .map(|key| {
                let (started_ms, quota) = self.take(&mut table, key, limit, now_ms);
                Reservation {
                    counter: self,
                    key,
                    started_ms,
                    quota,
                }
            })
            .collect())
    }

    /// Whether any key may be held exhausted against the counter's limit
    /// right now: `false` until one reaches it, then for its window (two,
    /// once pushed into the filter). Costs no hashing and no lock.
    pub fn any_exhausted_now(&self) -> bool {
        // Zero until a key first reaches its limit: no clock read before.
        let before_ms = self.exhausted_before_ms.load(Ordering::Relaxed);
        before_ms != 0 && self.now_ms(Instant::now()) < before_ms
    }

    /// The quota of `key` if it is used up, without counting anything: only
    /// for a request that verifies no secret (a key already known valid),
    /// never as a check before the work a reservation guards.
    pub fn exhausted_now(&self, key: &[u8]) -> Option<Quota> {
        if !self.any_exhausted_now() {
            return None;
        }
        let digest = self.digest(key);
        let now_ms = self.now_ms(Instant::now());
        let mut table = self.lock();
        self.standing(&mut table, digest, self.limit, now_ms).err()
    }

    /// Counts one event for `key` for good: `Ok` with the quota after it, or
    /// `Err` with the exhausted quota.
    pub fn try_acquire(&self, key: &[u8]) -> Result<Quota, Quota> {
        self.try_acquire_limited(key, self.limit)
    }

    /// `try_acquire` against a limit of this key's own (a key's own hourly
    /// limit) instead of the counter's.
    pub fn try_acquire_limited(&self, key: &[u8], limit: u32) -> Result<Quota, Quota> {
        let reservation = self.reserve_limited_at(key, limit, Instant::now())?;
        let quota = reservation.quota();
        reservation.keep();
        Ok(quota)
    }
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;

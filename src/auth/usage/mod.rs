//! Per-key usage: requests per hour for seven days, allowed and denied by
//! reason. The gate notes each request of a dashboard key in memory (one
//! atomic add); every few seconds, and at shutdown, the counts go to the
//! `UsageStore` in one batch.

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod counter_tests;
mod ring;
mod store;
mod store_redis;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServiceRequest;
use actix_web::HttpMessage;
use chrono::Utc;
use parking_lot::RwLock;
use rustc_hash::FxBuildHasher;

pub use ring::{by_day, hour_of, hour_start, Counts, Hour, KeyRing, Outcome, HOURS_KEPT};
pub use store::{FileUsageStore, Tally, Unsaved, UsageStore};
pub use store_redis::RedisUsageStore;

use super::api_key::ApiKey;
use super::dashboard_keys::Keys;
use super::gate::Refusal;
use super::principal::{Principal, PrincipalKind};

/// How often counts in memory are handed to the store.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(5);

/// The dashboard key a request was made with, once the gate has verified
/// it (valid or expired): only such requests are counted, so nobody can
/// add to a key's numbers without holding the key.
#[derive(Debug, Clone)]
struct KeyUse(Arc<str>);

/// Counts not yet stored, for the current hour and the one before
/// (indexed by the hour's parity), so a flush just after an hour ends
/// still files each request under its own hour.
#[derive(Debug, Default)]
struct Pending {
    by_parity: [[AtomicU32; Outcome::ALL.len()]; 2],
}

/// `hour_of(Utc::now())` without the calendar arithmetic of a `DateTime`.
fn current_hour() -> Hour {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    i64::try_from(since_epoch / 3600).unwrap_or(Hour::MAX)
}

fn parity(hour: Hour) -> usize {
    usize::from(hour.rem_euclid(2) == 1)
}

#[derive(Debug)]
pub struct UsageCounter {
    counting: bool,
    /// Keyed by ids of verified keys only (nobody can choose what is
    /// inserted), so a fast unkeyed hash is safe here.
    pending: RwLock<HashMap<Arc<str>, Arc<Pending>, FxBuildHasher>>,
    store: Arc<dyn UsageStore>,
    keys: Arc<Keys>,
    flushing: tokio::sync::Mutex<()>,
}

impl UsageCounter {
    /// `counting: false` turns the counting off (only the benchmark does,
    /// to measure what it costs).
    pub fn new(store: Arc<dyn UsageStore>, keys: Arc<Keys>, counting: bool) -> Self {
        Self {
            counting,
            pending: RwLock::new(HashMap::default()),
            store,
            keys,
            flushing: tokio::sync::Mutex::new(()),
        }
    }

    /// Notes one request of `key_id` in memory.
    pub fn count(&self, key_id: &Arc<str>, outcome: Outcome) {
        if self.counting {
            self.add(key_id, current_hour(), outcome.index(), 1);
        }
    }

    fn add(&self, key_id: &Arc<str>, hour: Hour, index: usize, n: u32) {
        let slot = |pending: &Pending| {
            pending.by_parity[parity(hour)][index].fetch_add(n, Ordering::Relaxed);
        };
        if let Some(pending) = self.pending.read().get(key_id) {
            slot(pending);
            return;
        }
        // The key's first request since the last flush of a revoked key,
        // or ever: its counters are made once.
        slot(self.pending.write().entry(key_id.clone()).or_default());
    }

    /// Hands the counts in memory to the store; what it cannot save stays
    /// in memory for the next flush. Usage of revoked keys is dropped.
    pub async fn flush(&self) {
        let _one_at_a_time = self.flushing.lock().await;
        let now = hour_of(Utc::now());
        let pending: Vec<(Arc<str>, Arc<Pending>)> = self
            .pending
            .read()
            .iter()
            .map(|(id, pending)| (id.clone(), pending.clone()))
            .collect();
        let mut batch = Vec::new();
        let mut revoked = Vec::new();
        for (key_id, pending) in pending {
            if self.is_revoked(&key_id).await {
                revoked.push(key_id);
                continue;
            }
            for hour in [now - 1, now] {
                let mut counts = Counts::default();
                for (n, slot) in counts.0.iter_mut().zip(&pending.by_parity[parity(hour)]) {
                    *n = slot.swap(0, Ordering::Relaxed);
                }
                if !counts.is_empty() {
                    batch.push(Tally {
                        key_id: key_id.clone(),
                        hour,
                        counts,
                    });
                }
            }
        }
        if !revoked.is_empty() {
            let mut map = self.pending.write();
            for key_id in &revoked {
                map.remove(key_id);
            }
        }
        if !batch.is_empty() {
            if let Err(unsaved) = self.store.add(batch).await {
                tracing::error!(
                    error = format!("{:#}", unsaved.error),
                    "key usage could not be saved; it is kept in memory and tried again"
                );
                for tally in unsaved.tallies {
                    for (index, n) in tally.counts.0.into_iter().enumerate() {
                        if n > 0 {
                            self.add(&tally.key_id, tally.hour, index, n);
                        }
                    }
                }
            }
        }
        self.forget_revoked().await;
    }

    /// Whether `key_id` is known to be gone; when the key store cannot
    /// answer, nothing is dropped.
    async fn is_revoked(&self, key_id: &str) -> bool {
        matches!(self.keys.get(key_id).await, Ok(None))
    }

    async fn forget_revoked(&self) {
        let stored = match self.store.key_ids().await {
            Ok(ids) => ids,
            Err(err) => {
                tracing::warn!(error = format!("{err:#}"), "listing key usage failed");
                return;
            }
        };
        for key_id in &stored {
            if !self.is_revoked(key_id).await {
                continue;
            }
            if let Err(err) = self.store.forget(key_id).await {
                tracing::warn!(
                    error = format!("{err:#}"),
                    "dropping a revoked key's usage failed"
                );
            }
        }
    }

    /// The 168 hours ending now for `key_id`, oldest first, with this
    /// instance's counts flushed first so they are included; `None` when
    /// no such key is stored.
    pub async fn series(&self, key_id: &str) -> anyhow::Result<Option<Vec<(Hour, Counts)>>> {
        if self.keys.get(key_id).await?.is_none() {
            return Ok(None);
        }
        self.flush().await;
        Ok(Some(self.store.series(key_id, hour_of(Utc::now())).await?))
    }

    /// The series of several keys, with one flush before.
    pub async fn series_of(&self, key_ids: &[String]) -> anyhow::Result<Vec<Vec<(Hour, Counts)>>> {
        self.flush().await;
        let now = hour_of(Utc::now());
        let mut all = Vec::with_capacity(key_ids.len());
        for key_id in key_ids {
            all.push(self.store.series(key_id, now).await?);
        }
        Ok(all)
    }

    /// Flushes every `FLUSH_INTERVAL` until the counter is dropped.
    pub fn spawn_flushing(counter: &Arc<Self>) {
        let counter = Arc::downgrade(counter);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(FLUSH_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(counter) = counter.upgrade() else {
                    break;
                };
                counter.flush().await;
            }
        });
    }
}

/// Notes on the request which dashboard key made it when the gate found
/// the key verified but expired; `identified` is returned unchanged. An
/// allowed request needs no note: the `Principal` the gate's middleware
/// puts into it names the key (`observe` reads it there).
pub fn attribute(
    req: &ServiceRequest,
    key: &ApiKey<'_>,
    identified: Result<Principal, Refusal>,
) -> Result<Principal, Refusal> {
    // Only a stored key whose secret verified is reported expired.
    if let Err(Refusal::ExpiredKey) = &identified {
        let key_id = key
            .expose()
            .strip_prefix("ptk_")
            .and_then(|rest| rest.split_once('_'))
            .map(|(id, _)| id.into());
        if let Some(key_id) = key_id {
            req.extensions_mut().insert(KeyUse(key_id));
        }
    }
    identified
}

/// `refusal` of a request whose key the gate identified as `principal`
/// (its own allowlist, its quota, a store error after the check): noted
/// on the request, so the denial counts in the key's usage.
pub fn refused(req: &ServiceRequest, principal: &Principal, refusal: Refusal) -> Refusal {
    if principal.kind == PrincipalKind::DashboardKey {
        req.extensions_mut().insert(KeyUse(principal.id.clone()));
    }
    refusal
}

impl UsageCounter {
    /// Counts a finished `/api` request of a dashboard key: the one the
    /// request's `Principal` names when it was let in, else the one
    /// `attribute` or `refused` noted on it, if any. A denial by
    /// `denial_code` (the error code answered), anything else as allowed.
    pub fn observe(&self, extensions: &actix_web::dev::Extensions, denial_code: Option<&str>) {
        if !self.counting {
            return;
        }
        let key_id = match extensions.get::<Principal>() {
            Some(principal) if principal.kind == PrincipalKind::DashboardKey => &principal.id,
            Some(_) => return,
            None => match extensions.get::<KeyUse>() {
                Some(KeyUse(key_id)) => key_id,
                None => return,
            },
        };
        let outcome = denial_code
            .and_then(Outcome::denial)
            .unwrap_or(Outcome::Allowed);
        self.count(key_id, outcome);
    }
}

//! `SharedLimits`: the API gate's limits in Redis (SPEC §7), exact across
//! instances — the hourly quota per API client and the failed-attempt
//! throttle per client address.
//!
//! A request with a key already known valid costs ONE round trip (`admit`,
//! one Lua call) that refuses an address with 20 confirmed failures, reads
//! the dashboard key's record version (a cached argon2 result is trusted
//! only while it matches), and charges the quota. A key that needs
//! verifying reserves a throttle slot first (`reserve`), with the same
//! rules as the local `FailureThrottle`: the throttle's hash keeps
//! `pending` beside `used`, so a window full of attempts still in flight
//! (on any instance) makes the next one wait, not fail. An instance that
//! dies with attempts in flight leaves them pending until the window ends:
//! they still count as used, so a guesser gains nothing from it. Keys are
//! BLAKE3 digests: no address or key id is stored in Redis.

use std::num::NonZeroU32;
use std::sync::LazyLock;
use std::time::Duration;

use tokio::time::Instant;

use super::failures::{MAX_WAIT, NO_PROGRESS_WAIT, RETRY_SOON_SECS};
use super::Quota;
use crate::store::redis::{unavailable, Redis};
use crate::store::StoreError;

/// How often a waiting reservation asks again whether a slot came free:
/// attempts in flight may resolve on another instance.
const POLL: Duration = Duration::from_millis(20);

/// KEYS: throttle, quota, record versions. ARGV: throttle limit (0: not
/// checked), throttle window ms, quota limit, quota window ms, key id ('' for none), the
/// version the caller verified. `{0, wait ms}` throttled; `{2, version}`
/// the record moved on (nothing charged); `{3, wait ms}` quota used up;
/// `{1, used, ms left}` admitted and charged.
static ADMIT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local f = redis.call('HMGET', KEYS[1], 'used', 'start', 'pending')
        local fused, fstart, fpending = tonumber(f[1] or '0'), tonumber(f[2] or '0'), tonumber(f[3] or '0')
        local fwindow = tonumber(ARGV[2])
        local flimit = tonumber(ARGV[1])
        if flimit > 0 and fused > 0 and now < fstart + fwindow and fused - fpending >= flimit then
          return {0, fstart + fwindow - now}
        end
        if ARGV[5] ~= '' then
          local version = redis.call('HGET', KEYS[3], ARGV[5]) or '0'
          if version ~= ARGV[6] then return {2, tonumber(version)} end
        end
        local limit, window = tonumber(ARGV[3]), tonumber(ARGV[4])
        local q = redis.call('HMGET', KEYS[2], 'used', 'start')
        local used, start = tonumber(q[1] or '0'), tonumber(q[2] or '0')
        if used == 0 or now >= start + window then used, start = 0, now end
        if used >= limit then return {3, start + window - now} end
        used = used + 1
        redis.call('HSET', KEYS[2], 'used', used, 'start', start)
        redis.call('PEXPIREAT', KEYS[2], start + window)
        return {1, used, start + window - now}
        ",
    )
});

/// KEYS: throttle. ARGV: limit, window ms. `{1, window start}` reserved
/// (counted and pending); `{0, wait ms, pending}` the window is full.
static RESERVE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
        local f = redis.call('HMGET', KEYS[1], 'used', 'start', 'pending')
        local used, start, pending = tonumber(f[1] or '0'), tonumber(f[2] or '0'), tonumber(f[3] or '0')
        if used == 0 or now >= start + window then used, start, pending = 0, now, 0 end
        if used >= limit then return {0, start + window - now, pending} end
        redis.call('HSET', KEYS[1], 'used', used + 1, 'start', start, 'pending', pending + 1)
        redis.call('PEXPIREAT', KEYS[1], start + window)
        return {1, start}
        ",
    )
});

/// KEYS: throttle. ARGV: the window start of the reservation, '1' to give
/// the slot back. The reservation stops being pending either way.
static RESOLVE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        if redis.call('HGET', KEYS[1], 'start') ~= ARGV[1] then return 0 end
        if tonumber(redis.call('HGET', KEYS[1], 'pending') or '0') > 0 then
          redis.call('HINCRBY', KEYS[1], 'pending', -1)
        end
        if ARGV[2] == '1' and tonumber(redis.call('HGET', KEYS[1], 'used') or '0') > 0 then
          redis.call('HINCRBY', KEYS[1], 'used', -1)
        end
        return 1
        ",
    )
});

/// What `admit` decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admitted(Quota),
    /// Too many confirmed failures from the address: wait this long.
    Throttled(Quota),
    /// The key's record is at another version than the one verified.
    Stale,
    RateLimited(Quota),
}

#[derive(Debug, Clone)]
pub struct SharedLimits {
    redis: Redis,
    failure_limit: u32,
    failure_window_ms: u64,
    quota_limit: u32,
    quota_window_ms: u64,
}

/// A throttle slot in Redis, taken before a secret is verified: `refund`
/// on success, `keep` on failure. Dropped unresolved (a cancelled
/// request), it is kept, in a task of its own.
#[derive(Debug)]
#[must_use = "an attempt is a failure unless refunded"]
pub struct SharedAttempt {
    limits: Option<SharedLimits>,
    key: String,
    start: i64,
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX / 4)
}

fn quota(limit: u32, used: i64, left_ms: i64) -> Quota {
    Quota {
        limit,
        remaining: limit.saturating_sub(u32::try_from(used).unwrap_or(u32::MAX)),
        reset_secs: u64::try_from(left_ms).unwrap_or(0).div_ceil(1000),
    }
}

impl SharedLimits {
    pub fn new(
        redis: &Redis,
        failure_limit: NonZeroU32,
        failure_window: Duration,
        quota_limit: NonZeroU32,
        quota_window: Duration,
    ) -> Self {
        Self {
            redis: redis.clone(),
            failure_limit: failure_limit.get(),
            failure_window_ms: millis(failure_window),
            quota_limit: quota_limit.get(),
            quota_window_ms: millis(quota_window),
        }
    }

    fn key(&self, counter: &str, key: &[u8]) -> String {
        let digest = blake3::hash(key);
        self.redis
            .key(&format!("gate:{counter}:{}", &digest.to_hex()[..32]))
    }

    /// One round trip for a request whose key is known valid: refused when
    /// `addr` has the limit of confirmed failures on record; for a
    /// dashboard key (`record` = versions hash, id, version verified),
    /// `Stale` when its record moved on; else the quota of `client` is
    /// charged against `limit` (the key's own, or `API_RATE_LIMIT`).
    pub async fn admit(
        &self,
        addr: &[u8],
        client: &[u8],
        limit: Option<u32>,
        record: Option<(&str, &str, u64)>,
    ) -> Result<Admission, StoreError> {
        self.run_admit(Some(addr), client, limit, record).await
    }

    async fn run_admit(
        &self,
        addr: Option<&[u8]>,
        client: &[u8],
        limit: Option<u32>,
        record: Option<(&str, &str, u64)>,
    ) -> Result<Admission, StoreError> {
        self.redis.writable()?;
        let limit = limit.unwrap_or(self.quota_limit);
        let throttle = self.key("failures", addr.unwrap_or_default());
        let mut script = ADMIT.prepare_invoke();
        script
            .key(&throttle)
            .key(self.key("quota", client))
            .key(record.map_or(throttle.as_str(), |(versions, _, _)| versions))
            .arg(addr.map_or(0, |_| self.failure_limit))
            .arg(self.failure_window_ms)
            .arg(limit)
            .arg(self.quota_window_ms)
            .arg(record.map_or("", |(_, id, _)| id))
            .arg(record.map_or(0, |(_, _, version)| version));
        let reply: Vec<i64> = script
            .invoke_async(&mut self.redis.conn())
            .await
            .map_err(unavailable("cannot check the gate's limits in Redis"))?;
        let at = |i: usize| reply.get(i).copied().unwrap_or(0);
        Ok(match at(0) {
            0 => Admission::Throttled(quota(self.failure_limit, i64::MAX, at(1))),
            2 => Admission::Stale,
            3 => Admission::RateLimited(quota(limit, i64::MAX, at(1))),
            _ => Admission::Admitted(quota(limit, at(1), at(2))),
        })
    }

    /// Charges the quota of `client` alone (after a verification, whose
    /// throttle slot was taken by `reserve`).
    pub async fn charge(&self, client: &[u8], limit: Option<u32>) -> Result<Admission, StoreError> {
        self.run_admit(None, client, limit, None).await
    }

    /// Takes a throttle slot for an attempt that must be verified. A window
    /// full of confirmed failures refuses at once (`Ok(Err)`); one with
    /// attempts in flight is asked again every `POLL` until a slot comes
    /// free, for as long as the in-flight count keeps moving.
    pub async fn reserve(&self, addr: &[u8]) -> Result<Result<SharedAttempt, Quota>, StoreError> {
        let key = self.key("failures", addr);
        let give_up = Instant::now() + MAX_WAIT;
        let mut progress = (Instant::now(), None);
        loop {
            self.redis.writable()?;
            let mut script = RESERVE.prepare_invoke();
            script
                .key(&key)
                .arg(self.failure_limit)
                .arg(self.failure_window_ms);
            let reply: Vec<i64> = script
                .invoke_async(&mut self.redis.conn())
                .await
                .map_err(unavailable("cannot count a failed attempt in Redis"))?;
            let at = |i: usize| reply.get(i).copied().unwrap_or(0);
            if at(0) == 1 {
                return Ok(Ok(SharedAttempt {
                    limits: Some(self.clone()),
                    key,
                    start: at(1),
                }));
            }
            let refused = quota(self.failure_limit, i64::MAX, at(1));
            let pending = at(2);
            let now = Instant::now();
            if progress.1 != Some(pending) {
                progress = (now, Some(pending));
            }
            if pending == 0 {
                return Ok(Err(refused));
            }
            if now >= give_up || now >= progress.0 + NO_PROGRESS_WAIT {
                // Busy with attempts in flight, not throttled: retry soon.
                return Ok(Err(Quota {
                    reset_secs: RETRY_SOON_SECS.min(refused.reset_secs),
                    ..refused
                }));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

impl SharedAttempt {
    /// The secret verified: the slot is given back.
    pub async fn refund(mut self) -> Result<(), StoreError> {
        self.resolve(true).await
    }

    /// The secret was wrong: the slot stays counted.
    pub async fn keep(mut self) -> Result<(), StoreError> {
        self.resolve(false).await
    }

    async fn resolve(&mut self, refund: bool) -> Result<(), StoreError> {
        let Some(limits) = self.limits.take() else {
            return Ok(());
        };
        resolve(&limits, &self.key, self.start, refund).await
    }
}

async fn resolve(
    limits: &SharedLimits,
    key: &str,
    start: i64,
    refund: bool,
) -> Result<(), StoreError> {
    let mut script = RESOLVE.prepare_invoke();
    script
        .key(key)
        .arg(start)
        .arg(if refund { "1" } else { "0" });
    let _: i64 = script
        .invoke_async(&mut limits.redis.conn())
        .await
        .map_err(unavailable("cannot resolve a failed attempt in Redis"))?;
    Ok(())
}

impl Drop for SharedAttempt {
    fn drop(&mut self) {
        let Some(limits) = self.limits.take() else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (key, start) = (std::mem::take(&mut self.key), self.start);
            runtime.spawn(async move {
                if let Err(err) = resolve(&limits, &key, start, false).await {
                    tracing::warn!(error = %err, "a cancelled attempt stays pending in Redis until its window ends");
                }
            });
        }
    }
}

#[cfg(test)]
#[path = "shared_tests.rs"]
mod tests;

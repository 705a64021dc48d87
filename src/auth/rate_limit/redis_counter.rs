//! `RedisWindowCounter`: the fixed-window counters of `WindowCounter` kept
//! in Redis, so a quota or a throttle is exact across instances (SPEC §7).
//! The same rules: a window starts with a key's first event; `reserve`
//! takes the slot *before* the work it guards, all keys or none, in one
//! Lua call; a refund gives it back only within the same window. Each key
//! is a small hash (`used`, `start`) that Redis deletes when its window
//! ends, so memory follows the keys active in the last window. Times come
//! from the Redis server's clock, so instances agree on windows. Keys are
//! stored as BLAKE3 digests (no client address or key id in Redis).

use std::num::NonZeroU32;
use std::sync::LazyLock;
use std::time::Duration;

use super::Quota;
use crate::store::redis::{unavailable, Redis};
use crate::store::StoreError;

/// ARGV: limit, window ms. Refuses (`{0, wait ms}`) when any key is used
/// up, with the longest wait; otherwise counts one event on every key and
/// returns `{1, then per key: window start ms, used, ms left}`.
static RESERVE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
        local states, wait = {}, -1
        for i, key in ipairs(KEYS) do
          local used = tonumber(redis.call('HGET', key, 'used') or '0')
          local start = tonumber(redis.call('HGET', key, 'start') or '0')
          if used == 0 or now >= start + window then used, start = 0, now end
          states[i] = {used, start}
          if used >= limit and start + window - now > wait then wait = start + window - now end
        end
        if wait >= 0 then return {0, wait} end
        local out = {1}
        for i, key in ipairs(KEYS) do
          local used, start = states[i][1] + 1, states[i][2]
          redis.call('HSET', key, 'used', used, 'start', start)
          redis.call('PEXPIREAT', key, start + window)
          table.insert(out, start)
          table.insert(out, used)
          table.insert(out, start + window - now)
        end
        return out
        ",
    )
});

/// ARGV: per key, the window start its event was counted in. Takes each
/// event back if that window is still the key's.
static REFUND: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        for i, key in ipairs(KEYS) do
          if redis.call('HGET', key, 'start') == ARGV[i] and tonumber(redis.call('HGET', key, 'used') or '0') > 0 then
            redis.call('HINCRBY', key, 'used', -1)
          end
        end
        return 1
        ",
    )
});

#[derive(Debug)]
pub struct RedisWindowCounter {
    redis: Redis,
    name: String,
    limit: u32,
    window_ms: u64,
}

/// Events counted by `reserve`, before the work they guard. Dropping it
/// (or `keep`) leaves them counted; `refund` gives them back.
#[derive(Debug)]
#[must_use = "a reservation is counted unless refunded"]
pub struct RedisReservation<'a> {
    counter: &'a RedisWindowCounter,
    keys: Vec<String>,
    starts: Vec<String>,
    quotas: Vec<Quota>,
}

impl RedisReservation<'_> {
    /// The standing of each key with this event counted, in order.
    pub fn quotas(&self) -> &[Quota] {
        &self.quotas
    }

    /// Leaves the events counted (a failure).
    pub fn keep(self) {}

    /// Takes the events back (a success), unless their window was replaced.
    pub async fn refund(self) -> Result<(), StoreError> {
        self.counter.redis.writable()?;
        let mut script = REFUND.prepare_invoke();
        script.key(&self.keys).arg(&self.starts);
        let _: u8 = script
            .invoke_async(&mut self.counter.redis.conn())
            .await
            .map_err(unavailable("cannot refund a counted event in Redis"))?;
        Ok(())
    }
}

impl RedisWindowCounter {
    /// The counter `name` (its keys are `<prefix>:<name>:<digest>`):
    /// `limit` events per key per `window`.
    pub fn new(redis: &Redis, name: &str, limit: NonZeroU32, window: Duration) -> Self {
        Self {
            redis: redis.clone(),
            name: name.to_owned(),
            limit: limit.get(),
            window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX / 4),
        }
    }

    fn key(&self, key: &[u8]) -> String {
        let digest = blake3::hash(key);
        self.redis
            .key(&format!("{}:{}", self.name, &digest.to_hex()[..32]))
    }

    fn quota(&self, limit: u32, used: u64, left_ms: u64) -> Quota {
        Quota {
            limit,
            remaining: limit.saturating_sub(u32::try_from(used).unwrap_or(u32::MAX)),
            reset_secs: left_ms.div_ceil(1000),
        }
    }

    /// One event for each of `keys`, all or none: `Err` with the exhausted
    /// quota (the longest wait) when any is used up.
    pub async fn reserve_all(
        &self,
        keys: &[&[u8]],
    ) -> Result<Result<RedisReservation<'_>, Quota>, StoreError> {
        self.reserve_limited(keys, self.limit).await
    }

    async fn reserve_limited(
        &self,
        keys: &[&[u8]],
        limit: u32,
    ) -> Result<Result<RedisReservation<'_>, Quota>, StoreError> {
        self.redis.writable()?;
        let keys: Vec<String> = keys.iter().map(|key| self.key(key)).collect();
        let mut script = RESERVE.prepare_invoke();
        script.key(&keys).arg(limit).arg(self.window_ms);
        let reply: Vec<i64> = script
            .invoke_async(&mut self.redis.conn())
            .await
            .map_err(unavailable("cannot count an event in Redis"))?;
        let as_u64 = |value: i64| u64::try_from(value).unwrap_or(0);
        if reply.first() != Some(&1) {
            let wait = reply.get(1).copied().map_or(self.window_ms, as_u64);
            return Ok(Err(self.quota(limit, u64::from(limit), wait)));
        }
        let per_key = &reply[1..];
        Ok(Ok(RedisReservation {
            counter: self,
            starts: per_key.chunks(3).map(|k| k[0].to_string()).collect(),
            quotas: per_key
                .chunks(3)
                .map(|k| self.quota(limit, as_u64(k[1]), as_u64(k[2])))
                .collect(),
            keys,
        }))
    }

    /// Forgets `key`'s events in the current window (an operator lifting
    /// a lockout).
    pub async fn forget(&self, key: &[u8]) -> Result<(), StoreError> {
        self.redis.writable()?;
        let () = redis::cmd("DEL")
            .arg(self.key(key))
            .query_async(&mut self.redis.conn())
            .await
            .map_err(unavailable("cannot clear a counter in Redis"))?;
        Ok(())
    }

    /// Counts one event for `key` for good against `limit` (a key's own
    /// hourly limit): `Ok` with the quota after it, `Err` with the
    /// exhausted quota.
    pub async fn try_acquire_limited(
        &self,
        key: &[u8],
        limit: u32,
    ) -> Result<Result<Quota, Quota>, StoreError> {
        Ok(self
            .reserve_limited(&[key], limit)
            .await?
            .map(|reservation| reservation.quotas()[0]))
    }
}

#[cfg(test)]
#[path = "redis_counter_tests.rs"]
mod tests;

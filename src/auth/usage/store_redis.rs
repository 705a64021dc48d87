//! `RedisUsageStore`: per-key usage in Redis, shared by every instance
//! (SPEC §7). One hash per key, `<prefix>:usage:<id>`, with a field
//! `<hour>:<outcome>` per counted hour and outcome; a set names the keys
//! with usage. Each key's part of a batch is one Lua call (all of it
//! counted or none), which also drops the key's hours older than seven
//! days, so a hash never outgrows 168 hours.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use super::ring::{Counts, Hour, KeyRing, Outcome, HOURS_KEPT};
use super::store::{Tally, Unsaved, UsageStore};
use crate::store::redis::{unavailable, Redis};

/// KEYS: the set of keys with usage, the key's hash. ARGV: the key id,
/// the oldest hour kept, then field and increment pairs.
static ADD: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        redis.call('SADD', KEYS[1], ARGV[1])
        for i = 3, #ARGV, 2 do redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1]) end
        local oldest = tonumber(ARGV[2])
        for _, field in ipairs(redis.call('HKEYS', KEYS[2])) do
          local hour = tonumber(string.match(field, '^(-?%d+):'))
          if hour == nil or hour < oldest then redis.call('HDEL', KEYS[2], field) end
        end
        return 1
        ",
    )
});

#[derive(Debug, Clone)]
pub struct RedisUsageStore {
    redis: Redis,
}

impl RedisUsageStore {
    pub fn new(redis: Redis) -> Self {
        Self { redis }
    }

    fn keys_set(&self) -> String {
        self.redis.key("usage-keys")
    }

    fn hash(&self, key_id: &str) -> String {
        self.redis.key(&format!("usage:{key_id}"))
    }

    async fn add_key(&self, key_id: &str, tallies: &[Tally]) -> anyhow::Result<()> {
        self.redis.writable()?;
        let newest = tallies.iter().map(|t| t.hour).max().unwrap_or_default();
        let mut script = ADD.prepare_invoke();
        script
            .key(self.keys_set())
            .key(self.hash(key_id))
            .arg(key_id)
            .arg(newest - HOURS_KEPT as i64 + 1);
        for tally in tallies {
            for outcome in Outcome::ALL {
                let n = tally.counts.get(outcome);
                if n > 0 {
                    script
                        .arg(format!("{}:{}", tally.hour, outcome.code()))
                        .arg(n);
                }
            }
        }
        let _: u8 = script
            .invoke_async(&mut self.redis.conn())
            .await
            .map_err(unavailable("cannot save usage in Redis"))?;
        Ok(())
    }

    /// Replaces a key's usage with `buckets` (the hours a file store
    /// kept): how `portico migrate to-redis` copies it, so that copying
    /// twice counts nothing twice.
    pub async fn replace(&self, key_id: &str, buckets: &[(Hour, Counts)]) -> anyhow::Result<()> {
        self.redis.writable()?;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("DEL")
            .arg(self.hash(key_id))
            .ignore()
            .cmd("SADD")
            .arg(self.keys_set())
            .arg(key_id)
            .ignore();
        for (hour, counts) in buckets {
            for outcome in Outcome::ALL {
                let n = counts.get(outcome);
                if n > 0 {
                    pipe.cmd("HSET")
                        .arg(self.hash(key_id))
                        .arg(format!("{hour}:{}", outcome.code()))
                        .arg(n)
                        .ignore();
                }
            }
        }
        let () = pipe
            .query_async(&mut self.redis.conn())
            .await
            .map_err(unavailable("cannot save usage in Redis"))?;
        Ok(())
    }
}

fn ring_of(fields: HashMap<String, u32>) -> KeyRing {
    let mut by_hour: HashMap<Hour, Counts> = HashMap::new();
    for (field, n) in fields {
        let Some((hour, code)) = field.split_once(':') else {
            continue;
        };
        let (Ok(hour), Some(outcome)) = (
            hour.parse::<Hour>(),
            Outcome::ALL.iter().find(|o| o.code() == code),
        ) else {
            continue;
        };
        by_hour.entry(hour).or_default().0[outcome.index()] = n;
    }
    let mut buckets: Vec<(Hour, Counts)> = by_hour.into_iter().collect();
    buckets.sort_by_key(|(hour, _)| *hour);
    KeyRing::from_buckets(&buckets)
}

#[async_trait::async_trait]
impl UsageStore for RedisUsageStore {
    async fn add(&self, batch: Vec<Tally>) -> Result<(), Unsaved> {
        let mut by_key: HashMap<Arc<str>, Vec<Tally>> = HashMap::new();
        for tally in batch {
            by_key.entry(tally.key_id.clone()).or_default().push(tally);
        }
        let mut unsaved = Vec::new();
        let mut first_error = None;
        for (key_id, tallies) in by_key {
            if let Err(error) = self.add_key(&key_id, &tallies).await {
                first_error.get_or_insert(error);
                unsaved.extend(tallies);
            }
        }
        match first_error {
            None => Ok(()),
            Some(error) => Err(Unsaved {
                tallies: unsaved,
                error,
            }),
        }
    }

    async fn series(&self, key_id: &str, now: Hour) -> anyhow::Result<Vec<(Hour, Counts)>> {
        let fields: HashMap<String, u32> = redis::cmd("HGETALL")
            .arg(self.hash(key_id))
            .query_async(&mut self.redis.conn())
            .await
            .map_err(unavailable("cannot read usage from Redis"))?;
        Ok(ring_of(fields).series(now))
    }

    async fn key_ids(&self) -> anyhow::Result<Vec<String>> {
        Ok(redis::cmd("SMEMBERS")
            .arg(self.keys_set())
            .query_async(&mut self.redis.conn())
            .await
            .map_err(unavailable("cannot list usage in Redis"))?)
    }

    async fn forget(&self, key_id: &str) -> anyhow::Result<()> {
        self.redis.writable()?;
        let () = redis::pipe()
            .atomic()
            .cmd("DEL")
            .arg(self.hash(key_id))
            .ignore()
            .cmd("SREM")
            .arg(self.keys_set())
            .arg(key_id)
            .ignore()
            .query_async(&mut self.redis.conn())
            .await
            .map_err(unavailable("cannot drop usage in Redis"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::redis::test_server;

    fn tally(key: &str, hour: Hour, allowed: u32) -> Tally {
        let mut counts = Counts::default();
        counts.0[Outcome::Allowed.index()] = allowed;
        Tally {
            key_id: key.into(),
            hour,
            counts,
        }
    }

    #[tokio::test]
    async fn the_redis_store_passes_the_usage_store_conformance_suite() {
        let redis = test_server::connect("usage").await;
        super::super::conformance::conformance(&RedisUsageStore::new(redis)).await;
    }

    #[tokio::test]
    async fn hours_older_than_seven_days_are_dropped_from_redis() {
        let redis = test_server::connect("usage-old").await;
        let store = RedisUsageStore::new(redis.clone());
        store.add(vec![tally("k1", 10, 5)]).await.unwrap();
        store.add(vec![tally("k1", 10 + 168, 1)]).await.unwrap();
        let fields: HashMap<String, u32> = redis::cmd("HGETALL")
            .arg(store.hash("k1"))
            .query_async(&mut redis.conn())
            .await
            .unwrap();
        assert_eq!(fields.keys().collect::<Vec<_>>(), ["178:allowed"]);
    }

    #[tokio::test]
    async fn replacing_a_keys_usage_twice_counts_it_once() {
        let redis = test_server::connect("usage-replace").await;
        let store = RedisUsageStore::new(redis);
        let mut counts = Counts::default();
        counts.0[Outcome::Allowed.index()] = 3;
        for _ in 0..2 {
            store.replace("k2", &[(40, counts)]).await.unwrap();
        }
        assert_eq!(store.series("k2", 40).await.unwrap()[167].1.allowed(), 3);
        assert_eq!(store.key_ids().await.unwrap(), ["k2"]);
    }

    #[tokio::test]
    async fn a_failed_redis_write_hands_the_tallies_back() {
        let redis = test_server::connect("usage-fault").await;
        let store = RedisUsageStore::new(redis.clone());
        crate::store::redis::inject_write_fault(redis.prefix(), true);
        let unsaved = store.add(vec![tally("k3", 9, 1)]).await.unwrap_err();
        crate::store::redis::inject_write_fault(redis.prefix(), false);
        assert_eq!(unsaved.tallies, vec![tally("k3", 9, 1)]);
        assert!(store.series("k3", 9).await.unwrap()[167].1.is_empty());
    }
}

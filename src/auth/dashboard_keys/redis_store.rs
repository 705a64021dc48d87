//! `RedisKeyStore`: the dashboard keys' records in Redis, shared by every
//! instance (SPEC §7). One hash holds the records (id → JSON), another
//! each record's version, which every insert, replace and removal moves on
//! (never a last-used touch): the version an instance saw is what its
//! cache of verified keys can check against, so a revocation elsewhere is
//! seen at the next request. Each write is one Lua call, so the name rule
//! and the compare-and-swap hold across instances. Last-used times are
//! kept in memory and written by `flush`, as in the file back end.

use std::collections::HashMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use super::{KeyRecord, KeyStore};
use crate::store::redis::{unavailable, undecodable, Redis};
use crate::store::StoreError;

/// Stores ARGV[4] as record ARGV[1] unless the id is taken or a key of
/// user ARGV[2] is named ARGV[3] (compared in lower case, ASCII only as in
/// the file back end: Redis's Lua lowers in the C locale).
static INSERT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
        for _, json in ipairs(redis.call('HVALS', KEYS[1])) do
          local other = cjson.decode(json)
          if other.userId == ARGV[2] and string.lower(other.name) == ARGV[3] then
            return 0
          end
        end
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
        redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
        return 1
        ",
    )
});

/// Replaces record ARGV[1] by ARGV[3] if it is still exactly ARGV[2];
/// moves its version on when ARGV[4] is '1'.
static REPLACE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
        if ARGV[4] == '1' then redis.call('HINCRBY', KEYS[2], ARGV[1], 1) end
        return 1
        ",
    )
});

/// Removes record ARGV[1], moves its version on, and returns it.
static REMOVE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        local record = redis.call('HGET', KEYS[1], ARGV[1])
        if not record then return false end
        redis.call('HDEL', KEYS[1], ARGV[1])
        redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
        return record
        ",
    )
});

/// How often a last-used write reads again after losing a race.
const TOUCH_ATTEMPTS: usize = 8;

#[derive(Debug)]
pub struct RedisKeyStore {
    redis: Redis,
    records: String,
    versions: String,
    /// Last-used times not written yet, by key id.
    touches: Mutex<HashMap<String, DateTime<Utc>>>,
}

fn decode(json: &str) -> Result<KeyRecord, StoreError> {
    serde_json::from_str(json).map_err(undecodable("a key record in Redis is not valid"))
}

fn encode(record: &KeyRecord) -> Result<String, StoreError> {
    serde_json::to_string(record).map_err(undecodable("cannot serialise a key record"))
}

impl RedisKeyStore {
    pub fn new(redis: Redis) -> Self {
        Self {
            records: redis.key("keys"),
            versions: redis.key("keys:versions"),
            redis,
            touches: Mutex::new(HashMap::new()),
        }
    }

    /// The version of record `id`: 0 before it was ever stored, then moved
    /// on by every insert, replace and removal.
    pub async fn version(&self, id: &str) -> Result<u64, StoreError> {
        let version: Option<u64> = redis::cmd("HGET")
            .arg(&self.versions)
            .arg(id)
            .query_async(&mut self.redis.conn())
            .await
            .map_err(unavailable("cannot read a key version from Redis"))?;
        Ok(version.unwrap_or(0))
    }

    /// The record as stored, with a later last-used time kept in memory.
    fn with_touch(&self, mut record: KeyRecord) -> KeyRecord {
        if let Some(&at) = self.touches.lock().get(&record.id) {
            if record.last_used_at.is_none_or(|used| used < at) {
                record.last_used_at = Some(at);
            }
        }
        record
    }

    async fn get_raw(&self, id: &str) -> Result<Option<String>, StoreError> {
        redis::cmd("HGET")
            .arg(&self.records)
            .arg(id)
            .query_async(&mut self.redis.conn())
            .await
            .map_err(unavailable("cannot read a key record from Redis"))
    }

    /// Replaces the stored `raw` record `id` by `next`; `false` when it
    /// changed in between.
    async fn swap(
        &self,
        id: &str,
        raw: &str,
        next: &str,
        new_version: bool,
    ) -> Result<bool, StoreError> {
        let swapped: u8 = REPLACE
            .key(&self.records)
            .key(&self.versions)
            .arg(id)
            .arg(raw)
            .arg(next)
            .arg(if new_version { "1" } else { "0" })
            .invoke_async(&mut self.redis.conn())
            .await
            .map_err(unavailable("cannot write a key record to Redis"))?;
        Ok(swapped == 1)
    }

    /// Writes one last-used time unless the stored one is later.
    async fn write_touch(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        for _ in 0..TOUCH_ATTEMPTS {
            let Some(raw) = self.get_raw(id).await? else {
                return Ok(());
            };
            let mut record = decode(&raw)?;
            if record.last_used_at.is_some_and(|used| used >= at) {
                return Ok(());
            }
            record.last_used_at = Some(at);
            if self.swap(id, &raw, &encode(&record)?, false).await? {
                return Ok(());
            }
        }
        Err(StoreError::Conflict)
    }

    /// Puts back touches a failed flush did not write, keeping any later
    /// one recorded meanwhile.
    fn keep_touches(&self, unwritten: impl IntoIterator<Item = (String, DateTime<Utc>)>) {
        let mut touches = self.touches.lock();
        for (id, at) in unwritten {
            let kept = touches.entry(id).or_insert(at);
            *kept = (*kept).max(at);
        }
    }
}

#[async_trait]
impl KeyStore for RedisKeyStore {
    async fn list(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let all: Vec<String> = redis::cmd("HVALS")
            .arg(&self.records)
            .query_async(&mut self.redis.conn())
            .await
            .map_err(unavailable("cannot read the key records from Redis"))?;
        all.iter()
            .map(|json| decode(json).map(|record| self.with_touch(record)))
            .collect()
    }

    async fn get(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        match self.get_raw(id).await? {
            Some(json) => Ok(Some(self.with_touch(decode(&json)?))),
            None => Ok(None),
        }
    }

    async fn insert(&self, record: KeyRecord) -> Result<(), StoreError> {
        self.redis.writable()?;
        let inserted: u8 = INSERT
            .key(&self.records)
            .key(&self.versions)
            .arg(&record.id)
            .arg(&record.user_id)
            .arg(record.name.to_ascii_lowercase())
            .arg(encode(&record)?)
            .invoke_async(&mut self.redis.conn())
            .await
            .map_err(unavailable("cannot store a key record in Redis"))?;
        if inserted == 0 {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        self.redis.writable()?;
        let removed: Option<String> = REMOVE
            .key(&self.records)
            .key(&self.versions)
            .arg(id)
            .invoke_async(&mut self.redis.conn())
            .await
            .map_err(unavailable("cannot remove a key record from Redis"))?;
        let touched = self.touches.lock().remove(id);
        match removed {
            Some(json) => {
                let mut record = decode(&json)?;
                if let Some(at) = touched.filter(|&at| record.last_used_at.is_none_or(|u| u < at)) {
                    record.last_used_at = Some(at);
                }
                Ok(Some(record))
            }
            None => Ok(None),
        }
    }

    async fn replace(&self, current: &KeyRecord, next: KeyRecord) -> Result<(), StoreError> {
        self.redis.writable()?;
        let Some(raw) = self.get_raw(&current.id).await? else {
            return Err(StoreError::Conflict);
        };
        if self.with_touch(decode(&raw)?) != *current {
            return Err(StoreError::Conflict);
        }
        if !self.swap(&current.id, &raw, &encode(&next)?, true).await? {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    async fn touch(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.keep_touches([(id.to_owned(), at)]);
        Ok(())
    }

    async fn record_version(&self, id: &str) -> Result<Option<u64>, StoreError> {
        Ok(Some(self.version(id).await?))
    }

    fn versions_key(&self) -> Option<&str> {
        Some(&self.versions)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        let pending: Vec<_> = self.touches.lock().drain().collect();
        if pending.is_empty() {
            return Ok(());
        }
        if let Err(err) = self.redis.writable() {
            self.keep_touches(pending);
            return Err(err);
        }
        let mut pending = pending.into_iter();
        while let Some((id, at)) = pending.next() {
            if let Err(err) = self.write_touch(&id, at).await {
                self.keep_touches(std::iter::once((id, at)).chain(pending));
                return Err(err);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "redis_store_tests.rs"]
mod tests;

//! `RedisDocument<T>`: one small JSON document in a Redis hash (fields
//! `value` and `version`), the Redis counterpart of `Document<T>` for
//! collections that are read whole and written rarely (users, the
//! workspace registry). Every write is a compare-and-swap on the version
//! in one Lua call, so instances sharing the document never lose one
//! another's writes; a failed write changes nothing.

use std::marker::PhantomData;
use std::sync::LazyLock;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{unavailable, undecodable, Redis};
use crate::store::{StoreError, Versioned};

/// Writes ARGV[2] if the version is still ARGV[1]; returns the new
/// version, or 0 when another write came first.
static WRITE_AT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        local version = redis.call('HGET', KEYS[1], 'version') or '0'
        if version ~= ARGV[1] then return 0 end
        redis.call('HSET', KEYS[1], 'value', ARGV[2])
        return redis.call('HINCRBY', KEYS[1], 'version', 1)
        ",
    )
});

/// How often `update` reads again after losing a race before it reports
/// `Conflict`: writes of these documents are rare and quick.
const UPDATE_ATTEMPTS: usize = 16;

#[derive(Debug)]
pub struct RedisDocument<T> {
    redis: Redis,
    key: String,
    _value: PhantomData<fn() -> T>,
}

impl<T> RedisDocument<T>
where
    T: Serialize + DeserializeOwned + Default,
{
    /// The document `name` under the prefix of `redis`.
    pub fn new(redis: &Redis, name: &str) -> Self {
        Self {
            redis: redis.clone(),
            key: redis.key(name),
            _value: PhantomData,
        }
    }

    /// The value and its version; a missing document is the default at
    /// version 0.
    pub async fn read(&self) -> Result<Versioned<T>, StoreError> {
        let (version, value): (Option<u64>, Option<String>) = redis::cmd("HMGET")
            .arg(&self.key)
            .arg("version")
            .arg("value")
            .query_async(&mut self.redis.conn())
            .await
            .map_err(unavailable("cannot read a document from Redis"))?;
        let value = match value {
            Some(json) => serde_json::from_str(&json).map_err(undecodable(
                "a document in Redis is not valid JSON for Portico",
            ))?,
            None => T::default(),
        };
        Ok(Versioned {
            version: version.unwrap_or(0),
            value,
        })
    }

    /// Writes `value` if the document is still at `version`; `Conflict`
    /// otherwise.
    pub async fn write_at(&self, version: u64, value: &T) -> Result<(), StoreError> {
        self.redis.writable()?;
        let json = serde_json::to_string(value)
            .map_err(undecodable("cannot serialise a document for Redis"))?;
        let written: u64 = WRITE_AT
            .key(&self.key)
            .arg(version)
            .arg(json)
            .invoke_async(&mut self.redis.conn())
            .await
            .map_err(unavailable("cannot write a document to Redis"))?;
        if written == 0 {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    /// Reads, applies `change`, and writes by compare-and-swap, reading
    /// again when another writer came first. `change` may run more than
    /// once; when it fails nothing is written.
    pub async fn update<R>(
        &self,
        mut change: impl FnMut(&mut T) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        for _ in 0..UPDATE_ATTEMPTS {
            let mut doc = self.read().await?;
            let result = change(&mut doc.value)?;
            match self.write_at(doc.version, &doc.value).await {
                Err(StoreError::Conflict) => continue,
                Err(err) => return Err(err),
                Ok(()) => return Ok(result),
            }
        }
        Err(StoreError::Conflict)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::redis::test_server;

    #[tokio::test]
    async fn a_write_at_a_version_another_write_moved_on_is_refused() {
        let redis = test_server::connect("doc-stale").await;
        let doc: RedisDocument<Vec<u32>> = RedisDocument::new(&redis, "doc");
        let seen = doc.read().await.unwrap();
        assert_eq!(seen, Versioned::default(), "missing: empty at version 0");
        doc.write_at(seen.version, &vec![1]).await.unwrap();
        let stale = doc.write_at(seen.version, &vec![2]).await;
        assert!(matches!(stale, Err(StoreError::Conflict)));
        let now = doc.read().await.unwrap();
        assert_eq!((now.version, now.value), (1, vec![1]));
    }

    #[tokio::test]
    async fn concurrent_updates_over_two_connections_never_lose_one_another() {
        let a = test_server::connect("doc-race").await;
        let b = test_server::connect("doc-race")
            .await
            .with_prefix(a.prefix());
        let docs: [Arc<RedisDocument<u64>>; 2] = [
            Arc::new(RedisDocument::new(&a, "counter")),
            Arc::new(RedisDocument::new(&b, "counter")),
        ];
        let tasks: Vec<_> = (0..100)
            .map(|n| {
                let doc = docs[n % 2].clone();
                tokio::spawn(async move {
                    loop {
                        let added = doc
                            .update(|n| {
                                *n += 1;
                                Ok(())
                            })
                            .await;
                        match added {
                            Err(StoreError::Conflict) => continue,
                            other => return other,
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let total = docs[0].read().await.unwrap();
        assert_eq!((total.value, total.version), (100, 100));
    }
}

//! `KeyStore`: the dashboard keys' records, and the file back end,
//! `api-keys.json` (mode 0600) on `Document<T>`. Hashing, the cache of
//! verified keys and the rules of rolls and scopes stay in `mod.rs`, so
//! another back end repeats none of them.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::KeyRecord;
use crate::store::{Document, StoreError};

#[async_trait]
pub trait KeyStore: Send + Sync + std::fmt::Debug {
    /// Every record, in no particular order.
    async fn list(&self) -> Result<Vec<KeyRecord>, StoreError>;
    async fn get(&self, id: &str) -> Result<Option<KeyRecord>, StoreError>;
    /// `get` without copying the record where the store can share it (the
    /// gate reads one per request).
    async fn get_shared(&self, id: &str) -> Result<Option<Arc<KeyRecord>>, StoreError> {
        Ok(self.get(id).await?.map(Arc::new))
    }
    /// Stores a new record. `Conflict` when a key of the same user has the
    /// same name (ignoring ASCII case), or the id is taken.
    async fn insert(&self, record: KeyRecord) -> Result<(), StoreError>;
    /// Removes the record `id` and returns it; `None` when there was none.
    async fn remove(&self, id: &str) -> Result<Option<KeyRecord>, StoreError>;
    /// Replaces the record of `current.id` by `next` if it is still exactly
    /// `current` (compare-and-swap); `Conflict` when it changed or is gone.
    async fn replace(&self, current: &KeyRecord, next: KeyRecord) -> Result<(), StoreError>;
    /// Notes that key `id` was used at `at` (never moving the time back).
    /// May be kept in memory until `flush`: a crash may lose a minute of
    /// last-used times, never a record.
    async fn touch(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Writes the last-used times `touch` kept in memory.
    async fn flush(&self) -> Result<(), StoreError>;
    /// The version of record `id`, moved on by every insert, replace and
    /// removal, when the store is shared by several instances; `None` for a
    /// store one process owns, whose own cache is never stale.
    async fn record_version(&self, _id: &str) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }
    /// The Redis hash of the versions, read by the gate's one script per
    /// request (`auth::gate_redis`); `None` for a store not in Redis.
    fn versions_key(&self) -> Option<&str> {
        None
    }
}

/// The records by id; on disk a list, oldest first. Shared, so a read
/// hands out a pointer rather than a copy.
#[derive(Debug, Clone, Default)]
struct Records(HashMap<String, Arc<KeyRecord>>);

impl Serialize for Records {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut ordered: Vec<&KeyRecord> = self.0.values().map(|r| &**r).collect();
        ordered.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        ordered.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Records {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let list = Vec::<KeyRecord>::deserialize(deserializer)?;
        Ok(Self(
            list.into_iter()
                .map(|r| (r.id.clone(), Arc::new(r)))
                .collect(),
        ))
    }
}

/// `api-keys.json` in the data directory.
#[derive(Debug)]
pub struct FileKeyStore {
    doc: Document<Records>,
}

impl FileKeyStore {
    pub fn load(data_dir: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            doc: Document::load(data_dir.join("api-keys.json"))?,
        })
    }

    pub fn path(&self) -> &Path {
        self.doc.path()
    }
}

#[async_trait]
impl KeyStore for FileKeyStore {
    async fn list(&self) -> Result<Vec<KeyRecord>, StoreError> {
        Ok(self
            .doc
            .read(|records| records.0.values().map(|r| KeyRecord::clone(r)).collect()))
    }

    async fn get(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        Ok(self
            .doc
            .read(|records| records.0.get(id).map(|r| KeyRecord::clone(r))))
    }

    async fn get_shared(&self, id: &str) -> Result<Option<Arc<KeyRecord>>, StoreError> {
        Ok(self.doc.read(|records| records.0.get(id).cloned()))
    }

    async fn insert(&self, record: KeyRecord) -> Result<(), StoreError> {
        self.doc
            .update(|records| {
                let taken = records.0.contains_key(&record.id)
                    || records.0.values().any(|other| {
                        other.user_id == record.user_id
                            && other.name.eq_ignore_ascii_case(&record.name)
                    });
                if taken {
                    return Err(StoreError::Conflict);
                }
                records.0.insert(record.id.clone(), Arc::new(record));
                Ok(())
            })
            .await
    }

    async fn remove(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        if self.doc.read(|records| !records.0.contains_key(id)) {
            return Ok(None);
        }
        self.doc
            .update(|records| Ok(records.0.remove(id).map(Arc::unwrap_or_clone)))
            .await
    }

    async fn replace(&self, current: &KeyRecord, next: KeyRecord) -> Result<(), StoreError> {
        self.doc
            .update(|records| {
                let stored = records
                    .0
                    .get_mut(&current.id)
                    .filter(|stored| ***stored == *current)
                    .ok_or(StoreError::Conflict)?;
                *stored = Arc::new(next);
                Ok(())
            })
            .await
    }

    async fn touch(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.doc.touch(|records| match records.0.get_mut(id) {
            Some(record) if record.last_used_at.is_none_or(|used| used < at) => {
                Arc::make_mut(record).last_used_at = Some(at);
                true
            }
            _ => false,
        });
        Ok(())
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.doc.flush().await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::conformance;

    #[tokio::test]
    async fn the_file_key_store_passes_the_conformance_suite() {
        conformance::keys::check(
            |dir| Arc::new(FileKeyStore::load(dir).unwrap()),
            conformance::fail_file_writes,
        )
        .await;
    }
}

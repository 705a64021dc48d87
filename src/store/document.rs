//! `Document<T>`: one JSON document in the data directory, the file back
//! end of every store trait, written once.
//!
//! - `load`: a missing file is `T::default()`; a damaged one stops start-up.
//! - `read`: a closure over the value in memory (a `parking_lot` lock: no
//!   poisoning, and never held across an await).
//! - `update`: under the one write mutex, clone the value, apply the
//!   change, write the clone atomically (`write_atomic`, on the blocking
//!   pool), and swap it in only if the write succeeded — a failed write
//!   changes nothing in memory.
//! - `touch` + `flush`: lazy fields (last-used times, session idle
//!   extensions) change in memory and mark the document dirty; `flush`
//!   writes it when dirty, and marks it dirty again if the write fails.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::RwLock;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{read_json, write_atomic, StoreError};

#[derive(Debug)]
pub struct Document<T> {
    path: PathBuf,
    value: RwLock<T>,
    writes: tokio::sync::Mutex<()>,
    /// Changed in memory by `touch` since the file was last written.
    dirty: AtomicBool,
}

impl<T> Document<T>
where
    T: Serialize + DeserializeOwned + Default + Clone + Send + Sync + 'static,
{
    /// Reads `path`; a missing file is the default value.
    pub fn load(path: impl Into<PathBuf>) -> anyhow::Result<Self> {
        let path = path.into();
        let value = read_json(&path)?.unwrap_or_default();
        Ok(Self::with_value(path, value))
    }

    /// A document whose value is `value` in memory (not written yet).
    pub fn with_value(path: impl Into<PathBuf>, value: T) -> Self {
        Self {
            path: path.into(),
            value: RwLock::new(value),
            writes: tokio::sync::Mutex::new(()),
            dirty: AtomicBool::new(false),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the value in memory.
    pub fn read<R>(&self, look: impl FnOnce(&T) -> R) -> R {
        look(&self.value.read())
    }

    /// A copy of the value in memory.
    pub fn snapshot(&self) -> T {
        self.value.read().clone()
    }

    /// Applies `change` to a copy, writes the copy, and only then makes it
    /// the value. When `change` fails nothing is written; when the write
    /// fails the value in memory stays as it was. Changes never overtake
    /// each other: they run one at a time under the write mutex.
    pub async fn update<R, E>(&self, change: impl FnOnce(&mut T) -> Result<R, E>) -> Result<R, E>
    where
        E: From<StoreError>,
    {
        let _write = self.writes.lock().await;
        let mut next = self.snapshot();
        let result = change(&mut next)?;
        // Pending lazy changes are in `next`, so this write carries them.
        let was_dirty = self.dirty.swap(false, Ordering::Relaxed);
        if let Err(err) = self.write(&next).await {
            if was_dirty {
                self.dirty.store(true, Ordering::Relaxed);
            }
            return Err(err.into());
        }
        *self.value.write() = next;
        Ok(result)
    }

    /// Changes the value in memory only, for fields that may be written
    /// late (last-used times): `change` says whether it changed anything,
    /// and if so the next `flush` writes it.
    pub fn touch(&self, change: impl FnOnce(&mut T) -> bool) -> bool {
        let changed = change(&mut self.value.write());
        if changed {
            self.dirty.store(true, Ordering::Relaxed);
        }
        changed
    }

    /// Whether `touch` changed something not written yet.
    pub fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Relaxed)
    }

    /// Writes the value if `touch` changed it since the last write.
    pub async fn flush(&self) -> Result<(), StoreError> {
        if !self.is_dirty() {
            return Ok(());
        }
        self.update(|_| Ok::<_, StoreError>(())).await
    }

    async fn write(&self, value: &T) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(value).map_err(|err| {
            StoreError::unavailable(format!("cannot serialise {}", self.path.display()), err)
        })?;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            write_atomic(&path, &bytes).map_err(|err| {
                StoreError::unavailable(format!("cannot write {}", path.display()), err)
            })
        })
        .await
        .map_err(|err| StoreError::unavailable("a file-writing task failed", err))?
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;

    type Map = BTreeMap<String, u32>;

    fn doc(dir: &tempfile::TempDir) -> Document<Map> {
        Document::load(dir.path().join("doc.json")).unwrap()
    }

    fn on_disk(dir: &tempfile::TempDir) -> Option<Map> {
        read_json(&dir.path().join("doc.json")).unwrap()
    }

    #[tokio::test]
    async fn a_missing_file_loads_as_the_default_and_an_update_is_on_disk_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let doc = doc(&dir);
        assert!(doc.read(Map::is_empty));
        assert_eq!(on_disk(&dir), None);
        let n = doc
            .update(|map| {
                map.insert("a".into(), 1);
                Ok::<_, StoreError>(map.len())
            })
            .await
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(on_disk(&dir).unwrap().get("a"), Some(&1));
        assert_eq!(doc.snapshot(), self::doc(&dir).snapshot());
    }

    #[tokio::test]
    async fn a_failing_change_writes_nothing_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let doc = doc(&dir);
        let result = doc
            .update(|map| {
                map.insert("a".into(), 1);
                Err::<(), _>(StoreError::Conflict)
            })
            .await;
        assert!(matches!(result, Err(StoreError::Conflict)));
        assert!(doc.read(Map::is_empty));
        assert_eq!(on_disk(&dir), None);
    }

    #[tokio::test]
    async fn a_failed_write_leaves_the_value_in_memory_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: the rename fails.
        let doc: Document<Map> = Document::load(dir.path().join("blocked")).unwrap();
        std::fs::create_dir(dir.path().join("blocked")).unwrap();
        std::fs::write(dir.path().join("blocked/x"), b"").unwrap();
        let result = doc
            .update(|map| {
                map.insert("a".into(), 1);
                Ok::<_, StoreError>(())
            })
            .await;
        assert!(matches!(result, Err(StoreError::Unavailable { .. })));
        assert!(doc.read(Map::is_empty));
    }

    #[tokio::test]
    async fn touched_values_are_written_by_flush_and_stay_dirty_when_it_fails() {
        let dir = tempfile::tempdir().unwrap();
        let doc = doc(&dir);
        assert!(!doc.touch(|_| false));
        assert!(!doc.is_dirty());
        doc.touch(|map| map.insert("lazy".into(), 7).is_none());
        assert!(doc.is_dirty());
        assert_eq!(on_disk(&dir), None);
        doc.flush().await.unwrap();
        assert!(!doc.is_dirty());
        assert_eq!(on_disk(&dir).unwrap().get("lazy"), Some(&7));

        let blocked: Document<Map> = Document::load(dir.path().join("sub")).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/x"), b"").unwrap();
        blocked.touch(|map| map.insert("lazy".into(), 1).is_none());
        assert!(blocked.flush().await.is_err());
        assert!(blocked.is_dirty(), "a failed flush is retried later");
    }

    #[tokio::test]
    async fn concurrent_updates_never_lose_one_another() {
        let dir = tempfile::tempdir().unwrap();
        let doc = Arc::new(doc(&dir));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let doc = doc.clone();
                tokio::spawn(async move {
                    doc.update(|map| {
                        *map.entry("n".into()).or_default() += 1;
                        Ok::<_, StoreError>(())
                    })
                    .await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(doc.read(|map| map["n"]), 50);
        assert_eq!(on_disk(&dir).unwrap()["n"], 50);
    }

    #[test]
    fn a_damaged_file_stops_loading_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("doc.json"), b"{not json").unwrap();
        let err = Document::<Map>::load(dir.path().join("doc.json")).unwrap_err();
        assert!(format!("{err:#}").contains("doc.json"), "{err:#}");
    }
}

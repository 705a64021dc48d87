//! Where usage is kept: the `UsageStore` trait (one implementation per back
//! end: files today, Redis next) and its file implementation, one
//! `store::Document` per key in `DATA_DIR/usage/<id>.json` (atomic 0600
//! writes that change memory only once on disk).

use std::collections::HashMap;
use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::ring::{Counts, Hour, KeyRing, Outcome};
use crate::store::{Document, StoreError, PRIVATE_DIR_MODE};

/// Counts of one key in one hour, as one flush hands them over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub key_id: Arc<str>,
    pub hour: Hour,
    pub counts: Counts,
}

/// A batch that could not be saved: the tallies the caller keeps for the
/// next attempt, and why.
#[derive(Debug, thiserror::Error)]
#[error("usage could not be saved: {error:#}")]
pub struct Unsaved {
    pub tallies: Vec<Tally>,
    pub error: anyhow::Error,
}

#[async_trait::async_trait]
pub trait UsageStore: Send + Sync + std::fmt::Debug {
    /// Adds each tally to its key's hour. Tallies that are not saved come
    /// back in `Unsaved` and nothing of them is counted.
    async fn add(&self, batch: Vec<Tally>) -> Result<(), Unsaved>;
    /// The 168 hours ending with `now`, oldest first.
    async fn series(&self, key_id: &str, now: Hour) -> anyhow::Result<Vec<(Hour, Counts)>>;
    /// The keys with any usage kept.
    async fn key_ids(&self) -> anyhow::Result<Vec<String>>;
    /// Drops a key's usage (the key was revoked).
    async fn forget(&self, key_id: &str) -> anyhow::Result<()>;
}

/// The stored form of one key's ring. `outcomes` names the columns, so a
/// later version can add one without misreading older files.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct UsageFile {
    outcomes: Vec<String>,
    hours: Vec<(Hour, Vec<u32>)>,
}

impl UsageFile {
    fn of(ring: &KeyRing) -> Self {
        Self {
            outcomes: Outcome::ALL.iter().map(|o| o.code().to_owned()).collect(),
            hours: ring
                .buckets()
                .into_iter()
                .map(|(hour, counts)| (hour, counts.0.to_vec()))
                .collect(),
        }
    }

    fn ring(&self) -> KeyRing {
        let columns: Vec<Option<usize>> = self
            .outcomes
            .iter()
            .map(|code| Outcome::ALL.iter().position(|o| o.code() == code))
            .collect();
        let buckets: Vec<(Hour, Counts)> = self
            .hours
            .iter()
            .map(|(hour, numbers)| {
                let mut counts = Counts::default();
                for (column, n) in columns.iter().zip(numbers) {
                    if let Some(index) = column {
                        counts.0[*index] = *n;
                    }
                }
                (*hour, counts)
            })
            .collect();
        KeyRing::from_buckets(&buckets)
    }
}

#[derive(Debug)]
pub struct FileUsageStore {
    dir: PathBuf,
    files: Mutex<HashMap<String, Arc<Document<UsageFile>>>>,
    /// One batch or removal at a time, so files and memory agree.
    writes: tokio::sync::Mutex<()>,
}

/// Key ids are `[a-z0-9]`; anything else never names a file.
fn file_name(key_id: &str) -> anyhow::Result<String> {
    let plain = !key_id.is_empty()
        && key_id.len() <= 64
        && key_id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    anyhow::ensure!(plain, "a key id with unexpected characters");
    Ok(format!("{key_id}.json"))
}

impl FileUsageStore {
    /// Reads `DATA_DIR/usage/`; a damaged file is reported and its key
    /// starts again from zero rather than stopping the server.
    pub fn load(data_dir: &Path) -> anyhow::Result<Self> {
        let dir = data_dir.join("usage");
        DirBuilder::new()
            .recursive(true)
            .mode(PRIVATE_DIR_MODE)
            .create(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let mut files = HashMap::new();
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?
        {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.starts_with('.') {
                // A temporary file of a write cut short.
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let Some(id) = name
                .strip_suffix(".json")
                .filter(|id| file_name(id).is_ok())
            else {
                continue;
            };
            let document = Document::<UsageFile>::load(&path).unwrap_or_else(|err| {
                tracing::warn!(
                    error = format!("{err:#}"),
                    "a usage file is damaged; that key's usage starts again from zero"
                );
                Document::with_value(&path, UsageFile::default())
            });
            files.insert(id.to_owned(), Arc::new(document));
        }
        Ok(Self {
            dir,
            files: Mutex::new(files),
            writes: tokio::sync::Mutex::new(()),
        })
    }

    fn file(&self, key_id: &str) -> Option<Arc<Document<UsageFile>>> {
        self.files.lock().get(key_id).cloned()
    }

    /// The key's document, made (not yet written) when it has none.
    fn file_or_new(&self, key_id: &str) -> anyhow::Result<Arc<Document<UsageFile>>> {
        let path = self.dir.join(file_name(key_id)?);
        Ok(self
            .files
            .lock()
            .entry(key_id.to_owned())
            .or_insert_with(|| Arc::new(Document::with_value(path, UsageFile::default())))
            .clone())
    }
}

#[async_trait::async_trait]
impl UsageStore for FileUsageStore {
    async fn add(&self, batch: Vec<Tally>) -> Result<(), Unsaved> {
        let _write = self.writes.lock().await;
        let mut by_key: HashMap<Arc<str>, Vec<Tally>> = HashMap::new();
        for tally in batch {
            by_key.entry(tally.key_id.clone()).or_default().push(tally);
        }
        let mut unsaved = Vec::new();
        let mut first_error = None;
        for (key_id, tallies) in by_key {
            let written = match self.file_or_new(&key_id) {
                Ok(file) => file
                    .update(|stored| {
                        let mut ring = stored.ring();
                        for tally in &tallies {
                            ring.add(tally.hour, &tally.counts);
                        }
                        *stored = UsageFile::of(&ring);
                        Ok::<_, StoreError>(())
                    })
                    .await
                    .map_err(anyhow::Error::from),
                Err(err) => Err(err),
            };
            if let Err(error) = written {
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
        Ok(self
            .file(key_id)
            .map(|file| file.read(UsageFile::ring))
            .unwrap_or_default()
            .series(now))
    }

    async fn key_ids(&self) -> anyhow::Result<Vec<String>> {
        Ok(self.files.lock().keys().cloned().collect())
    }

    async fn forget(&self, key_id: &str) -> anyhow::Result<()> {
        let _write = self.writes.lock().await;
        let path = self.dir.join(file_name(key_id)?);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                return Err(err).with_context(|| format!("cannot remove {}", path.display()))
            }
        }
        self.files.lock().remove(key_id);
        Ok(())
    }
}

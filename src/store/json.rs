//! JSON documents in the data directory: read whole, written atomically.

use std::io;
use std::path::Path;

use anyhow::Context;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::write_atomic;

/// Reads a JSON document; a missing file is `None`.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> anyhow::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("{} is not valid JSON for Portico", path.display())),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes a JSON document atomically (mode 0600) on the blocking pool.
pub async fn write_json<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).context("serialising a document")?;
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        write_atomic(&path, &bytes).with_context(|| format!("cannot write {}", path.display()))
    })
    .await
    .context("a file-writing task failed")?
}

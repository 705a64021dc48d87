//! `WorkspaceStore`: the persistent part of the registry (its records),
//! and the file back end, `workspaces.json` on `Document<T>`. Name and
//! path rules, clones and credentials stay in `registry.rs`, so another
//! back end repeats none of them.

use std::path::Path;

use async_trait::async_trait;

use super::Workspace;
use crate::store::{Document, StoreError, Versioned};

/// The registered workspaces, in registration order.
#[async_trait]
pub trait WorkspaceStore: Send + Sync + std::fmt::Debug {
    /// Every workspace, oldest first, and the version of the collection.
    async fn list(&self) -> Result<Versioned<Vec<Workspace>>, StoreError>;
    async fn get(&self, id: &str) -> Result<Option<Workspace>, StoreError>;
    /// Appends `workspace` if the collection is still at `version`;
    /// `Conflict` otherwise (the caller checks its rules again and retries).
    async fn insert(&self, version: u64, workspace: Workspace) -> Result<(), StoreError>;
    /// Removes the workspace `id` and returns it; `None` when there was none.
    async fn remove(&self, id: &str) -> Result<Option<Workspace>, StoreError>;
}

/// `workspaces.json` in the data directory.
#[derive(Debug)]
pub struct FileWorkspaceStore {
    doc: Document<Versioned<Vec<Workspace>>>,
}

impl FileWorkspaceStore {
    /// Loads `workspaces.json`; `migrate` may fix old records in place
    /// and says whether it did, in which case the file is written now.
    pub fn load(
        data_dir: &Path,
        migrate: impl FnOnce(&mut [Workspace]) -> bool,
    ) -> anyhow::Result<Self> {
        let doc: Document<Versioned<Vec<Workspace>>> =
            Document::load(data_dir.join("workspaces.json"))?;
        let mut items = doc.snapshot();
        if migrate(&mut items.value) {
            let bytes = serde_json::to_vec_pretty(&items)?;
            crate::store::write_atomic(doc.path(), &bytes)
                .map_err(|err| anyhow::anyhow!("cannot write {}: {err}", doc.path().display()))?;
            return Ok(Self {
                doc: Document::with_value(doc.path(), items),
            });
        }
        Ok(Self { doc })
    }
}

#[async_trait]
impl WorkspaceStore for FileWorkspaceStore {
    async fn list(&self) -> Result<Versioned<Vec<Workspace>>, StoreError> {
        Ok(self.doc.snapshot())
    }

    async fn get(&self, id: &str) -> Result<Option<Workspace>, StoreError> {
        Ok(self
            .doc
            .read(|items| items.value.iter().find(|w| w.id.as_str() == id).cloned()))
    }

    async fn insert(&self, version: u64, workspace: Workspace) -> Result<(), StoreError> {
        self.doc
            .update(|items| items.change_at(version, |items| items.push(workspace)))
            .await
    }

    async fn remove(&self, id: &str) -> Result<Option<Workspace>, StoreError> {
        self.doc
            .update(|items| {
                let Some(position) = items.value.iter().position(|w| w.id.as_str() == id) else {
                    return Ok(None);
                };
                Ok(Some(items.change(|items| items.remove(position))))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::conformance;

    #[tokio::test]
    async fn the_file_workspace_store_passes_the_conformance_suite() {
        conformance::workspaces::check(
            |dir| Arc::new(FileWorkspaceStore::load(dir, |_| false).unwrap()),
            conformance::fail_file_writes,
        )
        .await;
    }
}

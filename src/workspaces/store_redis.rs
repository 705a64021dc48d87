//! `RedisWorkspaceStore`: the workspace registry's records in Redis,
//! shared by every instance (SPEC §7), as one `RedisDocument` (the list,
//! oldest first) whose version is the collection's version: an insert made
//! on the strength of an older list is refused on every instance. The
//! directories themselves are not shared: a registered path must exist on
//! every instance, and clones are made by each instance on first use.

use async_trait::async_trait;

use super::{Workspace, WorkspaceStore};
use crate::store::redis::{Redis, RedisDocument};
use crate::store::{StoreError, Versioned};

#[derive(Debug)]
pub struct RedisWorkspaceStore {
    doc: RedisDocument<Vec<Workspace>>,
}

impl RedisWorkspaceStore {
    pub fn new(redis: Redis) -> Self {
        Self {
            doc: RedisDocument::new(&redis, "workspaces"),
        }
    }
}

#[async_trait]
impl WorkspaceStore for RedisWorkspaceStore {
    async fn list(&self) -> Result<Versioned<Vec<Workspace>>, StoreError> {
        self.doc.read().await
    }

    async fn get(&self, id: &str) -> Result<Option<Workspace>, StoreError> {
        let items = self.doc.read().await?.value;
        Ok(items.into_iter().find(|w| w.id.as_str() == id))
    }

    async fn insert(&self, version: u64, workspace: Workspace) -> Result<(), StoreError> {
        let mut items = self.doc.read().await?;
        if items.version != version {
            return Err(StoreError::Conflict);
        }
        items.value.push(workspace);
        self.doc.write_at(version, &items.value).await
    }

    async fn remove(&self, id: &str) -> Result<Option<Workspace>, StoreError> {
        // Only a removal that found the workspace writes (and so moves the
        // version on); `update` reads again if another write came first.
        if self.get(id).await?.is_none() {
            return Ok(None);
        }
        self.doc
            .update(|items| {
                let position = items.iter().position(|w| w.id.as_str() == id);
                Ok(position.map(|position| items.remove(position)))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::conformance;
    use crate::store::redis::test_server;

    #[tokio::test]
    async fn the_redis_workspace_store_passes_the_conformance_suite() {
        let redis = test_server::connect("workspaces").await;
        conformance::workspaces::check(
            test_server::opener(&redis, |redis| {
                Arc::new(RedisWorkspaceStore::new(redis)) as Arc<dyn WorkspaceStore>
            }),
            test_server::write_faults(&redis),
        )
        .await;
    }
}

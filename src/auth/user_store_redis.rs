//! `RedisUserStore`: the dashboard users in Redis, shared by every
//! instance (SPEC §7), as one `RedisDocument` (the list of users, in the
//! order they were created): there are few users and they change rarely,
//! and a document's compare-and-swap makes "only the first user" and
//! "replace if unchanged" hold across instances.

use async_trait::async_trait;

use super::user_store::UserStore;
use super::users::UserRecord;
use crate::store::redis::{Redis, RedisDocument};
use crate::store::StoreError;

#[derive(Debug)]
pub struct RedisUserStore {
    doc: RedisDocument<Vec<UserRecord>>,
}

impl RedisUserStore {
    pub fn new(redis: Redis) -> Self {
        Self {
            doc: RedisDocument::new(&redis, "users"),
        }
    }

    /// Adds the users of `users` that are not here yet (by id, and by
    /// name: a name taken by another user is left out); returns how many
    /// were added. What `portico migrate to-redis` copies users with, so a
    /// second run adds nothing.
    pub async fn import(&self, users: &[UserRecord]) -> Result<usize, StoreError> {
        let stored = self.doc.read().await?.value;
        let missing = users.iter().any(|user| {
            !stored
                .iter()
                .any(|s| s.id == user.id || s.username == user.username)
        });
        if !missing {
            return Ok(0);
        }
        self.doc
            .update(|stored| {
                let before = stored.len();
                for user in users {
                    let known = stored
                        .iter()
                        .any(|s| s.id == user.id || s.username == user.username);
                    if !known {
                        stored.push(user.clone());
                    }
                }
                Ok(stored.len() - before)
            })
            .await
    }

    async fn find(
        &self,
        pick: impl Fn(&UserRecord) -> bool,
    ) -> Result<Option<UserRecord>, StoreError> {
        Ok(self.doc.read().await?.value.into_iter().find(pick))
    }
}

#[async_trait]
impl UserStore for RedisUserStore {
    async fn list(&self) -> Result<Vec<UserRecord>, StoreError> {
        Ok(self.doc.read().await?.value)
    }

    async fn get(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        self.find(|user| user.id == id).await
    }

    async fn find_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        self.find(|user| user.username == username).await
    }

    async fn create_first(&self, user: UserRecord) -> Result<(), StoreError> {
        let users = self.doc.read().await?;
        if !users.value.is_empty() {
            return Err(StoreError::Conflict);
        }
        // A write that finds the version moved lost to another first user.
        self.doc.write_at(users.version, &vec![user]).await
    }

    async fn replace(&self, current: &UserRecord, next: UserRecord) -> Result<(), StoreError> {
        let mut users = self.doc.read().await?;
        let stored = users
            .value
            .iter_mut()
            .find(|user| *user == current)
            .ok_or(StoreError::Conflict)?;
        *stored = next;
        self.doc.write_at(users.version, &users.value).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::conformance;
    use crate::store::redis::test_server;

    #[tokio::test]
    async fn the_redis_user_store_passes_the_conformance_suite() {
        let redis = test_server::connect("users").await;
        conformance::users::check(
            test_server::opener(&redis, |redis| {
                Arc::new(RedisUserStore::new(redis)) as Arc<dyn UserStore>
            }),
            test_server::write_faults(&redis),
        )
        .await;
    }
}

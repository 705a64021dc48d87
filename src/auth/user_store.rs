//! `UserStore`: the dashboard users' records, and the file back end,
//! `users.json` (mode 0600) on `Document<T>`. Names, passwords, hashing
//! and the second factor's rules stay in `users.rs` and `two_factor.rs`;
//! a store only keeps records, so another back end repeats none of them.

use std::path::Path;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::{Document, StoreError};

/// A dashboard user as stored: the record every back end keeps.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRecord {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
    /// Raised by a password change: sessions from an older epoch are over.
    pub session_epoch: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub two_factor: Option<TwoFactor>,
}

/// A user's second factor: the TOTP secret sealed by `SecretCipher`, the
/// last time step a code was accepted for, and argon2id hashes of the
/// unused recovery codes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TwoFactor {
    pub sealed_secret: String,
    pub last_used_step: u64,
    pub recovery_hashes: Vec<String>,
    pub enabled_at: DateTime<Utc>,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("session_epoch", &self.session_epoch)
            .field("two_factor", &self.two_factor.is_some())
            .finish_non_exhaustive()
    }
}

#[async_trait]
pub trait UserStore: Send + Sync + std::fmt::Debug {
    /// Every user, in the order they were created.
    async fn list(&self) -> Result<Vec<UserRecord>, StoreError>;
    async fn get(&self, id: &str) -> Result<Option<UserRecord>, StoreError>;
    async fn find_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError>;
    /// Stores `user` if there is no user at all; `Conflict` otherwise.
    async fn create_first(&self, user: UserRecord) -> Result<(), StoreError>;
    /// Replaces the record of `current.id` by `next` if it is still exactly
    /// `current` (compare-and-swap); `Conflict` when it changed or is gone.
    async fn replace(&self, current: &UserRecord, next: UserRecord) -> Result<(), StoreError>;
}

/// `users.json` in the data directory.
#[derive(Debug)]
pub struct FileUserStore {
    doc: Document<Vec<UserRecord>>,
}

impl FileUserStore {
    pub fn load(data_dir: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            doc: Document::load(data_dir.join("users.json"))?,
        })
    }

    fn find(&self, pick: impl Fn(&UserRecord) -> bool) -> Option<UserRecord> {
        self.doc
            .read(|users| users.iter().find(|user| pick(user)).cloned())
    }
}

#[async_trait]
impl UserStore for FileUserStore {
    async fn list(&self) -> Result<Vec<UserRecord>, StoreError> {
        Ok(self.doc.snapshot())
    }

    async fn get(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(self.find(|user| user.id == id))
    }

    async fn find_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(self.find(|user| user.username == username))
    }

    async fn create_first(&self, user: UserRecord) -> Result<(), StoreError> {
        self.doc
            .update(|users| {
                if !users.is_empty() {
                    return Err(StoreError::Conflict);
                }
                users.push(user);
                Ok(())
            })
            .await
    }

    async fn replace(&self, current: &UserRecord, next: UserRecord) -> Result<(), StoreError> {
        self.doc
            .update(|users| {
                let stored = users
                    .iter_mut()
                    .find(|user| user == &current)
                    .ok_or(StoreError::Conflict)?;
                *stored = next;
                Ok(())
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
    async fn the_file_user_store_passes_the_conformance_suite() {
        conformance::users::check(
            |dir| Arc::new(FileUserStore::load(dir).unwrap()),
            conformance::fail_file_writes,
        )
        .await;
    }
}

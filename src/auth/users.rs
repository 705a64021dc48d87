//! Dashboard users in `users.json` (mode 0600, argon2id hashes only), and
//! the typed user name and password that are the only way in.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::hashing::Hasher;
use crate::core::random_token;
use crate::store::{read_json, write_json};

pub const MIN_PASSWORD_CHARS: usize = 12;
const MAX_PASSWORD_CHARS: usize = 1024;
const MAX_USERNAME_CHARS: usize = 64;

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

/// 1 to 64 characters from `A-Z a-z 0-9 . _ - @`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let allowed = |c: char| c.is_ascii_alphanumeric() || "._-@".contains(c);
        if text.is_empty()
            || text.chars().count() > MAX_USERNAME_CHARS
            || !text.chars().all(allowed)
        {
            return Err(format!(
                "A user name is 1 to {MAX_USERNAME_CHARS} letters, digits or . _ - @"
            ));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// At least 12 characters (and at most 1024).
#[derive(Debug, Clone)]
pub struct Password(SecretString);

impl Password {
    pub fn parse(text: &str) -> Result<Self, String> {
        let chars = text.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(format!(
                "The password needs at least {MIN_PASSWORD_CHARS} characters"
            ));
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(format!(
                "The password may have at most {MAX_PASSWORD_CHARS} characters"
            ));
        }
        Ok(Self(SecretString::from(text)))
    }

    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("the dashboard user already exists")]
    AlreadySetUp,
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("no such user")]
    NoSuchUser,
    #[error(transparent)]
    Storage(#[from] anyhow::Error),
}

#[derive(Debug)]
pub struct UserStore {
    path: PathBuf,
    users: RwLock<Vec<UserRecord>>,
    writes: tokio::sync::Mutex<()>,
    hasher: Arc<Hasher>,
}

impl UserStore {
    pub fn load(data_dir: &Path, hasher: Arc<Hasher>) -> anyhow::Result<Self> {
        let path = data_dir.join("users.json");
        let users = read_json(&path)?.unwrap_or_default();
        Ok(Self {
            path,
            users: RwLock::new(users),
            writes: tokio::sync::Mutex::new(()),
            hasher,
        })
    }

    fn snapshot(&self) -> Vec<UserRecord> {
        self.users.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn has_users(&self) -> bool {
        !self
            .users
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    pub fn get(&self, id: &str) -> Option<UserRecord> {
        self.snapshot().into_iter().find(|user| user.id == id)
    }

    /// Writes `users` to disk, then makes them the current ones.
    async fn commit(&self, users: Vec<UserRecord>) -> anyhow::Result<()> {
        write_json(&self.path, &users).await?;
        *self.users.write().unwrap_or_else(|e| e.into_inner()) = users;
        Ok(())
    }

    /// Creates the one dashboard user; refused once any user exists.
    pub async fn create_first(
        &self,
        username: &Username,
        password: &Password,
    ) -> Result<UserRecord, UserError> {
        let _write = self.writes.lock().await;
        if self.has_users() {
            return Err(UserError::AlreadySetUp);
        }
        let user = UserRecord {
            id: random_token(12),
            username: username.as_str().to_owned(),
            password_hash: self.hasher.hash(password.secret()).await?,
            created_at: Utc::now(),
            session_epoch: 0,
            two_factor: None,
        };
        self.commit(vec![user.clone()]).await?;
        Ok(user)
    }

    /// The user whose name and password these are. An unknown name costs
    /// one verification against a dummy hash, like a wrong password.
    pub async fn check_login(
        &self,
        username: &str,
        password: &SecretString,
    ) -> anyhow::Result<Option<UserRecord>> {
        let user = self
            .snapshot()
            .into_iter()
            .find(|user| user.username == username);
        let Some(user) = user else {
            self.hasher.verify_dummy(password).await?;
            return Ok(None);
        };
        let valid = self.hasher.verify(password, &user.password_hash).await?;
        Ok(valid.then_some(user))
    }

    pub fn find_by_name(&self, username: &str) -> Option<UserRecord> {
        self.snapshot()
            .into_iter()
            .find(|user| user.username == username)
    }

    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    /// Applies `change` to the user, all under the write lock, and writes
    /// the result unless `change` fails: a read-check-write with no other
    /// change in between.
    pub async fn update<T>(
        &self,
        user_id: &str,
        change: impl FnOnce(&mut UserRecord) -> Result<T, UserError>,
    ) -> Result<T, UserError> {
        let _write = self.writes.lock().await;
        let mut users = self.snapshot();
        let user = users
            .iter_mut()
            .find(|user| user.id == user_id)
            .ok_or(UserError::NoSuchUser)?;
        let result = change(user)?;
        self.commit(users).await?;
        Ok(result)
    }

    /// Whether `password` is the user's (one argon2 verification).
    pub async fn verify_password(
        &self,
        user_id: &str,
        password: &SecretString,
    ) -> Result<bool, UserError> {
        let user = self.get(user_id).ok_or(UserError::NoSuchUser)?;
        Ok(self.hasher.verify(password, &user.password_hash).await?)
    }

    /// Sets a new password and ends every session of the user.
    pub async fn change_password(
        &self,
        user_id: &str,
        current: &SecretString,
        new: &Password,
    ) -> Result<UserRecord, UserError> {
        self.replace_password(|user| user.id == user_id, Some(current), new)
            .await
    }

    /// Under the write lock: checks `current`, when given, against the
    /// password of the user `is_user` picks, then sets `new` and ends every
    /// session of that user.
    async fn replace_password(
        &self,
        is_user: impl Fn(&UserRecord) -> bool,
        current: Option<&SecretString>,
        new: &Password,
    ) -> Result<UserRecord, UserError> {
        let _write = self.writes.lock().await;
        let mut users = self.snapshot();
        let user = users
            .iter_mut()
            .find(|user| is_user(user))
            .ok_or(UserError::NoSuchUser)?;
        if let Some(current) = current {
            if !self.hasher.verify(current, &user.password_hash).await? {
                return Err(UserError::WrongPassword);
            }
        }
        user.password_hash = self.hasher.hash(new.secret()).await?;
        user.session_epoch += 1;
        let changed = user.clone();
        self.commit(users).await?;
        Ok(changed)
    }
}

impl UserStore {
    /// Sets a new password for `username` without the old one (the command
    /// line's way back in) and ends every session of the user.
    pub async fn reset_password(
        &self,
        username: &str,
        new: &Password,
    ) -> Result<UserRecord, UserError> {
        self.replace_password(|user| user.username == username, None, new)
            .await
    }

    /// The names of every user, for messages.
    pub fn usernames(&self) -> Vec<String> {
        self.snapshot()
            .into_iter()
            .map(|user| user.username)
            .collect()
    }
}

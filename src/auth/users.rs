//! Dashboard users (argon2id hashes only, in a `UserStore`: `users.json`,
//! mode 0600, by default), and the typed user name and password that are
//! the only way in.

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use secrecy::SecretString;

use super::hashing::Hasher;
use super::user_store::{FileUserStore, UserStore};
pub use super::user_store::{TwoFactor, UserRecord};
use crate::core::random_token;
use crate::store::StoreError;

pub const MIN_PASSWORD_CHARS: usize = 12;
const MAX_PASSWORD_CHARS: usize = 1024;
const MAX_USERNAME_CHARS: usize = 64;

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

impl From<StoreError> for UserError {
    fn from(err: StoreError) -> Self {
        Self::Storage(err.into())
    }
}

/// The dashboard users: the rules (first user only, argon2id passwords,
/// session epochs) over a `UserStore` that keeps the records.
#[derive(Debug)]
pub struct Users {
    store: Arc<dyn UserStore>,
    hasher: Arc<Hasher>,
}

impl Users {
    /// The users in `users.json` in the data directory.
    pub fn load(data_dir: &Path, hasher: Arc<Hasher>) -> anyhow::Result<Self> {
        Ok(Self::new(Arc::new(FileUserStore::load(data_dir)?), hasher))
    }

    pub fn new(store: Arc<dyn UserStore>, hasher: Arc<Hasher>) -> Self {
        Self { store, hasher }
    }

    pub async fn has_users(&self) -> Result<bool, StoreError> {
        Ok(!self.store.list().await?.is_empty())
    }

    pub async fn get(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        self.store.get(id).await
    }

    /// Creates the one dashboard user; refused once any user exists.
    pub async fn create_first(
        &self,
        username: &Username,
        password: &Password,
    ) -> Result<UserRecord, UserError> {
        if self.has_users().await? {
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
        // The store refuses it if another setup won the race meanwhile.
        match self.store.create_first(user.clone()).await {
            Ok(()) => Ok(user),
            Err(StoreError::Conflict) => Err(UserError::AlreadySetUp),
            Err(err) => Err(err.into()),
        }
    }

    /// The user whose name and password these are. An unknown name costs
    /// one verification against a dummy hash, like a wrong password.
    pub async fn check_login(
        &self,
        username: &str,
        password: &SecretString,
    ) -> anyhow::Result<Option<UserRecord>> {
        let Some(user) = self.store.find_by_name(username).await? else {
            self.hasher.verify_dummy(password).await?;
            return Ok(None);
        };
        let valid = self.hasher.verify(password, &user.password_hash).await?;
        Ok(valid.then_some(user))
    }

    pub async fn find_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        self.store.find_by_name(username).await
    }

    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    /// Applies `change` to the user and writes the result unless `change`
    /// fails: a read-check-write with no other change in between. When
    /// another write got there first, the user is read again and `change`
    /// runs again on the newer record.
    pub async fn update<T>(
        &self,
        user_id: &str,
        mut change: impl FnMut(&mut UserRecord) -> Result<T, UserError>,
    ) -> Result<T, UserError> {
        loop {
            let current = self.get(user_id).await?.ok_or(UserError::NoSuchUser)?;
            let mut next = current.clone();
            let result = change(&mut next)?;
            match self.store.replace(&current, next).await {
                Ok(()) => return Ok(result),
                Err(StoreError::Conflict) => continue,
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// Whether `password` is the user's (one argon2 verification).
    pub async fn verify_password(
        &self,
        user_id: &str,
        password: &SecretString,
    ) -> Result<bool, UserError> {
        let user = self.get(user_id).await?.ok_or(UserError::NoSuchUser)?;
        Ok(self.hasher.verify(password, &user.password_hash).await?)
    }

    /// Sets a new password and ends every session of the user.
    pub async fn change_password(
        &self,
        user_id: &str,
        current: &SecretString,
        new: &Password,
    ) -> Result<UserRecord, UserError> {
        self.replace_password(Pick::Id(user_id), Some(current), new)
            .await
    }

    /// Sets a new password for `username` without the old one (the command
    /// line's way back in) and ends every session of the user.
    pub async fn reset_password(
        &self,
        username: &str,
        new: &Password,
    ) -> Result<UserRecord, UserError> {
        self.replace_password(Pick::Name(username), None, new).await
    }

    /// Checks `current`, when given, against the password of the user
    /// `pick` names, then sets `new` and ends every session of that user;
    /// all again if another write changed the user meanwhile, so a
    /// password that was just replaced can never authorise a change.
    async fn replace_password(
        &self,
        pick: Pick<'_>,
        current: Option<&SecretString>,
        new: &Password,
    ) -> Result<UserRecord, UserError> {
        let mut new_hash = None;
        loop {
            let user = match pick {
                Pick::Id(id) => self.store.get(id).await?,
                Pick::Name(name) => self.store.find_by_name(name).await?,
            };
            let user = user.ok_or(UserError::NoSuchUser)?;
            if let Some(current) = current {
                if !self.hasher.verify(current, &user.password_hash).await? {
                    return Err(UserError::WrongPassword);
                }
            }
            let hash = match &new_hash {
                Some(hash) => String::clone(hash),
                None => new_hash
                    .insert(self.hasher.hash(new.secret()).await?)
                    .clone(),
            };
            let mut changed = user.clone();
            changed.password_hash = hash;
            changed.session_epoch += 1;
            match self.store.replace(&user, changed.clone()).await {
                Ok(()) => return Ok(changed),
                Err(StoreError::Conflict) => continue,
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// The names of every user, for messages.
    pub async fn usernames(&self) -> Result<Vec<String>, StoreError> {
        let users = self.store.list().await?;
        Ok(users.into_iter().map(|user| user.username).collect())
    }
}

/// Which user a password change is for.
#[derive(Clone, Copy)]
enum Pick<'a> {
    Id(&'a str),
    Name(&'a str),
}

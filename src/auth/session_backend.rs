//! `Sessions`: the one session store type actix-session is built on, the
//! file store or the Redis store as `REDIS_URL` says (SPEC §7).

use std::collections::HashMap;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration as CookieDuration;

use super::session_store::{FileSessionStore, SessionPurge};
use super::session_store_redis::RedisSessionStore;
use crate::store::StoreError;

type State = HashMap<String, String>;

#[derive(Debug, Clone)]
pub enum Sessions {
    Files(FileSessionStore),
    Redis(RedisSessionStore),
}

impl Sessions {
    /// Writes idle-time extensions kept in memory (the file store); Redis
    /// extends a session's time to live as it goes, so there is nothing.
    pub async fn flush(&self) -> anyhow::Result<()> {
        match self {
            Self::Files(files) => files.flush().await,
            Self::Redis(_) => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl SessionPurge for Sessions {
    async fn purge_where(&self, key: &str, value: &str) -> Result<usize, StoreError> {
        match self {
            Self::Files(files) => files.purge_where(key, value).await,
            Self::Redis(redis) => redis.purge_where(key, value).await,
        }
    }
}

impl SessionStore for Sessions {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<State>, LoadError> {
        match self {
            Self::Files(files) => files.load(session_key).await,
            Self::Redis(redis) => redis.load(session_key).await,
        }
    }

    async fn save(&self, state: State, ttl: &CookieDuration) -> Result<SessionKey, SaveError> {
        match self {
            Self::Files(files) => files.save(state, ttl).await,
            Self::Redis(redis) => redis.save(state, ttl).await,
        }
    }

    async fn update(
        &self,
        session_key: SessionKey,
        state: State,
        ttl: &CookieDuration,
    ) -> Result<SessionKey, UpdateError> {
        match self {
            Self::Files(files) => files.update(session_key, state, ttl).await,
            Self::Redis(redis) => redis.update(session_key, state, ttl).await,
        }
    }

    async fn update_ttl(
        &self,
        session_key: &SessionKey,
        ttl: &CookieDuration,
    ) -> anyhow::Result<()> {
        match self {
            Self::Files(files) => files.update_ttl(session_key, ttl).await,
            Self::Redis(redis) => redis.update_ttl(session_key, ttl).await,
        }
    }

    async fn delete(&self, session_key: &SessionKey) -> anyhow::Result<()> {
        match self {
            Self::Files(files) => files.delete(session_key).await,
            Self::Redis(redis) => redis.delete(session_key).await,
        }
    }
}

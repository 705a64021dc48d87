//! The server-side session store behind actix-session: sessions live in
//! memory and in `sessions.json` (mode 0600), so they survive a restart, and
//! the cookie carries nothing but a random session key. Creation, deletion
//! and changes of what a session holds are on disk before the answer goes
//! out; idle-time extensions and the last-visit time, which change on every
//! request, are written in batches by `flush`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration as CookieDuration;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::session::LAST_VISIT;
use crate::core::random_alphanumeric;
use crate::store::{read_json, write_json};

type State = HashMap<String, String>;

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredSession {
    state: State,
    expires_at: DateTime<Utc>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    sessions: Mutex<HashMap<String, StoredSession>>,
    writes: tokio::sync::Mutex<()>,
    dirty: AtomicBool,
}

impl std::fmt::Debug for StoredSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSession")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A cheap handle to the one store of the process.
#[derive(Debug, Clone)]
pub struct FileSessionStore(Arc<Inner>);

fn expiry(ttl: &CookieDuration) -> DateTime<Utc> {
    Utc::now() + Duration::seconds(ttl.whole_seconds())
}

impl FileSessionStore {
    pub fn load(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join("sessions.json");
        let now = Utc::now();
        let mut sessions: HashMap<String, StoredSession> = read_json(&path)?.unwrap_or_default();
        sessions.retain(|_, session| session.expires_at > now);
        Ok(Self(Arc::new(Inner {
            path,
            sessions: Mutex::new(sessions),
            writes: tokio::sync::Mutex::new(()),
            dirty: AtomicBool::new(false),
        })))
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, StoredSession>> {
        self.0.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `change` and writes the live sessions to disk.
    async fn commit<T>(
        &self,
        change: impl FnOnce(&mut HashMap<String, StoredSession>) -> T,
    ) -> anyhow::Result<T> {
        let _write = self.0.writes.lock().await;
        let (result, snapshot) = {
            let mut sessions = self.sessions();
            let result = change(&mut sessions);
            let now = Utc::now();
            sessions.retain(|_, session| session.expires_at > now);
            (result, sessions.clone())
        };
        self.0.dirty.store(false, Ordering::Relaxed);
        write_json(&self.0.path, &snapshot).await?;
        Ok(result)
    }

    /// Writes pending idle-time extensions.
    pub async fn flush(&self) -> anyhow::Result<()> {
        if self.0.dirty.load(Ordering::Relaxed) {
            self.commit(|_| ()).await?;
        }
        Ok(())
    }

    /// Ends every session whose `key` entry holds `value` (JSON-encoded, as
    /// actix-session stores it); returns how many ended.
    pub async fn purge_where(&self, key: &str, value: &str) -> anyhow::Result<usize> {
        let encoded = serde_json::to_string(value)?;
        self.commit(|sessions| {
            let before = sessions.len();
            sessions.retain(|_, session| session.state.get(key) != Some(&encoded));
            before - sessions.len()
        })
        .await
    }

    /// Applies `state` in memory, to be written by the next `flush`, when
    /// it differs from the stored one only in the last-visit time.
    fn touch_only(&self, key: &str, state: &State, expires_at: DateTime<Utc>) -> bool {
        let mut sessions = self.sessions();
        let Some(session) = sessions.get_mut(key) else {
            return false;
        };
        let same_but_visit = session.state.len() == state.len()
            && state
                .iter()
                .all(|(k, v)| k == LAST_VISIT || session.state.get(k) == Some(v));
        if same_but_visit {
            session.state.clone_from(state);
            session.expires_at = expires_at;
            self.0.dirty.store(true, Ordering::Relaxed);
        }
        same_but_visit
    }

    async fn insert_new(&self, state: State, ttl: &CookieDuration) -> anyhow::Result<SessionKey> {
        let key = random_alphanumeric(64);
        let session_key = SessionKey::try_from(key.clone()).map_err(anyhow::Error::msg)?;
        let stored = StoredSession {
            state,
            expires_at: expiry(ttl),
        };
        self.commit(|sessions| sessions.insert(key, stored)).await?;
        Ok(session_key)
    }
}

impl SessionStore for FileSessionStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<State>, LoadError> {
        let mut sessions = self.sessions();
        let key: &str = session_key.as_ref();
        match sessions.get(key) {
            Some(session) if session.expires_at > Utc::now() => Ok(Some(session.state.clone())),
            Some(_) => {
                sessions.remove(key);
                self.0.dirty.store(true, Ordering::Relaxed);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn save(&self, state: State, ttl: &CookieDuration) -> Result<SessionKey, SaveError> {
        self.insert_new(state, ttl).await.map_err(SaveError::Other)
    }

    async fn update(
        &self,
        session_key: SessionKey,
        state: State,
        ttl: &CookieDuration,
    ) -> Result<SessionKey, UpdateError> {
        let key: String = session_key.as_ref().to_owned();
        let expires_at = expiry(ttl);
        if self.touch_only(&key, &state, expires_at) {
            return Ok(session_key);
        }
        let updated = self
            .commit(|sessions| match sessions.get_mut(&key) {
                Some(session) => {
                    *session = StoredSession {
                        state: state.clone(),
                        expires_at,
                    };
                    true
                }
                None => false,
            })
            .await
            .map_err(UpdateError::Other)?;
        if updated {
            Ok(session_key)
        } else {
            // The session ended while this request ran (a logout): neither its
            // key nor its state may come back.
            self.insert_new(State::new(), ttl)
                .await
                .map_err(UpdateError::Other)
        }
    }

    async fn update_ttl(
        &self,
        session_key: &SessionKey,
        ttl: &CookieDuration,
    ) -> anyhow::Result<()> {
        if let Some(session) = self.sessions().get_mut(session_key.as_ref()) {
            session.expires_at = expiry(ttl);
            self.0.dirty.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn delete(&self, session_key: &SessionKey) -> anyhow::Result<()> {
        let key: &str = session_key.as_ref();
        self.commit(|sessions| sessions.remove(key)).await?;
        Ok(())
    }
}

//! The server-side session store behind actix-session: sessions live in
//! memory and in `sessions.json` (mode 0600), so they survive a restart, and
//! the cookie carries nothing but a random session key. Creation, deletion
//! and changes of what a session holds are on disk before the answer goes
//! out; idle-time extensions and the last-visit time, which change on every
//! request, are written in batches by `flush`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration as CookieDuration;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::session::LAST_VISIT;
use crate::core::random_alphanumeric;
use crate::store::{Document, StoreError};

type State = HashMap<String, String>;

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredSession {
    state: State,
    expires_at: DateTime<Utc>,
}

type Sessions = HashMap<String, StoredSession>;

impl std::fmt::Debug for StoredSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSession")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Ends sessions by what they hold: how a password change ends every
/// session of its user. The actix-session `SessionStore` is the rest of a
/// session back end's contract.
#[async_trait::async_trait]
pub trait SessionPurge: Send + Sync + std::fmt::Debug {
    /// Ends every session whose `key` entry holds `value` (JSON-encoded,
    /// as actix-session stores it); returns how many ended.
    async fn purge_where(&self, key: &str, value: &str) -> Result<usize, StoreError>;
}

/// A cheap handle to the one store of the process: `sessions.json` on
/// `Document<T>`.
#[derive(Debug, Clone)]
pub struct FileSessionStore(Arc<Document<Sessions>>);

fn expiry(ttl: &CookieDuration) -> DateTime<Utc> {
    Utc::now() + Duration::seconds(ttl.whole_seconds())
}

impl FileSessionStore {
    pub fn load(data_dir: &Path) -> anyhow::Result<Self> {
        let doc: Document<Sessions> = Document::load(data_dir.join("sessions.json"))?;
        let now = Utc::now();
        let mut sessions = doc.snapshot();
        sessions.retain(|_, session| session.expires_at > now);
        Ok(Self(Arc::new(Document::with_value(doc.path(), sessions))))
    }

    /// Applies `change` and writes the live sessions; a failed write
    /// changes nothing.
    async fn commit<T>(&self, change: impl FnOnce(&mut Sessions) -> T) -> Result<T, StoreError> {
        self.0
            .update(|sessions| {
                let result = change(sessions);
                let now = Utc::now();
                sessions.retain(|_, session| session.expires_at > now);
                Ok(result)
            })
            .await
    }

    /// Writes pending idle-time extensions.
    pub async fn flush(&self) -> anyhow::Result<()> {
        Ok(self.0.flush().await?)
    }

    /// Applies `state` in memory, to be written by the next `flush`, when
    /// it differs from the stored one only in the last-visit time.
    fn touch_only(&self, key: &str, state: &State, expires_at: DateTime<Utc>) -> bool {
        self.0.touch(|sessions| {
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
            }
            same_but_visit
        })
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

#[async_trait::async_trait]
impl SessionPurge for FileSessionStore {
    async fn purge_where(&self, key: &str, value: &str) -> Result<usize, StoreError> {
        let encoded = serde_json::to_string(value)
            .map_err(|err| StoreError::unavailable("encoding a session value", err))?;
        self.commit(|sessions| {
            let before = sessions.len();
            sessions.retain(|_, session| session.state.get(key) != Some(&encoded));
            before - sessions.len()
        })
        .await
    }
}

impl SessionStore for FileSessionStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<State>, LoadError> {
        let key: &str = session_key.as_ref();
        let mut found = None;
        // An expired session is forgotten here, and on disk by the next write.
        self.0.touch(|sessions| match sessions.get(key) {
            Some(session) if session.expires_at > Utc::now() => {
                found = Some(session.state.clone());
                false
            }
            Some(_) => sessions.remove(key).is_some(),
            None => false,
        });
        Ok(found)
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
            .map_err(|err| UpdateError::Other(err.into()))?;
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
        let expires_at = expiry(ttl);
        self.0
            .touch(|sessions| match sessions.get_mut(session_key.as_ref()) {
                Some(session) => {
                    session.expires_at = expires_at;
                    true
                }
                None => false,
            });
        Ok(())
    }

    async fn delete(&self, session_key: &SessionKey) -> anyhow::Result<()> {
        let key: &str = session_key.as_ref();
        self.commit(|sessions| sessions.remove(key)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance;

    #[tokio::test]
    async fn the_file_session_store_passes_the_conformance_suite() {
        conformance::sessions::check(
            |dir| FileSessionStore::load(dir).unwrap(),
            conformance::fail_file_writes,
        )
        .await;
    }
}

//! `RedisSessionStore`: dashboard sessions in Redis, shared by every
//! instance (SPEC §7): a login on one instance is a session on all, and a
//! logout or password change on one ends it on all. Each session is one
//! string (its entries as JSON) that Redis expires with the session's
//! time to live; the cookie carries only the random session key.
//!
//! Per-user index: for each entry in `INDEXED` (the user id, and the user
//! half-way through a login) a set per value names the sessions holding
//! it, so `purge_where` ends them in one Lua call without scanning. The
//! sets live at least as long as their sessions. The purge script deletes
//! the sessions its set names, keys it does not declare: this back end
//! needs a single Redis (or a primary with replicas), not Redis Cluster.

use std::collections::HashMap;
use std::sync::LazyLock;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration as CookieDuration;

use super::session::{PENDING_USER, USER_ID};
use super::session_store::SessionPurge;
use crate::core::random_alphanumeric;
use crate::store::redis::{unavailable, undecodable, Redis};
use crate::store::StoreError;

type State = HashMap<String, String>;

/// The entries a session can be ended by without a scan.
const INDEXED: [&str; 2] = [USER_ID, PENDING_USER];

/// How often an update reads again after losing a race.
const UPDATE_ATTEMPTS: usize = 8;

/// Extends each index set in KEYS[from..] to live at least ARGV[ttl]
/// seconds, after adding member ARGV[member] to it.
const ADD_TO_INDEXES: &str = r"
local function index(from, member, ttl)
  for i = from, #KEYS do
    redis.call('SADD', KEYS[i], member)
    if redis.call('TTL', KEYS[i]) < ttl then redis.call('EXPIRE', KEYS[i], ttl) end
  end
end
";

/// Creates session KEYS[1] (ARGV: state, ttl, member) unless it exists,
/// and indexes it in KEYS[2..].
static CREATE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{ADD_TO_INDEXES}
        local ttl = tonumber(ARGV[2])
        if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ttl) then return 0 end
        index(2, ARGV[3], ttl)
        return 1"
    ))
});

/// Replaces session KEYS[1] if it still holds ARGV[1] (ARGV: old state,
/// new state, ttl, member, number of old index sets): leaves the old
/// index sets KEYS[2..1+n] and joins the new ones after them.
static UPDATE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{ADD_TO_INDEXES}
        if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
        local ttl = tonumber(ARGV[3])
        local old = tonumber(ARGV[5])
        for i = 2, 1 + old do redis.call('SREM', KEYS[i], ARGV[4]) end
        redis.call('SET', KEYS[1], ARGV[2], 'EX', ttl)
        index(2 + old, ARGV[4], ttl)
        return 1"
    ))
});

/// Sets the time to live of session KEYS[1] to ARGV[1] if it exists, and
/// keeps its index sets KEYS[2..] at least as long.
static EXTEND: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        local ttl = tonumber(ARGV[1])
        if redis.call('EXPIRE', KEYS[1], ttl) == 0 then return 0 end
        for i = 2, #KEYS do
          if redis.call('TTL', KEYS[i]) < ttl then redis.call('EXPIRE', KEYS[i], ttl) end
        end
        return 1
        ",
    )
});

/// Deletes session KEYS[1] and leaves its index sets KEYS[2..] (ARGV[1]
/// is its member name).
static DELETE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        for i = 2, #KEYS do redis.call('SREM', KEYS[i], ARGV[1]) end
        return redis.call('DEL', KEYS[1])
        ",
    )
});

/// Deletes every session index set KEYS[1] names (sessions are keys
/// ARGV[1] .. member) and the set; returns how many sessions ended.
static PURGE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        local ended = 0
        for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
          ended = ended + redis.call('DEL', ARGV[1] .. member)
        end
        redis.call('DEL', KEYS[1])
        return ended
        ",
    )
});

#[derive(Debug, Clone)]
pub struct RedisSessionStore {
    redis: Redis,
}

fn seconds(ttl: &CookieDuration) -> i64 {
    ttl.whole_seconds().max(1)
}

fn encode(state: &State) -> Result<String, StoreError> {
    serde_json::to_string(state).map_err(undecodable("cannot serialise a session"))
}

impl RedisSessionStore {
    pub fn new(redis: Redis) -> Self {
        Self { redis }
    }

    fn session(&self, member: &str) -> String {
        self.redis.key(&format!("session:{member}"))
    }

    fn index(&self, entry: &str, value: &str) -> String {
        self.redis.key(&format!("sessions:{entry}:{value}"))
    }

    /// The index sets a session holding `state` belongs to.
    fn indexes(&self, state: &State) -> Vec<String> {
        INDEXED
            .iter()
            .filter_map(|entry| state.get(*entry).map(|value| self.index(entry, value)))
            .collect()
    }

    async fn get_raw(&self, member: &str) -> Result<Option<String>, StoreError> {
        redis::cmd("GET")
            .arg(self.session(member))
            .query_async(&mut self.redis.conn())
            .await
            .map_err(unavailable("cannot read a session from Redis"))
    }

    async fn create(&self, state: &State, ttl: &CookieDuration) -> Result<SessionKey, StoreError> {
        self.redis.writable()?;
        let json = encode(state)?;
        loop {
            let member = random_alphanumeric(64);
            let created: u8 = CREATE
                .key(self.session(&member))
                .key(self.indexes(state))
                .arg(&json)
                .arg(seconds(ttl))
                .arg(&member)
                .invoke_async(&mut self.redis.conn())
                .await
                .map_err(unavailable("cannot store a session in Redis"))?;
            if created == 1 {
                return SessionKey::try_from(member).map_err(|err| {
                    StoreError::unavailable("a session key", anyhow::Error::from(err))
                });
            }
        }
    }

    /// Replaces the state of session `member`; `false` when it is gone.
    async fn replace(
        &self,
        member: &str,
        state: &State,
        ttl: &CookieDuration,
    ) -> Result<bool, StoreError> {
        self.redis.writable()?;
        let json = encode(state)?;
        for _ in 0..UPDATE_ATTEMPTS {
            let Some(old) = self.get_raw(member).await? else {
                return Ok(false);
            };
            let old_state: State = serde_json::from_str(&old)
                .map_err(undecodable("a session in Redis is not valid"))?;
            let old_indexes = self.indexes(&old_state);
            let replaced: u8 = UPDATE
                .key(self.session(member))
                .key(&old_indexes)
                .key(self.indexes(state))
                .arg(&old)
                .arg(&json)
                .arg(seconds(ttl))
                .arg(member)
                .arg(old_indexes.len())
                .invoke_async(&mut self.redis.conn())
                .await
                .map_err(unavailable("cannot update a session in Redis"))?;
            if replaced == 1 {
                return Ok(true);
            }
        }
        Err(StoreError::Conflict)
    }

    async fn state(&self, member: &str) -> Result<Option<State>, StoreError> {
        match self.get_raw(member).await? {
            Some(json) => serde_json::from_str(&json)
                .map(Some)
                .map_err(undecodable("a session in Redis is not valid")),
            None => Ok(None),
        }
    }

    /// Ends the sessions whose `entry` is not indexed by scanning them all.
    async fn purge_by_scan(&self, entry: &str, encoded: &str) -> Result<usize, StoreError> {
        // The prefix is configuration: its glob characters match themselves.
        let prefix = self.session("");
        let mut pattern = String::with_capacity(prefix.len() + 8);
        for c in prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        let mut conn = self.redis.conn();
        let mut members = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut conn)
                .await
                .map_err(unavailable("cannot list the sessions in Redis"))?;
            members.extend(keys.into_iter().map(|key| key[prefix.len()..].to_owned()));
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let mut ended = 0;
        for member in members {
            let holds = self
                .state(&member)
                .await?
                .is_some_and(|state| state.get(entry).map(String::as_str) == Some(encoded));
            if holds && self.remove(&member).await? {
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// Deletes session `member`; `false` when there was none.
    async fn remove(&self, member: &str) -> Result<bool, StoreError> {
        self.redis.writable()?;
        let indexes = match self.state(member).await? {
            Some(state) => self.indexes(&state),
            None => Vec::new(),
        };
        let deleted: u8 = DELETE
            .key(self.session(member))
            .key(indexes)
            .arg(member)
            .invoke_async(&mut self.redis.conn())
            .await
            .map_err(unavailable("cannot delete a session from Redis"))?;
        Ok(deleted == 1)
    }
}

#[async_trait::async_trait]
impl SessionPurge for RedisSessionStore {
    async fn purge_where(&self, key: &str, value: &str) -> Result<usize, StoreError> {
        self.redis.writable()?;
        let encoded = serde_json::to_string(value)
            .map_err(|err| StoreError::unavailable("encoding a session value", err))?;
        if !INDEXED.contains(&key) {
            return self.purge_by_scan(key, &encoded).await;
        }
        let ended: usize = PURGE
            .key(self.index(key, &encoded))
            .arg(self.session(""))
            .invoke_async(&mut self.redis.conn())
            .await
            .map_err(unavailable("cannot end sessions in Redis"))?;
        Ok(ended)
    }
}

impl SessionStore for RedisSessionStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<State>, LoadError> {
        self.state(session_key.as_ref())
            .await
            .map_err(|err| LoadError::Other(err.into()))
    }

    async fn save(&self, state: State, ttl: &CookieDuration) -> Result<SessionKey, SaveError> {
        self.create(&state, ttl)
            .await
            .map_err(|err| SaveError::Other(err.into()))
    }

    async fn update(
        &self,
        session_key: SessionKey,
        state: State,
        ttl: &CookieDuration,
    ) -> Result<SessionKey, UpdateError> {
        let replaced = self
            .replace(session_key.as_ref(), &state, ttl)
            .await
            .map_err(|err| UpdateError::Other(err.into()))?;
        if replaced {
            return Ok(session_key);
        }
        // The session ended while this request ran (a logout): neither its
        // key nor its state may come back.
        self.create(&State::new(), ttl)
            .await
            .map_err(|err| UpdateError::Other(err.into()))
    }

    async fn update_ttl(
        &self,
        session_key: &SessionKey,
        ttl: &CookieDuration,
    ) -> anyhow::Result<()> {
        self.redis.writable()?;
        let member: &str = session_key.as_ref();
        let Some(state) = self.state(member).await? else {
            return Ok(());
        };
        let _: u8 = EXTEND
            .key(self.session(member))
            .key(self.indexes(&state))
            .arg(seconds(ttl))
            .invoke_async(&mut self.redis.conn())
            .await
            .map_err(unavailable("cannot extend a session in Redis"))?;
        Ok(())
    }

    async fn delete(&self, session_key: &SessionKey) -> anyhow::Result<()> {
        self.remove(session_key.as_ref()).await?;
        Ok(())
    }
}

#[cfg(test)]
#[path = "session_store_redis_tests.rs"]
mod tests;

//! The shared back end of the store traits (SPEC §7): one Redis connection
//! (the `redis` crate's `ConnectionManager`, which reconnects by itself)
//! and a key prefix, so several deployments — or parallel tests — share one
//! server without meeting. Every failure of Redis is `StoreError::Unavailable`.
//!
//! The areas' Redis stores live beside their file stores and build on
//! `Redis` (commands, Lua scripts) and `RedisDocument<T>` (a small JSON
//! document written by compare-and-swap on a version).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::StoreError;

mod document;
mod shared;
pub use document::RedisDocument;

#[cfg(test)]
pub mod test_server;

/// How long one command may take before the store reports `Unavailable`:
/// long enough for a busy server, short enough that a request answers 503
/// rather than hanging when Redis is gone.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);
/// Reconnection attempts per failed command (then the command fails and
/// the next one tries again).
const CONNECTION_RETRIES: usize = 2;

/// A connection to Redis and the prefix of every key this store uses.
/// Cheap to clone: clones share the connection.
#[derive(Clone)]
pub struct Redis {
    conn: ConnectionManager,
    prefix: Arc<str>,
    /// Commands and scripts sent on this connection (`round_trips`).
    round_trips: Arc<AtomicU64>,
}

impl std::fmt::Debug for Redis {
    // The URL may carry a password: only the prefix is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// Connects to `url` (`redis://…`, `rediss://…`, `unix:///…`) and
    /// checks that the server answers.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|err| StoreError::unavailable("REDIS_URL is not a Redis address", err))?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            .set_number_of_retries(CONNECTION_RETRIES);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|err| {
                // A wrong password is not an outage: say which it is, so an
                // operator does not wait for a Redis that is up.
                let context = if err.kind() == redis::ErrorKind::AuthenticationFailed {
                    "Redis refused the password in REDIS_URL"
                } else {
                    "cannot connect to Redis"
                };
                StoreError::unavailable(context, err)
            })?;
        Ok(Self {
            conn,
            prefix: prefix.into(),
            round_trips: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The same connection with another prefix.
    pub fn with_prefix(&self, prefix: &str) -> Self {
        Self {
            conn: self.conn.clone(),
            prefix: prefix.into(),
            round_trips: self.round_trips.clone(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The full name of the key `name` of this store.
    pub fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }

    /// A handle to the shared connection, for one command or script: each
    /// call is counted as one round trip.
    pub fn conn(&self) -> ConnectionManager {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        crate::metrics::redis_round_trip();
        self.conn.clone()
    }

    /// How many commands and scripts were sent on this connection (and its
    /// `with_prefix` copies): the gate's cost in Redis, for tests; the
    /// process-wide total is `portico_redis_round_trips_total` on /metrics,
    /// for the benchmark.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// Checked before every write: only the storage-fault tests make it
    /// fail (`inject_write_fault`), as they do for the file back ends.
    pub fn writable(&self) -> Result<(), StoreError> {
        if injected_fault(&self.prefix) {
            return Err(StoreError::unavailable(
                format!("writes under {} fail on purpose", self.prefix),
                redis::RedisError::from(std::io::Error::other("injected write fault")),
            ));
        }
        Ok(())
    }
}

/// Maps a Redis error to `Unavailable` with `context` (for the log).
pub fn unavailable(context: &'static str) -> impl FnOnce(redis::RedisError) -> StoreError {
    move |err| StoreError::unavailable(context, err)
}

/// Maps a record Redis holds that does not decode to `Unavailable`: the
/// data is there but not usable, as a damaged file would be.
pub fn undecodable(context: &'static str) -> impl FnOnce(serde_json::Error) -> StoreError {
    move |err| StoreError::unavailable(context, err)
}

#[cfg(feature = "fault-injection")]
static INJECTED_FAULTS: parking_lot::Mutex<Vec<String>> = parking_lot::Mutex::new(Vec::new());

/// Makes every write of the stores with key prefix `prefix` fail
/// (`true`) or work again (`false`).
#[cfg(feature = "fault-injection")]
#[doc(hidden)]
pub fn inject_write_fault(prefix: &str, failing: bool) {
    let mut faults = INJECTED_FAULTS.lock();
    faults.retain(|p| p != prefix);
    if failing {
        faults.push(prefix.to_owned());
    }
}

#[cfg(feature = "fault-injection")]
fn injected_fault(prefix: &str) -> bool {
    INJECTED_FAULTS.lock().iter().any(|p| p == prefix)
}

#[cfg(not(feature = "fault-injection"))]
fn injected_fault(_prefix: &str) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_redis_is_unavailable_and_its_password_is_never_shown() {
        let refused = Redis::connect("redis://:hunter2@127.0.0.1:1/", "p").await;
        let err = refused.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable { .. }));
        let shown = format!("{err} {err:?} {err:#}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let not_a_url = Redis::connect("http://example.com", "p").await.unwrap_err();
        assert!(not_a_url.to_string().contains("REDIS_URL"), "{not_a_url}");
    }

    #[tokio::test]
    async fn a_wrong_password_is_told_apart_from_an_unreachable_redis_and_is_never_shown() {
        let server = test_server::Throwaway::start();
        let admin = Redis::connect(&server.url(), "p").await.unwrap();
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("requirepass")
            .arg("right-password")
            .query_async(&mut admin.conn())
            .await
            .unwrap();
        let url = format!("{}?pass=hunter2", server.url());
        let err = Redis::connect(&url, "p").await.unwrap_err();
        let shown = format!("{err} {err:?} {err:#}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(err.to_string().contains("password"), "{shown}");
    }

    #[tokio::test]
    async fn a_store_handle_shows_its_prefix_and_nothing_of_the_connection() {
        let redis = test_server::connect("debug").await;
        let shown = format!("{redis:?}");
        assert!(shown.contains(redis.prefix()), "{shown}");
        assert!(!shown.contains("redis.sock"), "{shown}");
    }
}

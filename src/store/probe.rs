//! Which store holds the state, and whether it answers now: what
//! `/api/health` reports and what a failure page names.

use serde::Serialize;
use utoipa::ToSchema;

use super::redis::Redis;

/// Where the shared state is, and whether it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StoreState {
    /// The embedded file store in `DATA_DIR`.
    File,
    /// Redis (`REDIS_URL`), answering.
    Redis,
    /// Redis does not answer: everything but environment keys answers 503.
    Unavailable,
    /// Redis answers but holds other shared secrets than this instance
    /// uses (it lost its data while the instance ran): restart it.
    Diverged,
}

/// What `/api/health` asks about the store: nothing for the file store
/// (the process is the store), a `PING` for Redis.
#[derive(Debug, Clone)]
pub struct StoreProbe(Option<Redis>);

impl StoreProbe {
    pub fn files() -> Self {
        Self(None)
    }

    pub fn redis(redis: Redis) -> Self {
        Self(Some(redis))
    }

    pub async fn state(&self) -> StoreState {
        match &self.0 {
            None => StoreState::File,
            Some(redis) => match redis.ping().await {
                Ok(()) if redis.secret_conflict().is_some() => StoreState::Diverged,
                Ok(()) => StoreState::Redis,
                Err(err) => {
                    tracing::warn!(error = format!("{err:#}"), "health: Redis does not answer");
                    StoreState::Unavailable
                }
            },
        }
    }

    /// Why the store is not healthy beyond not answering, for `/api/health`.
    pub fn reason(&self) -> Option<String> {
        self.0.as_ref().and_then(Redis::secret_conflict)
    }

    pub fn is_redis(&self) -> bool {
        self.0.is_some()
    }
}

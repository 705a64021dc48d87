//! The stores a command works on. With the file store, the data directory
//! is held with its lock, so a command refuses while a server runs; with
//! Redis (`REDIS_URL`) there is no lock and commands work beside running
//! servers (SPEC §1.2), seen by every instance at once.

use std::sync::Arc;

use crate::auth::activity::ActivityLog;
use crate::auth::activity_store_redis::RedisActivityStore;
use crate::auth::dashboard_keys::{Keys, RedisKeyStore};
use crate::auth::hashing::Hasher;
use crate::auth::offline_keys::KeyStores;
use crate::auth::session_store_redis::RedisSessionStore;
use crate::auth::usage::RedisUsageStore;
use crate::auth::user_store_redis::RedisUserStore;
use crate::auth::users::Users;
use crate::config::RedisSettings;
use crate::store::redis::Redis;

/// One attempt to reach Redis: a command does not wait as a server does.
pub(super) async fn connect(settings: &RedisSettings) -> Result<Redis, String> {
    Redis::connect(settings.url(), settings.prefix())
        .await
        .map_err(|err| {
            format!(
                "cannot reach Redis at REDIS_URL ({err}); start it, or check REDIS_URL, \
                 and run this again"
            )
        })
}

/// The users and sessions of a Redis deployment.
pub(super) fn redis_users(redis: &Redis, hasher: Arc<Hasher>) -> (Users, RedisSessionStore) {
    (
        Users::new(Arc::new(RedisUserStore::new(redis.clone())), hasher),
        RedisSessionStore::new(redis.clone()),
    )
}

/// The key stores of a Redis deployment.
pub(super) fn redis_keys(redis: &Redis) -> KeyStores {
    KeyStores {
        keys: Keys::new(
            Arc::new(RedisKeyStore::new(redis.clone())),
            format!("Redis ({}:keys)", redis.prefix()),
            Hasher::for_this_machine(),
        ),
        activity: ActivityLog::new(Arc::new(RedisActivityStore::new(redis.clone()))),
        usage: Arc::new(RedisUsageStore::new(redis.clone())),
    }
}

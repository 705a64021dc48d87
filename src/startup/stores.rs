//! Which back end holds the state (SPEC §7): the files of `DATA_DIR`, or
//! Redis when `REDIS_URL` is set — one or the other for every store, never
//! a mix. Also the secrets every instance must share, and the dashboard's
//! failure counters, which are exact across instances only in Redis.

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};

use crate::auth::activity::ActivityLog;
use crate::auth::activity_store_redis::RedisActivityStore;
use crate::auth::dashboard_keys::{Keys, RedisKeyStore};
use crate::auth::env_keys::KeyIdSecret;
use crate::auth::failure_counter::{FailureCounter, LOGIN_FAILURES, SECOND_STEP_FAILURES};
use crate::auth::hashing::Hasher;
use crate::auth::session_backend::Sessions;
use crate::auth::session_store::FileSessionStore;
use crate::auth::session_store_redis::RedisSessionStore;
use crate::auth::usage::{FileUsageStore, RedisUsageStore, UsageStore};
use crate::auth::user_store_redis::RedisUserStore;
use crate::auth::users::Users;
use crate::config::{RedisSettings, Settings};
use crate::core::random_alphanumeric;
use crate::dashboard;
use crate::jobs::{FileJobStore, JobStore, RedisJobStore};
use crate::store::redis::Redis;
use crate::store::write_atomic;
use crate::workspaces::{RedisWorkspaceStore, Registry};

const SESSION_SECRET_FILE: &str = "session-secret";
const LOGIN_FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// How often start-up asks again for a Redis that does not answer.
const REDIS_RETRY: Duration = Duration::from_secs(2);

/// Every store of the application, on one back end.
pub(super) struct Stores {
    pub(super) users: Arc<Users>,
    pub(super) keys: Arc<Keys>,
    pub(super) activity: Arc<ActivityLog>,
    pub(super) sessions: Sessions,
    pub(super) registry: Registry,
    pub(super) queue: Arc<dyn JobStore>,
    pub(super) usage: Arc<dyn UsageStore>,
    pub(super) key_id_secret: KeyIdSecret,
    pub(super) session_secret: SecretString,
    pub(super) setup_token: SecretString,
    pub(super) login_failures: FailureCounter,
    pub(super) second_step_failures: FailureCounter,
    /// The shared connection in Redis mode.
    pub(super) redis: Option<Redis>,
}

/// The stores in the files of `data_dir` (held with its lock).
pub(super) fn open_files(
    settings: &Settings,
    data_dir: &Path,
    hasher: Arc<Hasher>,
) -> anyhow::Result<Stores> {
    Ok(Stores {
        users: Arc::new(Users::load(data_dir, hasher.clone())?),
        keys: Arc::new(Keys::load(data_dir, hasher)?),
        activity: Arc::new(ActivityLog::load(data_dir)?),
        sessions: Sessions::Files(FileSessionStore::load(data_dir)?),
        registry: Registry::load(data_dir)?,
        queue: Arc::new(FileJobStore::load(data_dir, settings.job_lease)?),
        usage: Arc::new(FileUsageStore::load(data_dir)?),
        key_id_secret: KeyIdSecret::load_or_create(data_dir)?,
        session_secret: file_session_secret(settings, data_dir)?,
        setup_token: settings
            .initial_setup_token
            .clone()
            .unwrap_or_else(|| SecretString::from(random_alphanumeric(32))),
        login_failures: FailureCounter::local(max_failed_logins(), LOGIN_FAILURE_WINDOW),
        second_step_failures: FailureCounter::local(max_wrong_codes(), LOGIN_FAILURE_WINDOW),
        redis: None,
    })
}

/// The stores in Redis; `data_dir` keeps only this instance's clones.
pub(super) async fn open_redis(
    settings: &Settings,
    redis: Redis,
    data_dir: &Path,
    hasher: Arc<Hasher>,
) -> anyhow::Result<Stores> {
    let shared = |name: &'static str, make: fn() -> String| {
        let redis = redis.clone();
        async move {
            redis
                .shared_secret(name, make)
                .await
                .with_context(|| format!("cannot read the shared {name} from Redis"))
        }
    };
    let session_secret = match &settings.session_secret {
        Some(secret) => secret.clone(),
        None => shared("session-secret", || random_alphanumeric(128)).await?,
    };
    let setup_token = match &settings.initial_setup_token {
        Some(token) => token.clone(),
        None => shared("setup-token", || random_alphanumeric(32)).await?,
    };
    let key_id_secret = KeyIdSecret::from_hex(
        shared("env-key-id-secret", KeyIdSecret::generate_hex)
            .await?
            .expose_secret(),
    )?;
    let data_dir = data_dir
        .canonicalize()
        .with_context(|| format!("cannot open {}", data_dir.display()))?;
    Ok(Stores {
        users: Arc::new(Users::new(
            Arc::new(RedisUserStore::new(redis.clone())),
            hasher.clone(),
        )),
        keys: Arc::new(Keys::new(
            Arc::new(RedisKeyStore::new(redis.clone())),
            format!("Redis ({}:keys)", redis.prefix()),
            hasher,
        )),
        activity: Arc::new(ActivityLog::new(Arc::new(RedisActivityStore::new(
            redis.clone(),
        )))),
        sessions: Sessions::Redis(RedisSessionStore::new(redis.clone())),
        registry: Registry::new(&data_dir, Arc::new(RedisWorkspaceStore::new(redis.clone()))),
        queue: Arc::new(RedisJobStore::new(redis.clone(), settings.job_lease)),
        usage: Arc::new(RedisUsageStore::new(redis.clone())),
        key_id_secret,
        session_secret,
        setup_token,
        login_failures: FailureCounter::shared(
            &redis,
            LOGIN_FAILURES,
            max_failed_logins(),
            LOGIN_FAILURE_WINDOW,
        ),
        second_step_failures: FailureCounter::shared(
            &redis,
            SECOND_STEP_FAILURES,
            max_wrong_codes(),
            LOGIN_FAILURE_WINDOW,
        ),
        redis: Some(redis),
    })
}

/// Connects to Redis, asking again every two seconds while it does not
/// answer: the shared secrets are there, so an instance cannot serve
/// without it once. Each failed attempt logs one line (without the URL,
/// which may hold a password).
pub(super) async fn connect_redis(settings: &RedisSettings) -> Redis {
    let mut attempts: u32 = 0;
    loop {
        match Redis::connect(settings.url(), settings.prefix()).await {
            Ok(redis) => {
                if attempts > 0 {
                    tracing::info!(attempts, "Redis answers; starting");
                }
                return redis;
            }
            Err(err) => {
                attempts += 1;
                tracing::warn!(
                    error = format!("{err:#}"),
                    attempts,
                    "Redis (REDIS_URL) does not answer; Portico waits for it and asks again \
                     every {} s",
                    REDIS_RETRY.as_secs()
                );
                tokio::time::sleep(REDIS_RETRY).await;
            }
        }
    }
}

fn max_failed_logins() -> NonZeroU32 {
    NonZeroU32::new(dashboard::MAX_FAILED_LOGINS).expect("non-zero")
}

fn max_wrong_codes() -> NonZeroU32 {
    NonZeroU32::new(dashboard::MAX_WRONG_CODES).expect("non-zero")
}

/// `SESSION_SECRET`, or a secret generated once and kept in the data dir.
fn file_session_secret(settings: &Settings, data_dir: &Path) -> anyhow::Result<SecretString> {
    if let Some(secret) = &settings.session_secret {
        return Ok(secret.clone());
    }
    let path = data_dir.join(SESSION_SECRET_FILE);
    let secret = match std::fs::read_to_string(&path) {
        Ok(secret) if secret.trim().len() >= 64 => secret.trim().to_owned(),
        _ => {
            let secret = random_alphanumeric(128);
            write_atomic(&path, secret.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            secret
        }
    };
    Ok(SecretString::from(secret))
}

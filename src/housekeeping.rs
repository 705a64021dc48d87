//! Periodic chores beside the server: writing the activity log, session
//! idle times and key last-used times, taking back jobs whose worker's
//! lease ran out, deleting jobs older than 7 days, and (Redis mode)
//! writing back the shared secrets should Redis have lost them.
//! Layer 5 (README, "The module map"): takes the stores it writes from `startup`.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::activity::ActivityLog;
use crate::auth::dashboard_keys::Keys;
use crate::auth::session_backend::Sessions;
use crate::jobs::JobStore;
use crate::store::redis::Redis;

/// What the chores write to the data directory.
#[derive(Clone)]
pub(crate) struct Services {
    pub(crate) activity: Arc<ActivityLog>,
    pub(crate) sessions: Sessions,
    pub(crate) keys: Arc<Keys>,
    pub(crate) queue: Arc<dyn JobStore>,
    /// Redis mode: the shared secrets are written back every tick, in
    /// case Redis lost them (`Redis::reassert_shared_secrets`).
    pub(crate) redis: Option<Redis>,
}

const TICK: Duration = Duration::from_secs(2);

/// Starts the periodic chores beside the server.
pub(crate) fn spawn(services: Services) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(TICK);
        let mut count: u64 = 0;
        loop {
            ticks.tick().await;
            count += 1;
            if let Err(err) = services.activity.flush().await {
                tracing::warn!(error = format!("{err:#}"), "cannot save the activity log");
            }
            if let Some(redis) = &services.redis {
                if let Err(err) = redis.reassert_shared_secrets().await {
                    tracing::warn!(
                        error = format!("{err:#}"),
                        "cannot write the shared secrets back"
                    );
                }
            }
            // Workers do it too before each claim; this catches a lease
            // that ran out while every worker is busy (or one panicked).
            if let Err(err) = services.queue.reclaim_expired().await {
                tracing::warn!(error = format!("{err:#}"), "cannot take back expired jobs");
            }
            if count.is_multiple_of(5) {
                if let Err(err) = services.sessions.flush().await {
                    tracing::warn!(error = format!("{err:#}"), "cannot save sessions");
                }
            }
            if count.is_multiple_of(1800) || count == 1 {
                match services.queue.prune().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(jobs = n, "deleted jobs finished more than 7 days ago"),
                    Err(err) => {
                        tracing::warn!(error = format!("{err:#}"), "cannot delete old jobs")
                    }
                }
            }
            if count.is_multiple_of(30) {
                if let Err(err) = services.keys.flush_last_used().await {
                    tracing::warn!(
                        error = format!("{err:#}"),
                        "cannot save key last-used times"
                    );
                }
            }
        }
    });
}

/// Writes what is still only in memory (at shutdown).
pub(crate) async fn flush(services: &Services) {
    let _ = services.activity.flush().await;
    let _ = services.sessions.flush().await;
    let _ = services.keys.flush_last_used().await;
}

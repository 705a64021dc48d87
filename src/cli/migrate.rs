//! `portico migrate to-redis`: copies a file data directory into Redis, so
//! a single-node deployment can move to several instances (SPEC §7). It
//! holds the data directory's lock (so it refuses while a server runs on
//! it) and adds only what Redis does not hold yet — users and keys by id,
//! workspaces by id, jobs by id, account events and failure rows that are
//! not there, each key's usage as the files have it — so running it twice
//! changes nothing the second time.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use secrecy::ExposeSecret;

use crate::auth::activity_store::{ActivityStore, FileActivityStore};
use crate::auth::activity_store_redis::RedisActivityStore;
use crate::auth::dashboard_keys::{FileKeyStore, KeyStore, RedisKeyStore};
use crate::auth::usage::{hour_of, FileUsageStore, RedisUsageStore, UsageStore};
use crate::auth::user_store::{FileUserStore, UserStore};
use crate::auth::user_store_redis::RedisUserStore;
use crate::config::{RedisSettings, Settings, DEFAULT_JOB_LEASE};
use crate::jobs::{FileJobStore, JobStatus, JobStore, RedisJobStore};
use crate::store::redis::Redis;
use crate::store::{DataDir, DataDirError};
use crate::workspaces::{RedisWorkspaceStore, Registry, WorkspaceStore};

/// What one run copied, and what Redis held already.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub users: (usize, usize),
    pub keys: (usize, usize),
    pub workspaces: (usize, usize),
    pub jobs: (usize, usize),
    pub account_events: (usize, usize),
    pub failure_rows: (usize, usize),
    pub usage_keys: usize,
    /// The generated secrets (cookie key, env-key id key): copied, or
    /// already the same in Redis.
    pub secrets: (usize, usize),
}

impl std::fmt::Display for Copied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let row = |f: &mut std::fmt::Formatter<'_>, what: &str, (new, there): (usize, usize)| {
            writeln!(f, "{what:<16} {new:>6} copied, {there:>6} already in Redis")
        };
        row(f, "users", self.users)?;
        row(f, "keys", self.keys)?;
        row(f, "workspaces", self.workspaces)?;
        row(f, "jobs", self.jobs)?;
        row(f, "account events", self.account_events)?;
        row(f, "failure rows", self.failure_rows)?;
        writeln!(
            f,
            "{:<16} {:>6} keys' hourly counts written",
            "usage", self.usage_keys
        )?;
        row(f, "secrets", self.secrets)
    }
}

pub fn to_redis(settings: &Settings, data_dir: Option<PathBuf>, url: Option<String>) -> ExitCode {
    let data_dir = data_dir.unwrap_or_else(|| settings.data_dir.clone());
    let target = match url {
        Some(url) => {
            let prefix = settings.redis.as_ref().map(|r| format!("{}:", r.prefix()));
            match RedisSettings::parse(Some(&url), prefix.as_deref()) {
                Ok(Some(target)) => target,
                Ok(None) => unreachable!("a URL was given"),
                Err(err) => {
                    eprintln!("portico: --redis-url: {}", err.problem);
                    return ExitCode::from(2);
                }
            }
        }
        None => match &settings.redis {
            Some(target) => target.clone(),
            None => {
                eprintln!(
                    "portico: no Redis to copy to: set REDIS_URL (and REDIS_PREFIX if you use \
                     one) as the servers will, or pass --redis-url"
                );
                return ExitCode::from(2);
            }
        },
    };
    match super::block_on(run(&data_dir, &target)) {
        Ok(copied) => {
            print!(
                "Copied {} into Redis (prefix '{}:'):\n{copied}",
                data_dir.display(),
                target.prefix()
            );
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("portico: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(data_dir: &Path, target: &RedisSettings) -> Result<Copied, String> {
    if !data_dir.is_dir() {
        return Err(format!(
            "there is no data directory at {}; pass --data-dir, or set DATA_DIR",
            data_dir.display()
        ));
    }
    let held = DataDir::open(data_dir).map_err(|err| match err {
        DataDirError::InUse { path } => format!(
            "a Portico server is running on {}; stop it first, so that nothing changes \
             while it is copied, then run this again",
            path.display()
        ),
        other => other.to_string(),
    })?;
    let redis = super::stores::connect(target).await?;
    copy(held.path(), &redis).await.map_err(|err| {
        format!(
            "copying failed part-way (run it again: what is copied stays, \
                                and nothing is copied twice): {err:#}"
        )
    })
}

/// Copies everything in `data_dir` that `redis` does not hold yet.
pub async fn copy(data_dir: &Path, redis: &Redis) -> anyhow::Result<Copied> {
    let mut copied = Copied {
        secrets: copy_secrets(data_dir, redis).await?,
        ..Copied::default()
    };

    let users = FileUserStore::load(data_dir)?.list().await?;
    let added = RedisUserStore::new(redis.clone()).import(&users).await?;
    copied.users = (added, users.len() - added);

    let keys = RedisKeyStore::new(redis.clone());
    for record in FileKeyStore::load(data_dir)?.list().await? {
        if keys.get(&record.id).await?.is_some() {
            copied.keys.1 += 1;
        } else {
            keys.insert(record).await?;
            copied.keys.0 += 1;
        }
    }

    let workspaces = RedisWorkspaceStore::new(redis.clone());
    for workspace in Registry::load(data_dir)?.list().await? {
        if workspaces.get(workspace.id.as_str()).await?.is_some() {
            copied.workspaces.1 += 1;
        } else {
            let version = workspaces.list().await?.version;
            workspaces.insert(version, workspace).await?;
            copied.workspaces.0 += 1;
        }
    }

    copied.jobs = copy_jobs(data_dir, redis).await?;
    (copied.account_events, copied.failure_rows) = copy_activity(data_dir, redis).await?;

    let file_usage = FileUsageStore::load(data_dir)?;
    let redis_usage = RedisUsageStore::new(redis.clone());
    let now = hour_of(Utc::now());
    for key_id in file_usage.key_ids().await? {
        let buckets: Vec<_> = file_usage
            .series(&key_id, now)
            .await?
            .into_iter()
            .filter(|(_, counts)| !counts.is_empty())
            .collect();
        redis_usage.replace(&key_id, &buckets).await?;
        copied.usage_keys += 1;
    }
    Ok(copied)
}

/// The secrets the file store generated: the cookie key (which also
/// encrypts two-factor secrets, so it must come along) and the key behind
/// `VALID_API_KEYS` client ids (so clients keep their ids and jobs). Redis
/// keeps a secret it already has; a different one there is an error.
async fn copy_secrets(data_dir: &Path, redis: &Redis) -> anyhow::Result<(usize, usize)> {
    let (mut new, mut there) = (0, 0);
    for name in ["session-secret", "env-key-id-secret"] {
        let path = data_dir.join(name);
        let value = match std::fs::read_to_string(&path) {
            Ok(value) => value.trim().to_owned(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
        };
        let held_before = redis.has_shared_secret(name).await?;
        let stored = redis.shared_secret(name, || value.clone()).await?;
        anyhow::ensure!(
            stored.expose_secret() == value,
            "Redis already holds another {name} than {}: it serves another deployment \
             (choose another REDIS_PREFIX) or was set up before; nothing more was copied",
            path.display()
        );
        if held_before {
            there += 1;
        } else {
            new += 1;
        }
    }
    Ok((new, there))
}

/// Every job, finished or not; a job the stopped server was running goes
/// back to the queue (its attempts kept), as a restart would have done.
async fn copy_jobs(data_dir: &Path, redis: &Redis) -> anyhow::Result<(usize, usize)> {
    let files = FileJobStore::load(data_dir, DEFAULT_JOB_LEASE)?;
    let queue = RedisJobStore::new(redis.clone(), DEFAULT_JOB_LEASE);
    let summaries = files.list(&|_| true).await?;
    let mut jobs = files.load_all(summaries).await?;
    // Oldest first, so the queue keeps its order.
    jobs.sort_by(|a, b| {
        a.created_at
            .cmp(&b.created_at)
            .then_with(|| a.id.cmp(&b.id))
    });
    let (mut new, mut there) = (0, 0);
    for mut job in jobs {
        if queue.get(&job.id).await?.is_some() {
            there += 1;
            continue;
        }
        if job.status == JobStatus::Processing {
            job.status = JobStatus::Pending;
            job.started_at = None;
        }
        let id = job.id.clone();
        queue
            .submit(job, false)
            .await?
            .map_err(|_| anyhow::anyhow!("Redis refused job {}", id.as_str()))?;
        new += 1;
    }
    Ok((new, there))
}

/// Account events and failure rows, oldest first, leaving out those Redis
/// holds already.
async fn copy_activity(
    data_dir: &Path,
    redis: &Redis,
) -> anyhow::Result<((usize, usize), (usize, usize))> {
    let files = FileActivityStore::load(data_dir)?;
    let shared = Arc::new(RedisActivityStore::new(redis.clone()));
    let held = shared.account_events().await?;
    let (mut events, mut rows) = ((0, 0), (0, 0));
    for event in files.account_events().await?.into_iter().rev() {
        if held.contains(&event) {
            events.1 += 1;
        } else {
            shared.push_account(event);
            events.0 += 1;
        }
    }
    let held: HashSet<_> = shared
        .failure_rows()
        .await?
        .into_iter()
        .map(|row| (row.code, row.client, row.hour))
        .collect();
    for row in files.failure_rows().await?.into_iter().rev() {
        if held.contains(&(row.code.clone(), row.client, row.hour)) {
            rows.1 += 1;
            continue;
        }
        shared.count_failure(&row.code, row.client, row.hour, row.first_at);
        for _ in 1..row.count {
            shared.count_failure(&row.code, row.client, row.hour, row.last_at);
        }
        rows.0 += 1;
    }
    shared
        .flush()
        .await
        .context("cannot write the activity trail to Redis")?;
    Ok((events, rows))
}

//! `RedisJobStore`: the job queue in Redis, shared by every instance
//! (SPEC §7). Each job is a row across a few hashes (the job as submitted,
//! its listing form, and the fields that change); each change of state is
//! one Lua script (`scripts`), so a job is claimed by one worker of one
//! instance, and a lease taken over by `reclaim_expired` is lost to the
//! worker that held it, everywhere at once.
//!
//! Why not Streams and consumer groups: a stream delivers in arrival
//! order, and the queue must serve owners in turn (round-robin, SPEC §5.1)
//! whatever their backlog — a consumer group cannot choose the next entry
//! by owner. The scripts give what XREADGROUP/XCLAIM/XAUTOCLAIM would:
//! `claim` takes a job and its lease atomically (a sorted set of lease
//! ends on the Redis server's clock), `renew` extends it only for its
//! holder, `finish` records only for its holder, and `reclaim_expired`
//! (any instance) puts back or gives up every job whose lease ended. The
//! owner served last is shared too, so the turns hold across instances.
//! Scripts name the keys they touch (one prefix): a single Redis, or a
//! primary with replicas; not Redis Cluster.
//!
//! Workers wake on a local submission at once, and on another instance's
//! within `POLL` (a cheap look at the queue's size).

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use super::answer::Answer;
use super::engine::EngineError;
use super::job::{Job, JobId, JobStatus};
use super::store::{
    given_up, JobStore, QueueCounts, TooManyJobs, Visible, WorkerId, MAX_ATTEMPTS,
    MAX_UNFINISHED_PER_OWNER,
};
use crate::store::redis::{unavailable, Redis};
use crate::store::StoreError;

mod rows;
mod scripts;

use rows::{assemble, json, millis, optional};

const RETENTION_DAYS: i64 = 7;
/// How often an idle worker looks for jobs submitted on other instances.
const POLL: Duration = Duration::from_millis(250);

const KEY_NAMES: [&str; 19] = [
    "body",
    "summary",
    "status",
    "attempts",
    "started",
    "completed",
    "result",
    "error",
    "owner",
    "all",
    "queue",
    "member",
    "owners",
    "last-owner",
    "leases",
    "holder",
    "unfinished",
    "finished",
    "sequence",
];

#[derive(Debug)]
pub struct RedisJobStore {
    redis: Redis,
    keys: Vec<String>,
    lease: Duration,
    work: Notify,
}

impl RedisJobStore {
    /// The queue under the prefix of `redis`; claimed jobs are leased for
    /// `lease`.
    pub fn new(redis: Redis, lease: Duration) -> Self {
        Self {
            keys: KEY_NAMES
                .iter()
                .map(|name| redis.key(&format!("jobs:{name}")))
                .collect(),
            redis,
            lease,
            work: Notify::new(),
        }
    }

    fn key(&self, name: &str) -> &str {
        let index = KEY_NAMES
            .iter()
            .position(|n| *n == name)
            .expect("a job key");
        &self.keys[index]
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        script: &redis::Script,
        args: &[String],
    ) -> anyhow::Result<T> {
        self.redis.writable()?;
        let mut invocation = script.prepare_invoke();
        invocation.key(&self.keys[..]);
        for arg in args {
            invocation.arg(arg);
        }
        Ok(invocation
            .invoke_async(&mut self.redis.conn())
            .await
            .map_err(unavailable("cannot change the job queue in Redis"))?)
    }

    /// The jobs `ids` in the form `base` ("body" or "summary"), in order;
    /// ids with no job are left out.
    async fn fetch(&self, ids: &[String], base: &str) -> anyhow::Result<Vec<Job>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut fields = vec![base, "status", "attempts", "started", "completed", "error"];
        if base == "body" {
            fields.push("result");
        }
        let mut pipe = redis::pipe();
        for id in ids {
            for field in &fields {
                pipe.cmd("HGET").arg(self.key(field)).arg(id);
            }
        }
        let values: Vec<Option<String>> = pipe
            .query_async(&mut self.redis.conn())
            .await
            .map_err(unavailable("cannot read jobs from Redis"))
            .map_err(anyhow::Error::from)?;
        let mut jobs = Vec::with_capacity(ids.len());
        for row in values.chunks(fields.len()) {
            if let Some(base) = &row[0] {
                jobs.push(assemble(base, &row[1..])?);
            }
        }
        Ok(jobs)
    }

    async fn summaries(&self, visible: Visible<'_>) -> anyhow::Result<Vec<Job>> {
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.key("all"))
            .arg(0)
            .arg(-1)
            .query_async(&mut self.redis.conn())
            .await
            .map_err(unavailable("cannot list jobs in Redis"))?;
        let mut jobs = self.fetch(&ids, "summary").await?;
        jobs.retain(|job| visible(job));
        jobs.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.id.cmp(&a.id))
        });
        Ok(jobs)
    }

    async fn pending_anywhere(&self) -> bool {
        let pending: Result<u64, StoreError> = redis::cmd("ZCARD")
            .arg(self.key("queue"))
            .query_async(&mut self.redis.conn())
            .await
            .map_err(unavailable("cannot look at the job queue in Redis"));
        pending.is_ok_and(|n| n > 0)
    }
}

#[async_trait]
impl JobStore for RedisJobStore {
    async fn submit(&self, job: Job, limited: bool) -> anyhow::Result<Result<(), TooManyJobs>> {
        let limit = if limited { MAX_UNFINISHED_PER_OWNER } else { 0 };
        let args = [
            job.id.to_string(),
            job.owner_id.clone(),
            job.status.as_str().to_owned(),
            limit.to_string(),
            millis(job.created_at).to_string(),
            json(&job)?,
            json(&job.summary())?,
            job.attempts.to_string(),
            optional(job.started_at.as_ref())?,
            optional(job.completed_at.as_ref())?,
            optional(job.result.as_ref())?,
            job.error.clone().unwrap_or_default(),
            job.completed_at
                .map(millis)
                .map(|ms| ms.to_string())
                .unwrap_or_default(),
        ];
        let stored: u8 = self.run(&scripts::SUBMIT, &args).await?;
        if stored == 0 {
            return Ok(Err(TooManyJobs));
        }
        self.work.notify_one();
        Ok(Ok(()))
    }

    async fn get(&self, id: &JobId) -> anyhow::Result<Option<Job>> {
        Ok(self.fetch(&[id.to_string()], "body").await?.pop())
    }

    async fn list(&self, visible: Visible<'_>) -> anyhow::Result<Vec<Job>> {
        self.summaries(visible).await
    }

    async fn counts(&self, visible: Visible<'_>) -> anyhow::Result<QueueCounts> {
        Ok(QueueCounts::of(&self.summaries(visible).await?))
    }

    async fn claim(&self, worker: &WorkerId) -> anyhow::Result<Option<Job>> {
        let args = [
            worker.to_string(),
            json(&Utc::now())?,
            self.lease.as_millis().to_string(),
        ];
        let claimed: Option<String> = self.run(&scripts::CLAIM, &args).await?;
        let Some(id) = claimed else {
            return Ok(None);
        };
        let job = self.fetch(std::slice::from_ref(&id), "body").await?.pop();
        job.map(Some)
            .with_context(|| format!("job {id} was claimed but cannot be read"))
    }

    async fn renew(&self, id: &JobId, worker: &WorkerId) -> anyhow::Result<bool> {
        let args = [
            id.to_string(),
            worker.to_string(),
            self.lease.as_millis().to_string(),
        ];
        let renewed: u8 = self.run(&scripts::RENEW, &args).await?;
        Ok(renewed == 1)
    }

    async fn finish(
        &self,
        id: &JobId,
        worker: &WorkerId,
        outcome: Result<Answer, EngineError>,
    ) -> anyhow::Result<bool> {
        let now = Utc::now();
        let (status, result, error) = match outcome {
            Ok(answer) => (JobStatus::Completed, json(&answer)?, String::new()),
            Err(error) => (JobStatus::Failed, String::new(), error.to_string()),
        };
        let args = [
            id.to_string(),
            worker.to_string(),
            status.as_str().to_owned(),
            json(&now)?,
            millis(now).to_string(),
            result,
            error,
        ];
        let started: Option<String> = self.run(&scripts::FINISH, &args).await?;
        let Some(started) = started else {
            return Ok(false);
        };
        if let Ok(started) = serde_json::from_str::<DateTime<Utc>>(&started) {
            crate::metrics::job_finished((now - started).to_std().unwrap_or_default());
        }
        Ok(true)
    }

    async fn cancel(&self, id: &JobId, by: &str) -> anyhow::Result<Result<Option<Job>, Job>> {
        let now = Utc::now();
        let args = [
            id.to_string(),
            json(&now)?,
            millis(now).to_string(),
            format!("Cancelled by {by} before it started"),
        ];
        let outcome: u8 = self.run(&scripts::CANCEL, &args).await?;
        let job = self.get(id).await?;
        Ok(match (outcome, job) {
            (2, Some(job)) => Ok(Some(job)),
            (1, Some(job)) => Err(job),
            _ => Ok(None),
        })
    }

    async fn reclaim_expired(&self) -> anyhow::Result<usize> {
        let now = Utc::now();
        let args = [
            MAX_ATTEMPTS.to_string(),
            given_up(),
            json(&now)?,
            millis(now).to_string(),
        ];
        let reclaimed: usize = self.run(&scripts::RECLAIM, &args).await?;
        if reclaimed > 0 {
            tracing::warn!(
                reclaimed,
                "jobs whose worker stopped renewing its lease were taken back"
            );
            self.work.notify_one();
        }
        Ok(reclaimed)
    }

    async fn prune(&self) -> anyhow::Result<usize> {
        let cutoff = Utc::now() - chrono::Duration::days(RETENTION_DAYS);
        self.run(&scripts::PRUNE, &[millis(cutoff).to_string()])
            .await
    }

    async fn work_arrived(&self) {
        let elsewhere = async {
            loop {
                tokio::time::sleep(POLL).await;
                if self.pending_anywhere().await {
                    return;
                }
            }
        };
        tokio::select! {
            () = self.work.notified() => {}
            () = elsewhere => {}
        }
    }

    fn lease(&self) -> Duration {
        self.lease
    }
}

#[cfg(test)]
mod tests;

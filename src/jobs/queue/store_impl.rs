//! `JobStore` for `FileJobStore`: each change takes the write lock, goes
//! through `change` (one `Document` per job file) and updates the index.

use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use chrono::Utc;

use super::{next_in_turn, FileJobStore, Lease, RETENTION_DAYS};
use crate::jobs::answer::Answer;
use crate::jobs::engine::EngineError;
use crate::jobs::job::{Job, JobId, JobStatus};
use crate::jobs::store::{
    JobStore, QueueCounts, TooManyJobs, Visible, WorkerId, MAX_UNFINISHED_PER_OWNER,
};

#[async_trait]
impl JobStore for FileJobStore {
    async fn submit(&self, job: Job, limited: bool) -> anyhow::Result<Result<(), TooManyJobs>> {
        let _write = self.writes.lock().await;
        let unfinished = self
            .summaries(|j| j.owner_id == job.owner_id && !j.status.is_finished())
            .len();
        if limited && unfinished >= MAX_UNFINISHED_PER_OWNER {
            return Ok(Err(TooManyJobs));
        }
        self.store(&job).await?;
        self.work.notify_one();
        Ok(Ok(()))
    }

    async fn get(&self, id: &JobId) -> anyhow::Result<Option<Job>> {
        Ok(self.read(id).await)
    }

    async fn list(&self, visible: Visible<'_>) -> anyhow::Result<Vec<Job>> {
        Ok(self.summaries(visible))
    }

    async fn counts(&self, visible: Visible<'_>) -> anyhow::Result<QueueCounts> {
        Ok(QueueCounts::of(&self.summaries(visible)))
    }

    async fn claim(&self, worker: &WorkerId) -> anyhow::Result<Option<Job>> {
        let mut last_owner = self.writes.lock().await;
        let pending = self.summaries(|job| job.status == JobStatus::Pending);
        let Some(next) = next_in_turn(&pending, last_owner.as_deref()) else {
            return Ok(None);
        };
        let id = next.id.clone();
        let claimed = self
            .change(&id, |job| {
                job.start();
                Ok::<_, ()>(job.clone())
            })
            .await?;
        let Some(Ok(job)) = claimed else {
            // Dropped from the index, or every worker would stop on it.
            self.index().remove(&id);
            anyhow::bail!("the file of job {id} cannot be read; it is skipped");
        };
        self.leases().insert(
            id,
            Lease {
                worker: worker.clone(),
                expires: Instant::now() + self.lease,
            },
        );
        *last_owner = Some(job.owner_id.clone());
        Ok(Some(job))
    }

    async fn renew(&self, id: &JobId, worker: &WorkerId) -> anyhow::Result<bool> {
        let mut leases = self.leases();
        match leases.get_mut(id) {
            Some(lease) if lease.worker == *worker => {
                lease.expires = Instant::now() + self.lease;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn finish(
        &self,
        id: &JobId,
        worker: &WorkerId,
        outcome: Result<Answer, EngineError>,
    ) -> anyhow::Result<bool> {
        let _write = self.writes.lock().await;
        if !self.holds(id, worker) {
            return Ok(false);
        }
        let recorded = self
            .change(id, |job| {
                job.finish(outcome);
                Ok::<_, ()>(())
            })
            .await?;
        self.leases().remove(id);
        Ok(recorded.is_some())
    }

    async fn cancel(&self, id: &JobId, by: &str) -> anyhow::Result<Result<Option<Job>, Job>> {
        let _write = self.writes.lock().await;
        let cancelled = self
            .change(id, |job| {
                if !job.cancel(by) {
                    return Err(Box::new(job.clone()));
                }
                Ok(job.clone())
            })
            .await?;
        Ok(match cancelled {
            None => Ok(None),
            Some(Ok(job)) => Ok(Some(job)),
            Some(Err(job)) => Err(*job),
        })
    }

    async fn reclaim_expired(&self) -> anyhow::Result<usize> {
        let _write = self.writes.lock().await;
        let now = Instant::now();
        let expired: Vec<JobId> = {
            let leases = self.leases();
            self.summaries(|job| job.status == JobStatus::Processing)
                .into_iter()
                .map(|job| job.id)
                .filter(|id| leases.get(id).is_none_or(|lease| lease.expires <= now))
                .collect()
        };
        let mut reclaimed = 0;
        for id in expired {
            let put = self
                .change(&id, |job| {
                    job.put_back();
                    Ok::<_, ()>(job.clone())
                })
                .await?;
            self.leases().remove(&id);
            let Some(Ok(job)) = put else {
                continue;
            };
            reclaimed += 1;
            tracing::warn!(job = %id, attempts = job.attempts, status = job.status.as_str(),
                "a job's worker stopped renewing its lease; the job was taken back");
        }
        if reclaimed > 0 {
            self.work.notify_one();
        }
        Ok(reclaimed)
    }

    async fn prune(&self) -> anyhow::Result<usize> {
        let _write = self.writes.lock().await;
        let cutoff = Utc::now() - chrono::Duration::days(RETENTION_DAYS);
        let old: Vec<JobId> = self
            .summaries(|job| {
                job.status.is_finished() && job.completed_at.is_some_and(|at| at < cutoff)
            })
            .into_iter()
            .map(|job| job.id)
            .collect();
        for id in &old {
            match tokio::fs::remove_file(self.file(id)).await {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(err).context("cannot delete an old job"),
            }
            self.index().remove(id);
        }
        Ok(old.len())
    }

    async fn work_arrived(&self) {
        self.work.notified().await;
    }

    fn lease(&self) -> Duration {
        self.lease
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::conformance::{job, job_store_conformance, Made};
    use crate::jobs::job::JobStatus;
    use crate::jobs::job::QUESTION_PREVIEW_CHARS;
    use std::sync::Arc;
    use std::time::Duration;

    async fn fresh(lease: Duration) -> Made {
        let dir = tempfile::tempdir().unwrap();
        let store = FileJobStore::load(dir.path(), lease).unwrap();
        (Arc::new(store), Box::new(dir))
    }

    job_store_conformance!(fresh);

    #[tokio::test]
    async fn memory_keeps_a_preview_of_each_job_and_the_disk_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileJobStore::load(dir.path(), Duration::from_secs(60)).unwrap();
        let mut big = job("a", &"q".repeat(32 * 1024));
        big.context = Some("c".repeat(256 * 1024));
        store.submit(big.clone(), true).await.unwrap().unwrap();
        let held = store.summaries(|_| true).pop().unwrap();
        assert!(held.question.len() <= QUESTION_PREVIEW_CHARS + '…'.len_utf8());
        assert_eq!(held.context, None);
        assert_eq!(store.get(&big.id).await.unwrap(), Some(big));
    }

    #[test]
    fn the_queue_directory_is_0700_and_an_older_0755_one_is_tightened() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |dir: &std::path::Path| {
            std::fs::metadata(dir.join("queue"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        let fresh = tempfile::tempdir().unwrap();
        FileJobStore::load(fresh.path(), Duration::from_secs(60)).unwrap();
        assert_eq!(mode(fresh.path()), 0o700);
        let older = tempfile::tempdir().unwrap();
        std::fs::create_dir(older.path().join("queue")).unwrap();
        std::fs::set_permissions(
            older.path().join("queue"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        FileJobStore::load(older.path(), Duration::from_secs(60)).unwrap();
        assert_eq!(mode(older.path()), 0o700);
    }

    #[tokio::test]
    async fn a_job_left_processing_by_a_dead_process_is_put_back_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let lease = Duration::from_secs(60);
        let store = FileJobStore::load(dir.path(), lease).unwrap();
        let asked = job("a", "q");
        store.submit(asked.clone(), true).await.unwrap().unwrap();
        store
            .claim(&WorkerId::new("dead", 0))
            .await
            .unwrap()
            .unwrap();
        drop(store);
        let restarted = FileJobStore::load(dir.path(), lease).unwrap();
        let back = restarted.get(&asked.id).await.unwrap().unwrap();
        assert_eq!((back.status, back.attempts), (JobStatus::Pending, 1));
        let again = restarted
            .claim(&WorkerId::new("new", 0))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.attempts, 2);
    }
}

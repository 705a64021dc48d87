//! `ActivityStore`: the two tables of the activity trail, and the file
//! back end, `activity.json` (mode 0600) on `Document<T>`. What is
//! recorded (bounded text, hours) stays in `activity.rs`.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::path::Path;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::activity_records::{
    count_failure_in, AccountEvent, FailureRow, ACCOUNT_EVENTS_KEPT, FAILURE_ROWS_KEPT,
};
use crate::store::{Document, StoreError};

/// The account events and failure rows of the trail: what its store keeps.
/// Recording is synchronous and may be buffered (written every few
/// seconds by `flush`); reading is asynchronous.
#[async_trait]
pub trait ActivityStore: Send + Sync + std::fmt::Debug {
    /// Puts `event` first, keeping the newest `ACCOUNT_EVENTS_KEPT`.
    fn push_account(&self, event: AccountEvent);
    /// Counts one failure at `at` into the row of (code, client, hour):
    /// `last_at` and `count` move on and the row becomes the first; a new
    /// row is put first. The newest `FAILURE_ROWS_KEPT` rows are kept.
    fn count_failure(&self, code: &str, client: IpAddr, hour: DateTime<Utc>, at: DateTime<Utc>);
    /// Account events, newest first.
    async fn account_events(&self) -> Result<Vec<AccountEvent>, StoreError>;
    /// Failure rows, most recently seen first.
    async fn failure_rows(&self) -> Result<Vec<FailureRow>, StoreError>;
    /// Writes what was recorded since the last write.
    async fn flush(&self) -> Result<(), StoreError>;
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Tables {
    /// Newest first.
    account: VecDeque<AccountEvent>,
    /// Most recently seen first.
    failures: VecDeque<FailureRow>,
}

/// `activity.json` in the data directory, on `Document<T>`.
#[derive(Debug)]
pub struct FileActivityStore {
    doc: Document<Tables>,
}

impl FileActivityStore {
    pub fn load(data_dir: &Path) -> anyhow::Result<Self> {
        let doc: Document<Tables> = Document::load(data_dir.join("activity.json"))?;
        let mut tables = doc.snapshot();
        tables.account.truncate(ACCOUNT_EVENTS_KEPT);
        tables.failures.truncate(FAILURE_ROWS_KEPT);
        Ok(Self {
            doc: Document::with_value(doc.path(), tables),
        })
    }
}

#[async_trait]
impl ActivityStore for FileActivityStore {
    fn push_account(&self, event: AccountEvent) {
        self.doc.touch(|tables| {
            tables.account.push_front(event);
            tables.account.truncate(ACCOUNT_EVENTS_KEPT);
            true
        });
    }

    fn count_failure(&self, code: &str, client: IpAddr, hour: DateTime<Utc>, at: DateTime<Utc>) {
        self.doc.touch(|tables| {
            count_failure_in(&mut tables.failures, code, client, hour, at);
            true
        });
    }

    async fn account_events(&self) -> Result<Vec<AccountEvent>, StoreError> {
        Ok(self
            .doc
            .read(|tables| tables.account.iter().cloned().collect()))
    }

    async fn failure_rows(&self) -> Result<Vec<FailureRow>, StoreError> {
        Ok(self
            .doc
            .read(|tables| tables.failures.iter().cloned().collect()))
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.doc.flush().await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::conformance;

    #[tokio::test]
    async fn the_file_activity_store_passes_the_conformance_suite() {
        conformance::activity::check(
            |dir| Arc::new(FileActivityStore::load(dir).unwrap()),
            conformance::fail_file_writes,
        )
        .await;
    }
}

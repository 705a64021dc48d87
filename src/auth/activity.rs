//! Recent authentication activity for the Account Security page: the last
//! 50 events, kept in memory and written to `auth-activity.json` (mode 0600)
//! every few seconds, so they survive a restart without a write per request.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::{read_json, write_json};

pub const CAPACITY: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthEvent {
    pub at: DateTime<Utc>,
    /// `allowed` or `denied`.
    pub outcome: String,
    /// The principal id when allowed, the failure code when denied.
    pub subject: String,
    pub client: String,
    /// `api` or `login`.
    pub channel: String,
}

#[derive(Debug)]
pub struct ActivityLog {
    path: PathBuf,
    events: Mutex<VecDeque<AuthEvent>>,
    dirty: AtomicBool,
}

impl ActivityLog {
    pub fn load(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join("auth-activity.json");
        let mut events: VecDeque<AuthEvent> = read_json(&path)?.unwrap_or_default();
        events.truncate(CAPACITY);
        Ok(Self {
            path,
            events: Mutex::new(events),
            dirty: AtomicBool::new(false),
        })
    }

    pub fn record(&self, allowed: bool, subject: &str, client: IpAddr, channel: &str) {
        let event = AuthEvent {
            at: Utc::now(),
            outcome: if allowed { "allowed" } else { "denied" }.to_owned(),
            subject: subject.to_owned(),
            client: client.to_string(),
            channel: channel.to_owned(),
        };
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events.push_front(event);
        events.truncate(CAPACITY);
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Newest first.
    pub fn recent(&self) -> Vec<AuthEvent> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    pub async fn flush(&self) -> anyhow::Result<()> {
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        let events = self.recent();
        if let Err(err) = write_json(&self.path, &events).await {
            self.dirty.store(true, Ordering::Relaxed);
            return Err(err);
        }
        Ok(())
    }
}

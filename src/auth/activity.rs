//! Recent authentication activity for the Account Security page: the last
//! 50 events, kept in memory and written to `auth-activity.json` (mode 0600)
//! every few seconds, so they survive a restart without a write per request.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::{read_json, write_json};

pub const CAPACITY: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthEvent {
    pub at: DateTime<Utc>,
    /// `allowed` or `denied`.
    pub outcome: Cow<'static, str>,
    /// The principal id when allowed, the failure code when denied.
    pub subject: Arc<str>,
    pub client: IpAddr,
    /// `api`, `login` or `setup`.
    pub channel: Cow<'static, str>,
    /// Identical events in a row are one entry: how many, `at` the last.
    #[serde(default = "one")]
    pub count: u64,
}

fn one() -> u64 {
    1
}

impl AuthEvent {
    fn repeats(&self, allowed: bool, subject: &str, client: IpAddr, channel: &str) -> bool {
        (self.outcome == "allowed") == allowed
            && &*self.subject == subject
            && self.client == client
            && self.channel == channel
    }
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

    /// Notes an event; a repeat of the newest one only counts it again,
    /// so a busy client does not push everything else out of view.
    pub fn record(&self, allowed: bool, subject: &str, client: IpAddr, channel: &'static str) {
        let at = Utc::now();
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        match events.front_mut() {
            Some(newest) if newest.repeats(allowed, subject, client, channel) => {
                newest.at = at;
                newest.count += 1;
            }
            _ => {
                events.push_front(AuthEvent {
                    at,
                    outcome: Cow::Borrowed(if allowed { "allowed" } else { "denied" }),
                    subject: subject.into(),
                    client,
                    channel: Cow::Borrowed(channel),
                    count: 1,
                });
                events.truncate(CAPACITY);
            }
        }
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

//! The audit trail of Account Security (SPEC §6.2), in two bounded tables
//! kept apart: account events (setup, logins, key and password changes,
//! workspace changes, second-factor failures), each its own row with its own
//! time, actor by name and address; and anonymous failures (bad keys, bad
//! passwords, bad setup tokens), aggregated per (code, address, hour), so a
//! flood of them cannot push an account event out. Both are kept in memory
//! and written to `activity.json` (mode 0600) every few seconds.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

pub use super::activity_records::{
    AccountAction, AccountEvent, FailureRow, ACCOUNT_EVENTS_KEPT, FAILURE_ROWS_KEPT,
};
pub use super::activity_store::{ActivityStore, FileActivityStore};
use crate::store::StoreError;

/// Longer actor names and details are cut, so the tables' size is bounded.
const MAX_TEXT_CHARS: usize = 80;
/// A structured detail (a key's whole new scope) is kept up to this many
/// characters, all printable ASCII, so one byte each on disk.
pub const MAX_STRUCTURED_CHARS: usize = 1024;
/// What ends a structured detail that had to be cut.
const CUT_MARK: &str = "...";

/// The trail: what is recorded and how (bounded text, hours), over an
/// `ActivityStore` that keeps the tables.
#[derive(Debug)]
pub struct ActivityLog {
    store: Arc<dyn ActivityStore>,
}

fn bounded(text: &str) -> String {
    text.chars().take(MAX_TEXT_CHARS).collect()
}

/// `text` as printable ASCII (anything else, and `"` or `\`, becomes `?`)
/// of at most `MAX_STRUCTURED_CHARS`, ending in `...` when it was cut.
fn structured(text: &str) -> String {
    let ascii: String = text
        .chars()
        .map(|c| {
            if (c.is_ascii_graphic() || c == ' ') && c != '"' && c != '\\' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if ascii.len() <= MAX_STRUCTURED_CHARS {
        ascii
    } else {
        format!(
            "{}{CUT_MARK}",
            &ascii[..MAX_STRUCTURED_CHARS - CUT_MARK.len()]
        )
    }
}

impl ActivityLog {
    /// The trail in `activity.json` in the data directory.
    pub fn load(data_dir: &Path) -> anyhow::Result<Self> {
        Ok(Self::new(Arc::new(FileActivityStore::load(data_dir)?)))
    }

    pub fn new(store: Arc<dyn ActivityStore>) -> Self {
        Self { store }
    }

    /// Records an account event as its own row, with its own time.
    pub fn account(
        &self,
        action: AccountAction,
        actor: &str,
        client: IpAddr,
        detail: Option<&str>,
    ) {
        self.account_at(Utc::now(), action, actor, client, detail);
    }

    fn account_at(
        &self,
        at: DateTime<Utc>,
        action: AccountAction,
        actor: &str,
        client: IpAddr,
        detail: Option<&str>,
    ) {
        self.store.push_account(AccountEvent {
            at,
            action,
            actor: bounded(actor),
            client,
            detail: detail.map(bounded),
        });
    }

    /// Records an account event whose detail is structured text built by
    /// Portico (ids, permissions, networks, numbers), not a user-chosen
    /// name: kept whole up to `MAX_STRUCTURED_CHARS` ASCII characters.
    pub fn account_structured(
        &self,
        action: AccountAction,
        actor: &str,
        client: IpAddr,
        detail: &str,
    ) {
        self.store.push_account(AccountEvent {
            at: Utc::now(),
            action,
            actor: bounded(actor),
            client,
            detail: Some(structured(detail)),
        });
    }

    /// Counts a failure nobody is known for (`code` is the SPEC §4 code or
    /// `invalid-login`, `login-throttled`, `invalid-setup-token`).
    pub fn anonymous_failure(&self, code: &'static str, client: IpAddr) {
        self.anonymous_failure_at(Utc::now(), code, client);
    }

    fn anonymous_failure_at(&self, at: DateTime<Utc>, code: &'static str, client: IpAddr) {
        let hour = at.duration_trunc(TimeDelta::hours(1)).unwrap_or(at);
        self.store.count_failure(code, client, hour, at);
    }

    /// Account events, newest first.
    pub async fn account_events(&self) -> Result<Vec<AccountEvent>, StoreError> {
        self.store.account_events().await
    }

    /// Anonymous failure rows, most recently seen first.
    pub async fn failure_rows(&self) -> Result<Vec<FailureRow>, StoreError> {
        self.store.failure_rows().await
    }

    pub async fn flush(&self) -> anyhow::Result<()> {
        Ok(self.store.flush().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> (tempfile::TempDir, ActivityLog) {
        let dir = tempfile::tempdir().unwrap();
        let log = ActivityLog::load(dir.path()).unwrap();
        (dir, log)
    }

    #[tokio::test]
    async fn repeated_account_events_keep_their_own_times() {
        let (_dir, log) = log();
        let addr: IpAddr = "192.0.2.1".parse().unwrap();
        let first = Utc::now() - TimeDelta::minutes(5);
        let second = Utc::now();
        log.account_at(first, AccountAction::Login, "owner", addr, None);
        log.account_at(second, AccountAction::Login, "owner", addr, None);
        let events = log.account_events().await.unwrap();
        let times: Vec<_> = events.iter().map(|e| e.at).collect();
        assert_eq!(times, vec![second, first]);
    }

    #[tokio::test]
    async fn anonymous_failures_are_one_row_per_code_address_and_hour() {
        let (_dir, log) = log();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let hour = Utc::now().duration_trunc(TimeDelta::hours(1)).unwrap();
        for minute in 0..10 {
            log.anonymous_failure_at(hour + TimeDelta::minutes(minute), "invalid-login", a);
            log.anonymous_failure_at(hour + TimeDelta::minutes(minute), "invalid-login", b);
        }
        log.anonymous_failure_at(hour + TimeDelta::minutes(70), "invalid-login", a);
        log.anonymous_failure_at(hour, "invalid-api-key", a);
        let rows = log.failure_rows().await.unwrap();
        assert_eq!(rows.len(), 4);
        let main = rows
            .iter()
            .find(|r| r.client == a && r.hour == hour && r.code == "invalid-login")
            .unwrap();
        assert_eq!(main.count, 10);
        assert_eq!(main.first_at, hour);
        assert_eq!(main.last_at, hour + TimeDelta::minutes(9));
    }

    #[tokio::test]
    async fn full_tables_of_the_longest_values_stay_under_512_kib_on_disk() {
        let (dir, log) = log();
        let v6: IpAddr = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap();
        let long = "\u{1d518}".repeat(500);
        // The longest rows: a 4-byte-per-character actor name and a whole
        // structured detail, larger than the 320 bytes of 80 such
        // characters a name detail can take.
        let scope = "k".repeat(5 * MAX_STRUCTURED_CHARS);
        for _ in 0..ACCOUNT_EVENTS_KEPT {
            log.account_structured(AccountAction::KeyEdited, &long, v6, &scope);
        }

        for n in 0..FAILURE_ROWS_KEPT as u128 {
            log.anonymous_failure(
                "invalid-setup-token",
                IpAddr::from((u128::MAX - n).to_be_bytes()),
            );
        }
        log.flush().await.unwrap();
        let size = std::fs::metadata(dir.path().join("activity.json"))
            .unwrap()
            .len();
        assert!(size < 512 * 1024, "{size} bytes");
        let events = log.account_events().await.unwrap();
        assert_eq!(events.len(), ACCOUNT_EVENTS_KEPT);
        assert_eq!(
            events[0].detail.as_ref().unwrap().len(),
            MAX_STRUCTURED_CHARS
        );
    }

    #[tokio::test]
    async fn both_tables_are_bounded_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let log = ActivityLog::load(dir.path()).unwrap();
        for n in 0..(ACCOUNT_EVENTS_KEPT + 10) {
            let name = format!("user-{n}-{}", "x".repeat(500));
            log.account(
                AccountAction::Login,
                &name,
                "192.0.2.1".parse().unwrap(),
                None,
            );
        }
        for n in 0..(FAILURE_ROWS_KEPT as u32 + 10) {
            log.anonymous_failure("invalid-api-key", IpAddr::from(n.to_be_bytes()));
        }
        let events = log.account_events().await.unwrap();
        let rows = log.failure_rows().await.unwrap();
        assert_eq!(events.len(), ACCOUNT_EVENTS_KEPT);
        assert_eq!(rows.len(), FAILURE_ROWS_KEPT);
        assert!(events[0].actor.chars().count() <= MAX_TEXT_CHARS);
        log.flush().await.unwrap();
        let again = ActivityLog::load(dir.path()).unwrap();
        assert_eq!(again.account_events().await.unwrap(), events);
        assert_eq!(again.failure_rows().await.unwrap(), rows);
    }

    #[test]
    fn a_structured_detail_is_kept_whole_up_to_its_bound_in_printable_ascii() {
        let scope = format!("id k1: ask; workspaces {}", "w".repeat(600));
        assert_eq!(structured(&scope), scope, "longer than 80, kept whole");
        let cut = structured(&"x".repeat(MAX_STRUCTURED_CHARS + 1));
        assert_eq!(cut.len(), MAX_STRUCTURED_CHARS);
        assert!(cut.ends_with(CUT_MARK));
        assert_eq!(structured("a\u{1d518}\"\n\\b"), "a????b");
    }
}

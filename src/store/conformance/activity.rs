//! What every `ActivityStore` must do.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, DurationRound, Utc};

use crate::auth::activity::{
    AccountAction, AccountEvent, ActivityStore, ACCOUNT_EVENTS_KEPT, FAILURE_ROWS_KEPT,
};
use crate::store::StoreError;

fn event(n: usize, at: DateTime<Utc>) -> AccountEvent {
    AccountEvent {
        at,
        action: AccountAction::Login,
        actor: format!("user-{n}"),
        client: "192.0.2.1".parse().unwrap(),
        detail: None,
    }
}

/// Runs every check on fresh places below a temporary directory.
pub async fn check(
    open: impl Fn(&Path) -> Arc<dyn ActivityStore>,
    fail_writes: impl Fn(&Path, bool),
) {
    let root = tempfile::tempdir().unwrap();
    let place = |name: &str| {
        let dir = root.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        dir
    };
    account_events_are_newest_first_and_bounded(&open, &place("events")).await;
    failures_are_counted_per_row(&open, &place("rows")).await;
    a_failed_flush_loses_nothing(&open, &fail_writes, &place("faults")).await;
}

async fn account_events_are_newest_first_and_bounded(
    open: &impl Fn(&Path) -> Arc<dyn ActivityStore>,
    at: &Path,
) {
    let store = open(at);
    assert!(store.account_events().await.unwrap().is_empty());
    let start = Utc::now();
    for n in 0..ACCOUNT_EVENTS_KEPT + 5 {
        store.push_account(event(n, start + Duration::seconds(n as i64)));
    }
    let events = store.account_events().await.unwrap();
    assert_eq!(events.len(), ACCOUNT_EVENTS_KEPT);
    assert_eq!(events[0].actor, format!("user-{}", ACCOUNT_EVENTS_KEPT + 4));
    store.flush().await.unwrap();
    drop(store);
    assert_eq!(open(at).account_events().await.unwrap(), events);
}

async fn failures_are_counted_per_row(open: &impl Fn(&Path) -> Arc<dyn ActivityStore>, at: &Path) {
    let store = open(at);
    let a: IpAddr = "192.0.2.1".parse().unwrap();
    let b: IpAddr = "192.0.2.2".parse().unwrap();
    let hour = Utc::now().duration_trunc(Duration::hours(1)).unwrap();
    let later = hour + Duration::minutes(30);
    store.count_failure("invalid-login", a, hour, hour);
    store.count_failure("invalid-login", b, hour, hour);
    store.count_failure("invalid-login", a, hour, later);
    let rows = store.failure_rows().await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].client, a, "the row counted last comes first");
    assert_eq!(
        (rows[0].count, rows[0].first_at, rows[0].last_at),
        (2, hour, later)
    );
    for n in 0..FAILURE_ROWS_KEPT as u32 + 5 {
        store.count_failure("invalid-api-key", IpAddr::from(n.to_be_bytes()), hour, hour);
    }
    assert_eq!(store.failure_rows().await.unwrap().len(), FAILURE_ROWS_KEPT);
    store.flush().await.unwrap();
    let kept = store.failure_rows().await.unwrap();
    drop(store);
    assert_eq!(open(at).failure_rows().await.unwrap(), kept);
}

async fn a_failed_flush_loses_nothing(
    open: &impl Fn(&Path) -> Arc<dyn ActivityStore>,
    fail_writes: &impl Fn(&Path, bool),
    at: &Path,
) {
    let store = open(at);
    store.push_account(event(1, Utc::now()));
    fail_writes(at, true);
    let flushed = store.flush().await;
    fail_writes(at, false);
    assert!(matches!(flushed, Err(StoreError::Unavailable { .. })));
    assert_eq!(store.account_events().await.unwrap().len(), 1);
    store.flush().await.unwrap();
    drop(store);
    assert_eq!(open(at).account_events().await.unwrap().len(), 1);
}

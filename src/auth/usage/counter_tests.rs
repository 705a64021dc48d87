//! The counter in memory: counts noted on many threads at once, while
//! flushes run, each reach the store exactly once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::Utc;

use super::{hour_of, FileUsageStore, Outcome, UsageCounter, UsageStore};
use crate::auth::dashboard_keys::{Expiry, Keys};
use crate::auth::hashing::Hasher;
use crate::auth::principal::Role;
use crate::auth::scope::Scope;

const THREADS: u32 = 8;
const PER_THREAD: u32 = 3_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_noted_on_many_threads_while_flushes_run_are_each_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(Keys::load(dir.path(), Hasher::new(1)).unwrap());
    let (_, record) = keys
        .generate(
            "k",
            "user",
            Role::Client,
            Expiry::Never,
            Scope::for_role(Role::Client),
        )
        .await
        .unwrap();
    let store = Arc::new(FileUsageStore::load(dir.path()).unwrap());
    let counter = Arc::new(UsageCounter::new(store.clone(), keys, true));
    let key_id: Arc<str> = record.id.as_str().into();

    let done = Arc::new(AtomicBool::new(false));
    let flusher = {
        let (counter, done) = (counter.clone(), done.clone());
        tokio::spawn(async move {
            let mut flushes = 0;
            while !done.load(Ordering::Acquire) {
                counter.flush().await;
                flushes += 1;
                tokio::task::yield_now().await;
            }
            flushes
        })
    };
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (counter, key_id) = (counter.clone(), key_id.clone());
            std::thread::spawn(move || {
                for n in 0..PER_THREAD {
                    let outcome = match n % 10 {
                        0 => Outcome::RateLimited,
                        _ => Outcome::Allowed,
                    };
                    counter.count(&key_id, outcome);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    done.store(true, Ordering::Release);
    assert!(
        flusher.await.unwrap() > 0,
        "flushes ran during the counting"
    );
    counter.flush().await;

    let series = store.series(&key_id, hour_of(Utc::now())).await.unwrap();
    let sum = |outcome: Outcome| series.iter().map(|(_, c)| c.get(outcome)).sum::<u32>();
    let total = THREADS * PER_THREAD;
    assert_eq!(sum(Outcome::RateLimited), total / 10);
    assert_eq!(sum(Outcome::Allowed), total - total / 10);
}

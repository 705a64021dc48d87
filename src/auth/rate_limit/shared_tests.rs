use std::sync::Arc;

use super::*;
use crate::store::redis::test_server;

const ADDR: &[u8] = b"address";

fn limit(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

/// The same limits as two instances see them: one prefix, two connections.
async fn two_instances(name: &str, failures: u32) -> [Arc<SharedLimits>; 2] {
    let a = test_server::connect(name).await;
    let b = Redis::connect(&test_server::url(), a.prefix())
        .await
        .unwrap();
    let hour = Duration::from_secs(3600);
    [a, b].map(|redis| {
        Arc::new(SharedLimits::new(
            &redis,
            limit(failures),
            hour,
            limit(10),
            hour,
        ))
    })
}

#[tokio::test]
async fn an_attempt_in_flight_on_one_instance_makes_the_other_wait_then_take_the_freed_slot() {
    let [a, b] = two_instances("shared-wait", 1).await;
    let first = a.reserve(ADDR).await.unwrap().unwrap();
    let waiting = tokio::spawn(async move {
        match b.reserve(ADDR).await.unwrap() {
            Ok(attempt) => attempt.refund().await.is_ok(),
            Err(_) => false,
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "waits while the slot is in flight");
    first.refund().await.unwrap();
    assert!(waiting.await.unwrap(), "then takes it");
}

#[tokio::test]
async fn confirmed_failures_refuse_at_once_and_refuse_known_keys() {
    let [a, b] = two_instances("shared-confirmed", 2).await;
    a.reserve(ADDR)
        .await
        .unwrap()
        .unwrap()
        .keep()
        .await
        .unwrap();
    b.reserve(ADDR)
        .await
        .unwrap()
        .unwrap()
        .keep()
        .await
        .unwrap();
    let started = Instant::now();
    let refused = a.reserve(ADDR).await.unwrap().unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(200), "no wait");
    assert!(refused.reset_secs > 3500, "{refused:?}");
    let admission = b.admit(ADDR, b"client", None, None).await.unwrap();
    assert!(
        matches!(admission, Admission::Throttled(_)),
        "{admission:?}"
    );
    let other = b
        .admit(b"another address", b"client", None, None)
        .await
        .unwrap();
    assert!(
        matches!(other, Admission::Admitted(q) if q.remaining == 9),
        "{other:?}"
    );
}

use std::sync::Arc;

use super::*;
use crate::store::redis::test_server;

const HOUR: Duration = Duration::from_secs(3600);

fn limit(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

/// The same counter as two instances see it: one prefix, two connections.
async fn two_instances(name: &str, max: u32, window: Duration) -> [Arc<RedisWindowCounter>; 2] {
    let a = test_server::connect(name).await;
    let b = test_server::connect(name).await.with_prefix(a.prefix());
    [
        Arc::new(RedisWindowCounter::new(&a, "quota", limit(max), window)),
        Arc::new(RedisWindowCounter::new(&b, "quota", limit(max), window)),
    ]
}

#[tokio::test]
async fn three_hundred_simultaneous_reservations_on_two_instances_take_exactly_the_limit() {
    let counters = two_instances("counter-race", 20, HOUR).await;
    let tasks: Vec<_> = (0..300)
        .map(|n| {
            let counter = counters[n % 2].clone();
            tokio::spawn(async move {
                match counter.reserve_all(&[b"client"]).await.unwrap() {
                    Ok(reservation) => {
                        let remaining = reservation.quotas()[0].remaining;
                        reservation.keep();
                        Some(remaining)
                    }
                    Err(_) => None,
                }
            })
        })
        .collect();
    let mut remaining = Vec::new();
    for task in tasks {
        remaining.extend(task.await.unwrap());
    }
    remaining.sort_unstable();
    assert_eq!(remaining, (0..20).collect::<Vec<u32>>(), "each slot once");
    let refused = counters[0]
        .reserve_all(&[b"client"])
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!((refused.limit, refused.remaining), (20, 0));
    assert!((3599..=3600).contains(&refused.reset_secs), "{refused:?}");
}

#[tokio::test]
async fn a_refund_gives_the_slot_back_on_every_instance() {
    let [a, b] = two_instances("counter-refund", 2, HOUR).await;
    a.reserve_all(&[b"k"]).await.unwrap().unwrap().keep();
    let second = b.reserve_all(&[b"k"]).await.unwrap().unwrap();
    assert!(a.reserve_all(&[b"k"]).await.unwrap().is_err());
    second.refund().await.unwrap();
    let again = a.reserve_all(&[b"k"]).await.unwrap().unwrap();
    assert_eq!(again.quotas()[0].remaining, 0);
}

#[tokio::test]
async fn reserving_several_keys_takes_all_or_none() {
    let [a, _] = two_instances("counter-all", 1, HOUR).await;
    a.reserve_all(&[b"name"]).await.unwrap().unwrap().keep();
    let refused = a.reserve_all(&[b"address", b"name"]).await.unwrap();
    assert!(refused.is_err());
    let address = a.reserve_all(&[b"address"]).await.unwrap();
    assert!(address.is_ok(), "the refused reservation charged nothing");
}

#[tokio::test]
async fn a_window_ends_and_a_refund_from_an_old_window_changes_nothing() {
    let window = Duration::from_millis(300);
    let [a, _] = two_instances("counter-window", 1, window).await;
    let old = a.reserve_all(&[b"k"]).await.unwrap().unwrap();
    let refused = a.reserve_all(&[b"k"]).await.unwrap().unwrap_err();
    assert_eq!(refused.reset_secs, 1, "rounded up");
    tokio::time::sleep(window + Duration::from_millis(50)).await;
    let fresh = a.reserve_all(&[b"k"]).await.unwrap().unwrap();
    fresh.keep();
    old.refund().await.unwrap();
    assert!(
        a.reserve_all(&[b"k"]).await.unwrap().is_err(),
        "the old window's refund did not free the new window's slot"
    );
}

#[tokio::test]
async fn a_keys_own_limit_is_counted_for_good() {
    let [a, b] = two_instances("counter-own", 100, HOUR).await;
    let first = a.try_acquire_limited(b"key", 2).await.unwrap().unwrap();
    assert_eq!((first.limit, first.remaining), (2, 1));
    b.try_acquire_limited(b"key", 2).await.unwrap().unwrap();
    let refused = a.try_acquire_limited(b"key", 2).await.unwrap().unwrap_err();
    assert_eq!(refused.remaining, 0);
}

#[tokio::test]
async fn neither_the_key_nor_the_address_is_stored_in_redis() {
    let redis = test_server::connect("counter-digest").await;
    let counter = RedisWindowCounter::new(&redis, "throttle", limit(5), HOUR);
    counter
        .reserve_all(&[b"192.0.2.77"])
        .await
        .unwrap()
        .unwrap()
        .keep();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", redis.prefix()))
        .query_async(&mut redis.conn())
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);
    assert!(!keys[0].contains("192.0.2.77"), "{keys:?}");
}

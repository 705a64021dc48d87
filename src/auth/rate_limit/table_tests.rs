use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;
use crate::auth::rate_limit::address_key;

const HOUR: Duration = Duration::from_secs(3600);

fn counter(limit: u32, bounds: Bounds) -> WindowCounter {
    WindowCounter::new(NonZeroU32::new(limit).unwrap(), HOUR, bounds)
}

fn small() -> Bounds {
    Bounds {
        slots_log2: 10,
        filter_width_log2: 12,
    }
}

#[test]
fn a_new_client_may_use_its_whole_quota_at_once_and_no_more() {
    let counter = counter(3, small());
    let now = Instant::now();
    let remaining: Vec<u32> = (0..3)
        .map(|_| counter.reserve_at(b"a", now).unwrap().quota().remaining)
        .collect();
    assert_eq!(remaining, vec![2, 1, 0]);
    let refused = counter.reserve_at(b"a", now).unwrap_err();
    assert_eq!(refused.remaining, 0);
    assert_eq!(refused.reset_secs, 3600);
}

#[test]
fn the_wait_is_the_true_time_left_in_the_window() {
    let counter = counter(1, small());
    let start = Instant::now();
    counter.reserve_at(b"a", start).unwrap().keep();
    let later = start + Duration::from_secs(1800) + Duration::from_millis(1);
    assert_eq!(
        counter.reserve_at(b"a", later).unwrap_err().reset_secs,
        1800
    );
    let next_hour = start + HOUR;
    assert_eq!(
        counter
            .reserve_at(b"a", next_hour)
            .unwrap()
            .quota()
            .remaining,
        0
    );
}

#[test]
fn a_refunded_reservation_is_given_back_and_a_kept_one_is_not() {
    let counter = counter(2, small());
    let now = Instant::now();
    for _ in 0..10 {
        counter.reserve_at(b"a", now).unwrap().refund();
    }
    counter.reserve_at(b"a", now).unwrap().keep();
    let held = counter.reserve_at(b"a", now).unwrap();
    assert!(counter.reserve_at(b"a", now).is_err(), "held slots count");
    held.refund();
    assert!(counter.reserve_at(b"a", now).is_ok());
}

#[test]
fn reserving_several_keys_takes_all_or_none() {
    let counter = counter(1, small());
    let now = Instant::now();
    counter
        .reserve_at(b"b", now + Duration::from_secs(60))
        .unwrap()
        .keep();
    let refused = counter
        .reserve_all_at(&[b"a", b"b"], now + Duration::from_secs(120))
        .unwrap_err();
    assert_eq!(refused.reset_secs, 3540);
    assert!(counter.reserve_at(b"a", now).is_ok(), "a was not taken");
}

#[test]
fn clients_are_counted_apart() {
    let counter = counter(1, small());
    let now = Instant::now();
    counter.try_acquire(b"a").unwrap();
    assert!(counter.reserve_at(b"a", now).is_err());
    assert!(counter.reserve_at(b"b", now).is_ok());
}

#[test]
fn a_counter_of_trusted_keys_counts_thousands_of_clients_apart_and_limits_each() {
    let counter = WindowCounter::for_trusted_keys(NonZeroU32::new(2).unwrap(), HOUR, small());
    let now = Instant::now();
    let ids: Vec<String> = (0..1000).map(|n| format!("key-{n:04}")).collect();
    for id in &ids {
        assert_eq!(
            counter
                .reserve_at(id.as_bytes(), now)
                .unwrap()
                .quota()
                .remaining,
            1
        );
    }
    assert!(counter.reserve_at(b"key-0999", now).is_ok());
    assert!(counter.reserve_at(b"key-0999", now).is_err());
    assert!(counter.reserve_at(b"key-1000", now).is_ok());
}

#[test]
fn an_ipv6_client_is_counted_by_its_64() {
    let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
    let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
    let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
    assert_eq!(address_key(a), address_key(b));
    assert_ne!(address_key(a), address_key(other));
    let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
    assert_eq!(
        address_key(mapped),
        address_key("192.0.2.1".parse().unwrap())
    );
}

/// Issue 10 at the level of the structure: millions of distinct addresses
/// leave its memory where it was; an address failing among them gets its 20
/// attempts and not one more (its count is not pushed out by the flood), and
/// a fresh address still has its whole allowance.
#[test]
fn millions_of_addresses_neither_grow_the_counter_nor_free_a_throttled_one() {
    let counter = counter(20, Bounds::API_FAILURES);
    let now = Instant::now();
    let attacker = address_key("198.51.100.7".parse().unwrap());
    let mut attacker_allowed = 0;
    let mut attacker_tries = |counter: &WindowCounter| {
        if let Ok(reservation) = counter.reserve_at(&attacker, now) {
            reservation.keep();
            attacker_allowed += 1;
        }
    };
    for _ in 0..15 {
        attacker_tries(&counter);
    }
    let capacity = counter.lock().slots.capacity();
    for n in 0..2_000_000u32 {
        let addr = if n % 2 == 0 {
            IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
        } else {
            IpAddr::V6(Ipv6Addr::from(u128::from(n) << 64 | 1))
        };
        if let Ok(reservation) = counter.reserve_at(&address_key(addr), now) {
            reservation.keep();
        }
        if n % 200_000 == 0 {
            attacker_tries(&counter);
        }
    }
    assert_eq!(counter.lock().slots.capacity(), capacity, "no allocation");
    assert_eq!(attacker_allowed, 20, "20 attempts in all, none forgotten");
    assert!(counter.reserve_at(&attacker, now).is_err());
    let fresh = counter
        .reserve_at(&address_key("203.0.113.50".parse().unwrap()), now)
        .expect("a fresh address is not refused");
    assert_eq!(fresh.quota().remaining, 19, "its whole allowance");
}

#[test]
fn an_address_pushed_out_by_heavy_failers_is_still_refused() {
    let counter = counter(20, small());
    let now = Instant::now();
    let attacker = address_key("198.51.100.7".parse().unwrap());
    for _ in 0..20 {
        counter.reserve_at(&attacker, now).unwrap().keep();
    }
    // Every bucket fills with addresses at the limit: the attacker's slot
    // is pushed out, and the filter still holds it.
    for n in 0..20_000u32 {
        let key = address_key(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)));
        for _ in 0..20 {
            if let Ok(reservation) = counter.reserve_at(&key, now + Duration::from_secs(1)) {
                reservation.keep();
            }
        }
    }
    let refused = counter
        .reserve_at(&attacker, now + Duration::from_secs(2))
        .unwrap_err();
    assert!(refused.reset_secs > 0);
}

#[test]
fn the_memory_bound_is_what_the_readme_states() {
    assert_eq!(std::mem::size_of::<Slot>(), 48);
    assert_eq!(Bounds::API_FAILURES.memory_bytes(), 4 * 1024 * 1024);
    assert_eq!(Bounds::LOGIN_FAILURES.memory_bytes(), 832 * 1024);
    assert_eq!(Bounds::QUOTAS.memory_bytes(), 772 * 1024);
}

#[test]
fn the_lock_free_check_sees_every_exhausted_key_including_pushed_out_ones() {
    let counter = counter(20, small());
    let attacker = address_key("198.51.100.7".parse().unwrap());
    let honest = address_key("198.51.100.8".parse().unwrap());
    for _ in 0..20 {
        counter.reserve(&honest).unwrap().refund();
    }
    assert!(
        !counter.any_exhausted_now(),
        "refunded events exhaust nothing"
    );
    for _ in 0..19 {
        counter.reserve(&attacker).unwrap().keep();
    }
    assert!(counter.exhausted_now(&attacker).is_none(), "one left");
    counter.reserve(&attacker).unwrap().keep();
    assert!(counter.any_exhausted_now());
    assert_eq!(counter.exhausted_now(&attacker).unwrap().remaining, 0);
    assert!(counter.exhausted_now(&honest).is_none());
    // Pushed out of the table by other failing addresses: the filter holds it.
    for n in 0..20_000u32 {
        let key = address_key(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)));
        for _ in 0..20 {
            if let Ok(reservation) = counter.reserve(&key) {
                reservation.keep();
            }
        }
    }
    assert!(counter.exhausted_now(&attacker).is_some());
}

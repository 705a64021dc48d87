//! Fixed-window counters with a fixed memory bound: the hourly per-client
//! quota (SPEC §4), the failed-attempt throttle per client address, and the
//! failed logins and setup tokens per user name and per address.
//!
//! Two rules hold for all of them.
//!
//! * **Reserve, then verify.** The only way to count is `reserve`, which
//!   takes a slot atomically *before* the secret is checked and returns a
//!   `Reservation` that the caller refunds on success and keeps on failure.
//!   A thousand simultaneous guesses therefore cost at most the limit in
//!   verifications; there is no `peek` to check before an await.
//! * **Bounded memory, safe under pressure.** Keys are stored as 16-byte
//!   keyed digests in a set-associative table of fixed size (`Bounds`): a
//!   full bucket evicts its least-used, least recently failing slot, so a
//!   flood of one-off addresses evicts itself and never the address that is
//!   failing 20 times. An evicted count goes into a fixed-size "max" sketch
//!   (a count-min sketch that keeps maxima), which may over-state a key but
//!   never forgets one within its window: pressure can make the throttle
//!   stricter, never lenient. Memory is allocated once, whatever the number
//!   of distinct clients (README, "Limits and memory").

mod failures;
mod fields;
mod redis_counter;
mod shared;
mod sketch;
mod table;

use std::net::IpAddr;

use actix_web::http::header::{HeaderName, HeaderValue};
use fields::FieldText;

pub use failures::{Attempt, FailureThrottle, MAX_WAIT, NO_PROGRESS_WAIT};
pub use redis_counter::{RedisReservation, RedisWindowCounter};
pub use shared::{Admission, SharedAttempt, SharedLimits};
pub use table::{Bounds, Reservation, WindowCounter};

/// The key of a client address in a failure counter: the address itself
/// for IPv4, its /64 for IPv6, where one client usually holds a whole
/// prefix. IPv4-mapped IPv6 addresses count as the IPv4 address.
pub fn address_key(addr: IpAddr) -> [u8; 17] {
    let mut key = [0u8; 17];
    match addr.to_canonical() {
        IpAddr::V4(v4) => {
            key[0] = 4;
            key[1..5].copy_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            key[0] = 6;
            key[1..9].copy_from_slice(&v6.octets()[..8]);
        }
    }
    key
}

const POLICY_NAME: HeaderName = HeaderName::from_static("ratelimit-policy");
const STATE_NAME: HeaderName = HeaderName::from_static("ratelimit");

/// A client's standing in its current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u32,
    pub remaining: u32,
    /// Whole seconds until the window ends (rounded up).
    pub reset_secs: u64,
}

impl Quota {
    /// The IETF `RateLimit-Policy` and `RateLimit` fields (`fields.rs`).
    pub fn headers(&self) -> [(HeaderName, HeaderValue); 2] {
        let mut state = FieldText::new();
        state.prepend_decimal(self.reset_secs);
        state.prepend(fields::RESET);
        state.prepend_decimal(u64::from(self.remaining));
        state.prepend(fields::HOURLY_REMAINING);
        [
            (POLICY_NAME, policy_value(self.limit)),
            (STATE_NAME, state.value()),
        ]
    }
}

thread_local! {
    /// The policy field only changes with the limit: built once per thread.
    static POLICY: std::cell::RefCell<Option<(u32, HeaderValue)>> = const { std::cell::RefCell::new(None) };
}

fn policy_value(limit: u32) -> HeaderValue {
    POLICY.with(|cached| {
        let mut cached = cached.borrow_mut();
        if let Some((cached_limit, value)) = &*cached {
            if *cached_limit == limit {
                return value.clone();
            }
        }
        let mut policy = FieldText::new();
        policy.prepend(fields::WINDOW);
        policy.prepend_decimal(u64::from(limit));
        policy.prepend(fields::HOURLY_QUOTA);
        let value = policy.value();
        *cached = Some((limit, value.clone()));
        value
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_follow_the_ietf_field_syntax() {
        let quota = Quota {
            limit: 100,
            remaining: 7,
            reset_secs: 42,
        };
        let [(policy_name, policy), (state_name, state)] = quota.headers();
        assert_eq!(policy_name, "ratelimit-policy");
        assert_eq!(policy, "\"hourly\";q=100;w=3600");
        assert_eq!(state_name, "ratelimit");
        assert_eq!(state, "\"hourly\";r=7;t=42");
    }

    #[test]
    fn the_largest_numbers_fit_in_the_fields() {
        for (remaining, reset_secs) in [(0, 0), (9, 10), (u32::MAX, u64::MAX)] {
            let quota = Quota {
                limit: u32::MAX,
                remaining,
                reset_secs,
            };
            let [(_, policy), (_, state)] = quota.headers();
            assert_eq!(policy, format!("\"hourly\";q={};w=3600", u32::MAX).as_str());
            assert_eq!(
                state,
                format!("\"hourly\";r={remaining};t={reset_secs}").as_str()
            );
        }
    }
}

//! Fixed-window counters: the hourly per-client quota (SPEC §4) and the
//! failed-attempt throttle per client address share this one mechanism.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::http::header::{HeaderName, HeaderValue};

/// A client's standing in its current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u32,
    pub remaining: u32,
    /// Whole seconds until the window ends (rounded up).
    pub reset_secs: u64,
}

impl Quota {
    /// The IETF `RateLimit-Policy` and `RateLimit` fields. Written by
    /// hand: they go out with every key-authenticated response.
    pub fn headers(&self) -> [(HeaderName, HeaderValue); 2] {
        let mut state = Vec::with_capacity(40);
        state.extend_from_slice(b"\"hourly\";r=");
        push_decimal(&mut state, u64::from(self.remaining));
        state.extend_from_slice(b";t=");
        push_decimal(&mut state, self.reset_secs);
        [
            (
                HeaderName::from_static("ratelimit-policy"),
                policy_value(self.limit),
            ),
            (HeaderName::from_static("ratelimit"), header_value(state)),
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
        let mut policy = Vec::with_capacity(32);
        policy.extend_from_slice(b"\"hourly\";q=");
        push_decimal(&mut policy, u64::from(limit));
        policy.extend_from_slice(b";w=3600");
        let value = header_value(policy);
        *cached = Some((limit, value.clone()));
        value
    })
}

fn push_decimal(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn header_value(bytes: Vec<u8>) -> HeaderValue {
    HeaderValue::from_maybe_shared(actix_web::web::Bytes::from(bytes))
        .expect("digits, letters and quotes are a valid header value")
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    used: u32,
}

/// Counts events per key in fixed windows that start with a key's first
/// event: a new key may use its whole allowance at once, and the count
/// starts again when its window has passed.
#[derive(Debug)]
pub struct WindowCounter<K> {
    limit: u32,
    window: Duration,
    entries: Mutex<HashMap<K, Window>>,
    epoch: Instant,
}

impl<K: Hash + Eq> WindowCounter<K> {
    pub fn new(limit: NonZeroU32, window: Duration) -> Self {
        Self {
            limit: limit.get(),
            window,
            entries: Mutex::new(HashMap::new()),
            epoch: Instant::now(),
        }
    }

    fn quota(&self, window: Option<&Window>, now: Instant) -> Quota {
        self.quota_of(self.limit, window, now)
    }

    fn quota_of(&self, limit: u32, window: Option<&Window>, now: Instant) -> Quota {
        let Some(window) = window.filter(|w| now.duration_since(w.started) < self.window) else {
            return Quota {
                limit,
                remaining: limit,
                reset_secs: self.window.as_secs(),
            };
        };
        let left = self.window - now.duration_since(window.started);
        Quota {
            limit,
            remaining: limit.saturating_sub(window.used),
            reset_secs: left.as_secs() + u64::from(left.subsec_nanos() > 0),
        }
    }

    /// Counts one event for `key` if its allowance is not used up: `Ok` with
    /// the quota after it, or `Err` with the exhausted quota.
    pub fn try_acquire<Q>(&self, key: &Q) -> Result<Quota, Quota>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.try_acquire_at(key, Instant::now())
    }

    pub fn try_acquire_at<Q>(&self, key: &Q, now: Instant) -> Result<Quota, Quota>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.try_acquire_limited_at(key, self.limit, now)
    }

    /// `try_acquire` with a limit of this key's own instead of the counter's.
    pub fn try_acquire_limited<Q>(&self, key: &Q, limit: u32) -> Result<Quota, Quota>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.try_acquire_limited_at(key, limit, Instant::now())
    }

    fn try_acquire_limited_at<Q>(&self, key: &Q, limit: u32, now: Instant) -> Result<Quota, Quota>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let window = entries
            .get(key)
            .filter(|w| now.duration_since(w.started) < self.window)
            .copied();
        let current = self.quota_of(limit, window.as_ref(), now);
        if current.remaining == 0 {
            return Err(current);
        }
        if window.is_none() {
            entries.insert(
                key.to_owned(),
                Window {
                    started: now,
                    used: 0,
                },
            );
        }
        let window = entries.get_mut(key).expect("the window was just opened");
        window.used += 1;
        let window = *window;
        Ok(self.quota_of(limit, Some(&window), now))
    }

    /// The quota of `key` without counting anything.
    pub fn peek<Q>(&self, key: &Q) -> Quota
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(key) {
            // The common case, a client with no window, needs no clock.
            None => self.quota(None, self.epoch),
            Some(window) => self.quota(Some(window), Instant::now()),
        }
    }

    /// Forgets windows that have passed, so memory follows active clients.
    pub fn prune(&self) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, window| now.duration_since(window.started) < self.window);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(limit: u32) -> WindowCounter<String> {
        WindowCounter::new(NonZeroU32::new(limit).unwrap(), Duration::from_secs(3600))
    }

    #[test]
    fn a_new_client_may_use_its_whole_quota_at_once_and_no_more() {
        let counter = counter(3);
        let now = Instant::now();
        let remaining: Vec<u32> = (0..3)
            .map(|_| counter.try_acquire_at("a", now).unwrap().remaining)
            .collect();
        assert_eq!(remaining, vec![2, 1, 0]);
        let refused = counter.try_acquire_at("a", now).unwrap_err();
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.reset_secs, 3600);
    }

    #[test]
    fn the_quota_returns_when_the_window_has_passed() {
        let counter = counter(1);
        let start = Instant::now();
        counter.try_acquire_at("a", start).unwrap();
        let later = start + Duration::from_secs(1800) + Duration::from_millis(1);
        assert_eq!(
            counter.try_acquire_at("a", later).unwrap_err().reset_secs,
            1800
        );
        let next_hour = start + Duration::from_secs(3600);
        assert_eq!(counter.try_acquire_at("a", next_hour).unwrap().remaining, 0);
    }

    #[test]
    fn clients_are_counted_apart() {
        let counter = counter(1);
        let now = Instant::now();
        counter.try_acquire_at("a", now).unwrap();
        assert!(counter.try_acquire_at("a", now).is_err());
        assert!(counter.try_acquire_at("b", now).is_ok());
    }

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
}

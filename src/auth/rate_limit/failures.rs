//! `FailureThrottle`: the API gate's failed-attempt throttle per client
//! address (SPEC §4) on a `WindowCounter`, telling confirmed failures from
//! attempts still being verified.
//!
//! A secret that needs verifying reserves its slot first, so at most the
//! limit of unverified guesses is ever verified, under any concurrency.
//! But a window full of *reservations* is not a window full of failures:
//! an honest burst of new keys from one address would be refused while
//! its own first verifications run. So a reservation that finds the window
//! full while some of it is still in flight waits (woken as each one
//! resolves) instead of being refused; only confirmed failures refuse at
//! once. A key already known valid takes no slot at all
//! (`known_key_refusal`).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Bounds, Quota, Reservation, WindowCounter};

/// How long a reservation waits for a slot when nothing in flight
/// resolves: a verification takes milliseconds, so two seconds without
/// one means the slots are held by something that is not coming back soon.
pub const NO_PROGRESS_WAIT: Duration = Duration::from_secs(2);
/// The longest a reservation waits in all: a burst of N new keys needs N
/// verifications on the hashing pool before the last one has its turn.
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// The `Retry-After` of an attempt that gave up waiting while the window
/// held attempts still being verified rather than confirmed failures: the
/// address is not throttled for the window, only busy, so it may retry
/// shortly (the review of issue 18 saw `Retry-After: 900` on an honest
/// burst slowed by other addresses' checks).
pub const RETRY_SOON_SECS: u64 = 2;

/// An address's attempts being verified right now, and how its waiters
/// learn that one resolved.
#[derive(Debug)]
struct InFlight {
    count: u32,
    resolved: Arc<Notify>,
}

#[derive(Debug)]
pub struct FailureThrottle {
    counter: WindowCounter,
    /// Only addresses with an attempt in flight: bounded by the requests
    /// being served.
    in_flight: Mutex<HashMap<[u8; 17], InFlight>>,
}

/// A slot taken before a secret is verified. `refund` on success, `keep`
/// on failure; dropped unresolved (the request was cancelled), it counts
/// as a failure.
#[derive(Debug)]
#[must_use = "an attempt is a failure unless refunded"]
pub struct Attempt<'a> {
    throttle: &'a FailureThrottle,
    addr: [u8; 17],
    reservation: Option<Reservation<'a>>,
}

impl Attempt<'_> {
    /// The secret verified: the slot is given back.
    pub fn refund(mut self) {
        self.resolve(true);
    }

    /// The secret was wrong: the slot stays counted.
    pub fn keep(mut self) {
        self.resolve(false);
    }

    fn resolve(&mut self, refund: bool) {
        let Some(reservation) = self.reservation.take() else {
            return;
        };
        let mut in_flight = self.throttle.in_flight.lock();
        if refund {
            reservation.refund();
        } else {
            reservation.keep();
        }
        if let Some(entry) = in_flight.get_mut(&self.addr) {
            entry.count -= 1;
            entry.resolved.notify_waiters();
            if entry.count == 0 {
                in_flight.remove(&self.addr);
            }
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        self.resolve(false);
    }
}

impl FailureThrottle {
    pub fn new(limit: NonZeroU32, window: Duration, bounds: Bounds) -> Self {
        Self {
            counter: WindowCounter::new(limit, window, bounds),
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    /// For a key known valid without verifying anything (a cached argon2
    /// result, an environment key): refused only when the window is full of
    /// confirmed failures, never for attempts still in flight.
    pub fn known_key_refusal(&self, addr: &[u8; 17]) -> Option<Quota> {
        // The common case, no address at its limit: no hashing, no lock.
        if !self.counter.any_exhausted_now() {
            return None;
        }
        let in_flight = self.in_flight.lock();
        let exhausted = self.counter.exhausted_now(addr)?;
        let pending = in_flight.get(addr).map_or(0, |entry| entry.count);
        (pending == 0).then_some(exhausted)
    }

    /// Takes a slot for an attempt that must be verified. When the window
    /// is full of confirmed failures, `Err` at once; when part of it is in
    /// flight, waits for a slot to come free (see `NO_PROGRESS_WAIT`,
    /// `MAX_WAIT`).
    pub async fn reserve(&self, addr: [u8; 17]) -> Result<Attempt<'_>, Quota> {
        let give_up = Instant::now() + MAX_WAIT;
        loop {
            let resolved = {
                let mut in_flight = self.in_flight.lock();
                let refused = match self.counter.reserve(&addr) {
                    Ok(reservation) => {
                        in_flight
                            .entry(addr)
                            .or_insert_with(|| InFlight {
                                count: 0,
                                resolved: Arc::new(Notify::new()),
                            })
                            .count += 1;
                        return Ok(Attempt {
                            throttle: self,
                            addr,
                            reservation: Some(reservation),
                        });
                    }
                    Err(refused) => refused,
                };
                match in_flight.get(&addr) {
                    // Created under the lock, so no resolution is missed.
                    Some(entry) => (entry.resolved.clone().notified_owned(), refused),
                    None => return Err(refused),
                }
            };
            let (notified, refused) = resolved;
            let deadline = give_up.min(Instant::now() + NO_PROGRESS_WAIT);
            if tokio::time::timeout_at(deadline, pin!(notified))
                .await
                .is_err()
            {
                return Err(Quota {
                    reset_secs: RETRY_SOON_SECS.min(refused.reset_secs),
                    ..refused
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDR: [u8; 17] = [4, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

    fn throttle(limit: u32) -> FailureThrottle {
        FailureThrottle::new(
            NonZeroU32::new(limit).unwrap(),
            Duration::from_secs(900),
            Bounds::LOGIN_FAILURES,
        )
    }

    #[tokio::test]
    async fn a_full_window_of_attempts_in_flight_makes_the_next_one_wait_not_fail() {
        let throttle = Arc::new(throttle(2));
        let first = throttle.reserve(ADDR).await.unwrap();
        let second = throttle.reserve(ADDR).await.unwrap();
        assert!(throttle.known_key_refusal(&ADDR).is_none());
        let waiting = {
            let throttle = throttle.clone();
            tokio::spawn(async move { throttle.reserve(ADDR).await.map(Attempt::refund) })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the third attempt waits");
        first.refund();
        assert!(waiting.await.unwrap().is_ok(), "and gets the freed slot");
        second.keep();
    }

    #[tokio::test]
    async fn confirmed_failures_refuse_at_once_and_refuse_known_keys_too() {
        let throttle = throttle(2);
        throttle.reserve(ADDR).await.unwrap().keep();
        throttle.reserve(ADDR).await.unwrap().keep();
        let started = Instant::now();
        assert!(throttle.reserve(ADDR).await.is_err());
        assert!(started.elapsed() < Duration::from_millis(100), "no wait");
        assert!(throttle.known_key_refusal(&ADDR).is_some());
    }

    #[tokio::test]
    async fn a_waiter_is_refused_when_the_attempts_it_waited_for_fail() {
        let throttle = Arc::new(throttle(1));
        let first = throttle.reserve(ADDR).await.unwrap();
        let waiting = {
            let throttle = throttle.clone();
            tokio::spawn(async move { throttle.reserve(ADDR).await.map(Attempt::refund) })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(first);
        assert!(
            waiting.await.unwrap().is_err(),
            "a dropped attempt is a failure"
        );
    }

    #[tokio::test]
    async fn a_waiter_gives_up_when_nothing_resolves() {
        let throttle = throttle(1);
        let _stuck = throttle.reserve(ADDR).await.unwrap();
        let started = Instant::now();
        let Err(refused) = throttle.reserve(ADDR).await else {
            panic!("a window full of a stuck attempt refuses")
        };
        let waited = started.elapsed();
        assert_eq!(
            refused.reset_secs, RETRY_SOON_SECS,
            "a busy window is retried soon, not after the whole window"
        );
        assert!(
            waited >= NO_PROGRESS_WAIT && waited < MAX_WAIT,
            "{waited:?}"
        );
    }
}

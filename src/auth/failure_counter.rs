//! The dashboard's failure counters (failed logins and setup tokens per
//! user name and per address, wrong second-step codes per user): in this
//! process's memory with the file store, in Redis with `REDIS_URL`, so the
//! limits hold across every instance (SPEC §4, §7). Either way a slot is
//! reserved before the secret is checked and refunded on success.

use std::num::NonZeroU32;
use std::time::Duration;

use super::rate_limit::{
    Bounds, Quota, RedisReservation, RedisWindowCounter, Reservation, WindowCounter,
};
use crate::store::redis::Redis;
use crate::store::StoreError;

/// The names of the shared counters in Redis.
pub const LOGIN_FAILURES: &str = "login-failures";
pub const SECOND_STEP_FAILURES: &str = "second-step-failures";

#[derive(Debug)]
pub enum FailureCounter {
    Local(WindowCounter),
    Shared(RedisWindowCounter),
}

/// Why no slot was reserved.
#[derive(Debug)]
pub enum Refused {
    /// The limit is reached: wait this long.
    Exhausted(Quota),
    /// Redis could not be asked: the caller answers 503.
    Unavailable(StoreError),
}

/// Reserved slots: dropping or `keep` leaves them counted (a failure),
/// `refund` gives them back (a success).
#[derive(Debug)]
#[must_use = "a reservation is counted unless refunded"]
pub enum Attempt<'a> {
    Local(Vec<Reservation<'a>>),
    Shared(RedisReservation<'a>),
}

impl FailureCounter {
    /// `limit` failures per key per `window`, in this process.
    pub fn local(limit: NonZeroU32, window: Duration) -> Self {
        Self::Local(WindowCounter::new(limit, window, Bounds::LOGIN_FAILURES))
    }

    /// The same, shared by every instance on `redis` under `name`.
    pub fn shared(redis: &Redis, name: &str, limit: NonZeroU32, window: Duration) -> Self {
        Self::Shared(RedisWindowCounter::new(redis, name, limit, window))
    }

    /// Lifts `key`'s lockout. Only the shared counter can be reached from
    /// outside the server; an in-memory one ends with its process.
    pub async fn forget(&self, key: &[u8]) -> Result<(), StoreError> {
        match self {
            Self::Local(_) => Ok(()),
            Self::Shared(counter) => counter.forget(key).await,
        }
    }

    pub async fn reserve(&self, key: &[u8]) -> Result<Attempt<'_>, Refused> {
        self.reserve_all(&[key]).await
    }

    /// One slot for each of `keys`, all or none.
    pub async fn reserve_all(&self, keys: &[&[u8]]) -> Result<Attempt<'_>, Refused> {
        match self {
            Self::Local(counter) => counter
                .reserve_all(keys)
                .map(Attempt::Local)
                .map_err(Refused::Exhausted),
            Self::Shared(counter) => match counter.reserve_all(keys).await {
                Ok(Ok(reservation)) => Ok(Attempt::Shared(reservation)),
                Ok(Err(quota)) => Err(Refused::Exhausted(quota)),
                Err(err) => Err(Refused::Unavailable(err)),
            },
        }
    }
}

impl Attempt<'_> {
    /// Leaves the failure counted.
    pub fn keep(self) {}

    /// Gives the slots back. A refund Redis cannot take leaves the attempt
    /// counted: stricter, never more lenient.
    pub async fn refund(self) {
        match self {
            Self::Local(slots) => slots.into_iter().for_each(Reservation::refund),
            Self::Shared(reservation) => {
                if let Err(err) = reservation.refund().await {
                    tracing::warn!(
                        error = format!("{err:#}"),
                        "a successful attempt stays counted: Redis did not take the refund"
                    );
                }
            }
        }
    }
}

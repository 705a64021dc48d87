//! One key's usage: a fixed ring of 168 hourly buckets (seven days), each
//! counting allowed requests and denials by reason. Old hours are
//! overwritten in place; nothing grows with traffic.

use serde::{Deserialize, Serialize};

/// Hours kept per key: seven days.
pub const HOURS_KEPT: usize = 168;

/// What became of a request made with a known key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    RateLimited,
    InsufficientScope,
    AdminRequired,
    IpNotAllowed,
    ExpiredKey,
    TooManyJobs,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::Allowed,
        Outcome::RateLimited,
        Outcome::InsufficientScope,
        Outcome::AdminRequired,
        Outcome::IpNotAllowed,
        Outcome::ExpiredKey,
        Outcome::TooManyJobs,
    ];
    /// The denials, in the order pages and the API list them.
    pub const DENIALS: [Outcome; 6] = [
        Outcome::RateLimited,
        Outcome::InsufficientScope,
        Outcome::AdminRequired,
        Outcome::IpNotAllowed,
        Outcome::ExpiredKey,
        Outcome::TooManyJobs,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    /// The error code the gate answered, or `allowed`.
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::RateLimited => "rate-limited",
            Outcome::InsufficientScope => "insufficient-scope",
            Outcome::AdminRequired => "admin-required",
            Outcome::IpNotAllowed => "ip-not-allowed",
            Outcome::ExpiredKey => "expired-api-key",
            Outcome::TooManyJobs => "too-many-jobs",
        }
    }

    /// The denial an error code stands for; `None` for answers that are
    /// not a refusal of the key (not found, invalid input, ...).
    pub fn denial(code: &str) -> Option<Outcome> {
        Outcome::DENIALS.into_iter().find(|o| o.code() == code)
    }
}

/// Requests of one key in one hour, indexed by `Outcome::index`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts(pub [u32; Outcome::ALL.len()]);

impl Counts {
    pub fn get(&self, outcome: Outcome) -> u32 {
        self.0[outcome.index()]
    }

    pub fn allowed(&self) -> u32 {
        self.get(Outcome::Allowed)
    }

    pub fn denied(&self) -> u32 {
        Outcome::DENIALS.iter().map(|o| self.get(*o)).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|n| *n == 0)
    }

    pub fn add(&mut self, other: &Counts) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine = mine.saturating_add(theirs);
        }
    }
}

/// Hours since the Unix epoch.
pub type Hour = i64;

pub fn hour_of(time: chrono::DateTime<chrono::Utc>) -> Hour {
    time.timestamp().div_euclid(3600)
}

/// The start of `hour`.
pub fn hour_start(hour: Hour) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(hour * 3600, 0).unwrap_or_default()
}

/// A series summed per UTC day, oldest first.
pub fn by_day(series: &[(Hour, Counts)]) -> Vec<(chrono::NaiveDate, Counts)> {
    let mut days: Vec<(chrono::NaiveDate, Counts)> = Vec::new();
    for (hour, counts) in series {
        let day = hour_start(*hour).date_naive();
        match days.last_mut() {
            Some((last, sum)) if *last == day => sum.add(counts),
            _ => days.push((day, *counts)),
        }
    }
    days
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Slot {
    hour: Hour,
    counts: Counts,
}

/// The ring: slot `hour % 168` holds that hour while it is one of the
/// last 168, and is reused for the hour seven days later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRing {
    slots: Box<[Slot; HOURS_KEPT]>,
}

impl Default for KeyRing {
    fn default() -> Self {
        Self {
            slots: Box::new([Slot::default(); HOURS_KEPT]),
        }
    }
}

fn slot_index(hour: Hour) -> usize {
    usize::try_from(hour.rem_euclid(HOURS_KEPT as i64)).expect("in range")
}

impl KeyRing {
    /// Adds `counts` to `hour`; an hour older than the one in its slot is
    /// too old to keep and is dropped.
    pub fn add(&mut self, hour: Hour, counts: &Counts) {
        let slot = &mut self.slots[slot_index(hour)];
        if slot.hour < hour {
            *slot = Slot {
                hour,
                counts: Counts::default(),
            };
        }
        if slot.hour == hour {
            slot.counts.add(counts);
        }
    }

    /// The 168 hours ending with `now`, oldest first, zeros where nothing
    /// was counted.
    pub fn series(&self, now: Hour) -> Vec<(Hour, Counts)> {
        (now - HOURS_KEPT as i64 + 1..=now)
            .map(|hour| {
                let slot = &self.slots[slot_index(hour)];
                let counts = if slot.hour == hour {
                    slot.counts
                } else {
                    Counts::default()
                };
                (hour, counts)
            })
            .collect()
    }

    /// The hours with counts, for storage: at most 168 of them.
    pub fn buckets(&self) -> Vec<(Hour, Counts)> {
        let mut buckets: Vec<_> = self
            .slots
            .iter()
            .filter(|slot| !slot.counts.is_empty())
            .map(|slot| (slot.hour, slot.counts))
            .collect();
        buckets.sort_by_key(|(hour, _)| *hour);
        buckets
    }

    pub fn from_buckets(buckets: &[(Hour, Counts)]) -> Self {
        let mut ring = Self::default();
        for (hour, counts) in buckets {
            ring.add(*hour, counts);
        }
        ring
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(allowed: u32, rate_limited: u32) -> Counts {
        let mut counts = Counts::default();
        counts.0[Outcome::Allowed.index()] = allowed;
        counts.0[Outcome::RateLimited.index()] = rate_limited;
        counts
    }

    #[test]
    fn the_series_has_168_hours_oldest_first_with_the_counts_of_each() {
        let mut ring = KeyRing::default();
        ring.add(1000, &counts(2, 1));
        ring.add(1000, &counts(3, 0));
        ring.add(990, &counts(1, 0));
        let series = ring.series(1000);
        assert_eq!(series.len(), HOURS_KEPT);
        assert_eq!(series[0].0, 1000 - 167);
        assert_eq!(series[167], (1000, counts(5, 1)));
        assert_eq!(series[157], (990, counts(1, 0)));
        assert_eq!(series.iter().map(|(_, c)| c.allowed()).sum::<u32>(), 6);
    }

    #[test]
    fn an_hour_seven_days_later_replaces_its_slot_and_older_hours_are_dropped() {
        let mut ring = KeyRing::default();
        ring.add(1000, &counts(4, 0));
        ring.add(1000 + 168, &counts(1, 0));
        ring.add(1000, &counts(9, 0));
        assert_eq!(ring.buckets(), vec![(1168, counts(1, 0))]);
        assert!(ring.series(1000 + 168)[0].1.is_empty());
    }

    #[test]
    fn buckets_round_trip_through_storage() {
        let mut ring = KeyRing::default();
        ring.add(5, &counts(1, 2));
        ring.add(7, &counts(0, 3));
        assert_eq!(KeyRing::from_buckets(&ring.buckets()), ring);
    }

    #[test]
    fn a_series_sums_into_utc_days_oldest_first() {
        // Hour 24 is the first hour of 1970-01-02.
        let days = by_day(&[(22, counts(1, 0)), (23, counts(2, 1)), (24, counts(4, 0))]);
        let day = |d| chrono::NaiveDate::from_ymd_opt(1970, 1, d).unwrap();
        assert_eq!(days, vec![(day(1), counts(3, 1)), (day(2), counts(4, 0))]);
    }

    #[test]
    fn every_denial_code_maps_back_to_its_outcome() {
        for outcome in Outcome::DENIALS {
            assert_eq!(Outcome::denial(outcome.code()), Some(outcome));
        }
        assert_eq!(Outcome::denial("not-found"), None);
        assert_eq!(Outcome::denial("allowed"), None);
    }
}

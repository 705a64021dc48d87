//! Counter handles kept per label value, so that counting costs an index
//! (or a read-lock look-up) and an atomic add, with no label strings built
//! per request.

use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::OnceLock;

use rustc_hash::FxHashMap;

use ::metrics::{counter, Counter};

/// Counters of one metric with one label whose values are static strings
/// (outcome codes): a bounded set, known at compile time.
pub(super) struct ByStatic {
    name: &'static str,
    label: &'static str,
    counters: RwLock<Option<HashMap<&'static str, Counter>>>,
}

impl ByStatic {
    pub(super) const fn new(name: &'static str, label: &'static str) -> Self {
        Self {
            name,
            label,
            counters: RwLock::new(None),
        }
    }

    pub(super) fn increment(&self, value: &'static str) {
        if let Some(counter) = self
            .counters
            .read()
            .as_ref()
            .and_then(|counters| counters.get(value))
        {
            counter.increment(1);
            return;
        }
        let counter = counter!(self.name, self.label => value);
        counter.increment(1);
        self.counters
            .write()
            .get_or_insert_with(HashMap::new)
            .insert(value, counter);
    }
}

/// Counters of one metric for label values fixed in advance, reached by
/// their index: no lock and no hashing, for the ones counted per request.
pub(super) struct Fixed<const N: usize> {
    name: &'static str,
    label: &'static str,
    values: [&'static str; N],
    counters: [OnceLock<Counter>; N],
}

impl<const N: usize> Fixed<N> {
    pub(super) const fn new(
        name: &'static str,
        label: &'static str,
        values: [&'static str; N],
    ) -> Self {
        Self {
            name,
            label,
            values,
            counters: [const { OnceLock::new() }; N],
        }
    }

    /// Counts one for `values[index]`.
    pub(super) fn increment(&self, index: usize) {
        self.counters[index]
            .get_or_init(|| counter!(self.name, self.label => self.values[index]))
            .increment(1);
    }
}

/// Request counters by route pattern and status. Patterns come from the
/// application's own routes (or `unmatched`), never from the raw path, so
/// the set is bounded, holds no ids and no client chooses what is hashed:
/// a fast unkeyed hash serves, and a route's few statuses are a short list.
pub(super) struct RequestCounters {
    name: &'static str,
    counters: RwLock<FxHashMap<String, Vec<(u16, Counter)>>>,
}

impl RequestCounters {
    pub(super) fn new(name: &'static str) -> Self {
        Self {
            name,
            counters: RwLock::new(FxHashMap::default()),
        }
    }

    pub(super) fn increment(&self, pattern: &str, status: u16) {
        if let Some((_, counter)) = self
            .counters
            .read()
            .get(pattern)
            .and_then(|by_status| by_status.iter().find(|(known, _)| *known == status))
        {
            counter.increment(1);
            return;
        }
        let counter = counter!(
            self.name,
            "route" => pattern.to_owned(),
            "status" => status.to_string()
        );
        counter.increment(1);
        let mut counters = self.counters.write();
        let by_status = counters.entry(pattern.to_owned()).or_default();
        if !by_status.iter().any(|(known, _)| *known == status) {
            by_status.push((status, counter));
        }
    }
}

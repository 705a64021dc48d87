//! Counter handles kept per label value, so that counting costs a read-lock
//! look-up and an atomic add, with no label strings built per request.

use parking_lot::RwLock;
use std::collections::HashMap;

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

/// Request counters by route pattern and status. Patterns come from the
/// application's own routes (or `unmatched`), never from the raw path, so
/// the set is bounded and holds no ids.
pub(super) struct RequestCounters {
    name: &'static str,
    counters: RwLock<HashMap<String, HashMap<u16, Counter>>>,
}

impl RequestCounters {
    pub(super) fn new(name: &'static str) -> Self {
        Self {
            name,
            counters: RwLock::new(HashMap::new()),
        }
    }

    pub(super) fn increment(&self, pattern: &str, status: u16) {
        if let Some(counter) = self
            .counters
            .read()
            .get(pattern)
            .and_then(|by_status| by_status.get(&status))
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
        self.counters
            .write()
            .entry(pattern.to_owned())
            .or_default()
            .insert(status, counter);
    }
}

//! The built-in engine's indexes, kept in memory under one budget: the
//! least recently used are dropped first, and an index larger than the
//! whole budget is used for its question and then dropped.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use super::builtin::Answer;
use super::index::DirIndex;

/// Default memory budget for all indexes together (estimated heap); the
/// generated 50,000-file, 500 MB workspace of scripts/bench.sh fits.
pub const DEFAULT_BUDGET_BYTES: usize = 256 * 1024 * 1024;

/// What an index describes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// A workspace's directory, which may change between questions.
    Directory(String),
    /// One commit of a workspace's repository (a branch export): its
    /// files never change, so the index is built once and not re-walked.
    Commit { repository: String, commit: String },
}

struct Slot {
    index: Arc<Mutex<DirIndex>>,
    used: u64,
    bytes: usize,
}

#[derive(Default)]
struct Slots {
    clock: u64,
    by_source: HashMap<Source, Slot>,
}

pub struct IndexCache {
    budget: usize,
    slots: Mutex<Slots>,
}

impl std::fmt::Debug for IndexCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexCache")
            .field("budget", &self.budget)
            .field("indexes", &lock(&self.slots).by_source.len())
            .finish()
    }
}

impl Default for IndexCache {
    fn default() -> Self {
        Self::new(DEFAULT_BUDGET_BYTES)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock()
}

impl IndexCache {
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            slots: Mutex::new(Slots::default()),
        }
    }

    /// Answers from the files under `root`, described by `source`, through
    /// its index (built or refreshed first). Blocking: run it off the
    /// async executor.
    pub fn answer(
        &self,
        source: &Source,
        root: &Path,
        question: &str,
        context: Option<&str>,
    ) -> Answer {
        let index = {
            let mut slots = lock(&self.slots);
            slots.clock += 1;
            let used = slots.clock;
            let slot = slots
                .by_source
                .entry(source.clone())
                .or_insert_with(|| Slot {
                    index: Arc::default(),
                    used,
                    bytes: 0,
                });
            slot.used = used;
            slot.index.clone()
        };
        let mut index = lock(&index);
        if !(matches!(source, Source::Commit { .. }) && index.is_built()) {
            index.refresh(root);
        }
        let answer = index.answer(root, question, context);
        let bytes = index.heap_bytes();
        drop(index);
        self.settle(source, bytes);
        answer
    }

    /// Records `source`'s size and drops indexes until all fit the budget.
    fn settle(&self, source: &Source, bytes: usize) {
        let mut slots = lock(&self.slots);
        if let Some(slot) = slots.by_source.get_mut(source) {
            slot.bytes = bytes;
        }
        loop {
            let total: usize = slots.by_source.values().map(|s| s.bytes).sum();
            if total <= self.budget {
                return;
            }
            let oldest = slots
                .by_source
                .iter()
                .min_by_key(|(_, slot)| slot.used)
                .map(|(source, _)| source.clone());
            match oldest {
                Some(oldest) => {
                    slots.by_source.remove(&oldest);
                }
                None => return,
            }
        }
    }

    /// How many indexes are held (for tests).
    pub fn len(&self) -> usize {
        lock(&self.slots).by_source.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

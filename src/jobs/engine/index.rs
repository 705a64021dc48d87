//! The built-in engine's index of one directory: an inverted index from
//! each term to the files and 6-line blocks it occurs in (with counts,
//! varint-packed, see [`super::postings`]), plus each file's token count
//! per block. A passage is two consecutive blocks, so a question reads
//! only its own words' postings and ranks exactly as the full scan does
//! ([`super::builtin::answer_by_scan`]). A refresh walks the directory with
//! the same rules as the scan and re-reads only the files whose size,
//! mtime, ctime or inode changed: a changed file gets a new id and its old
//! postings are skipped until the index is rebuilt.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ignore::WalkState;
use parking_lot::{Mutex, MutexGuard};
use rustc_hash::FxHashMap;

use super::builtin::{walker, PASSAGE_LINES, PASSAGE_STRIDE};
use build::{read_files, Shard, SHARDS};

// A passage is exactly two blocks; the ranking below relies on it.
const _: () = assert!(PASSAGE_LINES == 2 * PASSAGE_STRIDE);

/// What identifies a file's content without reading it. `ctime` cannot be
/// set back by a user, so a rewrite with the same size and mtime is seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    pub(super) size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    inode: u64,
}

impl Stamp {
    fn of(metadata: &std::fs::Metadata) -> Self {
        Self {
            size: metadata.len(),
            mtime: (metadata.mtime(), metadata.mtime_nsec()),
            ctime: (metadata.ctime(), metadata.ctime_nsec()),
            inode: metadata.ino(),
        }
    }
}

/// One searchable file.
pub(super) struct Doc {
    pub(super) lines: usize,
    block_tokens: Box<[u32]>,
    /// Its passages' token counts summed (for the average length).
    pub(super) length: u64,
}

impl Doc {
    pub(super) fn new(lines: usize, block_tokens: Vec<u32>) -> Self {
        let block_tokens: Box<[u32]> = block_tokens.into();
        let mut doc = Self {
            lines,
            block_tokens,
            length: 0,
        };
        doc.length = (0..window_count(lines))
            .map(|k| u64::from(window_length(&doc, k)))
            .sum();
        doc
    }
}

struct Entry {
    stamp: Stamp,
    /// None for a file the engine skips (binary, too large, unreadable).
    doc: Option<u32>,
    /// The refresh generation that last found the file.
    seen: bool,
}

/// The index of one directory; see the module documentation.
pub struct DirIndex {
    shards: Vec<Shard>,
    /// By id; None once the file was replaced or removed.
    docs: Vec<Option<Doc>>,
    files: FxHashMap<PathBuf, Entry>,
    /// The searchable files in path order, with their ids.
    order: Vec<(PathBuf, u32)>,
    /// Per id, the position in `order` (the scan's file number).
    rank: Vec<u32>,
    /// Ids replaced or removed since the last full build: their postings
    /// stay, so the index is rebuilt when they outnumber the rest.
    replaced: usize,
    built: bool,
    generation: bool,
}

impl Default for DirIndex {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            docs: Vec::new(),
            files: FxHashMap::default(),
            order: Vec::new(),
            rank: Vec::new(),
            replaced: 0,
            built: false,
            generation: false,
        }
    }
}

impl DirIndex {
    pub fn is_built(&self) -> bool {
        self.built
    }

    /// Brings the index up to date with `root`, re-reading changed files.
    pub fn refresh(&mut self, root: &Path) {
        let found = walk(root);
        if self.replaced > self.files.len().max(1024) {
            *self = Self::default();
        }
        self.generation = !self.generation;
        let mut stale = Vec::new();
        let mut retired = Vec::new();
        for (relative, stamp) in found {
            match self.files.get_mut(&relative) {
                Some(entry) if entry.stamp == stamp => entry.seen = self.generation,
                Some(_) => {
                    let entry = self.files.remove(&relative).expect("just found");
                    retired.push(entry.doc);
                    stale.push((relative, stamp));
                }
                None => stale.push((relative, stamp)),
            }
        }
        let before = self.files.len();
        let generation = self.generation;
        self.files.retain(|_, entry| {
            let seen = entry.seen == generation;
            if !seen {
                retired.push(entry.doc);
            }
            seen
        });
        let changed = !stale.is_empty() || self.files.len() != before || !self.built;
        retired.into_iter().for_each(|doc| self.retire(doc));
        for (relative, stamp, doc) in read_files(root, stale, &mut self.shards, &mut self.docs) {
            let seen = self.generation;
            self.files.insert(relative, Entry { stamp, doc, seen });
        }
        if changed {
            self.order = self
                .files
                .iter()
                .filter_map(|(path, entry)| Some((path.clone(), entry.doc?)))
                .collect();
            self.order.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            self.rank = vec![u32::MAX; self.docs.len()];
            for (position, (_, doc)) in self.order.iter().enumerate() {
                self.rank[*doc as usize] = position as u32;
            }
        }
        self.built = true;
    }

    fn retire(&mut self, doc: Option<u32>) {
        if let Some(doc) = doc {
            self.docs[doc as usize] = None;
            self.replaced += 1;
        }
    }

    /// An estimate of the heap the index holds, for the cache's budget.
    pub fn heap_bytes(&self) -> usize {
        let terms: usize = self
            .shards
            .iter()
            .flat_map(|shard| shard.iter())
            .map(|(term, postings)| term.len() + postings.bytes() + 72)
            .sum();
        let docs: usize = self
            .docs
            .iter()
            .flatten()
            .map(|d| d.block_tokens.len() * 4 + 56)
            .sum();
        let paths: usize = self
            .order
            .iter()
            .map(|(p, _)| 2 * p.as_os_str().len())
            .sum();
        terms + docs + paths + self.files.len() * 80 + self.rank.len() * 4
    }

    pub(super) fn doc(&self, id: u32) -> &Doc {
        self.docs[id as usize]
            .as_ref()
            .expect("every ordered id is a live document")
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock()
}

/// The eligible files under `root` (relative) with their stamps. Files
/// over `MAX_FILE_BYTES` are found too (the walker would stat each file
/// once more to leave them out): they are never read, see [`read_files`].
fn walk(root: &Path) -> Vec<(PathBuf, Stamp)> {
    let found = Mutex::new(Vec::new());
    let mut walker = walker(root);
    walker.max_filesize(None);
    walker.build_parallel().run(|| {
        Box::new(|entry| {
            let Ok(entry) = entry else {
                return WalkState::Continue;
            };
            if entry.file_type().is_some_and(|t| t.is_file()) {
                if let (Ok(metadata), Ok(relative)) =
                    (entry.metadata(), entry.path().strip_prefix(root))
                {
                    lock(&found).push((relative.to_owned(), Stamp::of(&metadata)));
                }
            }
            WalkState::Continue
        })
    });
    found.into_inner()
}

/// The windows the scan makes of `lines` lines (see `FileScan::windows`).
pub(super) fn window_count(lines: usize) -> usize {
    if lines <= PASSAGE_LINES {
        return usize::from(lines > 0);
    }
    (lines - PASSAGE_LINES).div_ceil(PASSAGE_STRIDE) + 1
}

pub(super) fn window_length(doc: &Doc, k: usize) -> u32 {
    doc.block_tokens[k] + doc.block_tokens.get(k + 1).copied().unwrap_or(0)
}

#[path = "index_build.rs"]
mod build;
#[path = "index_query.rs"]
mod query;

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;

//! The built-in engine's index of one directory. Per file it keeps the token
//! count of each block of `PASSAGE_STRIDE` lines and, per term, the blocks
//! the term occurs in (varint-packed, terms interned once per index). A
//! passage is two consecutive blocks, so a question reads only its own
//! words' postings and ranks exactly as the full scan does
//! ([`super::builtin::answer_by_scan`]). A refresh walks the directory with
//! the same rules as the scan and re-reads only the files whose size,
//! mtime, ctime or inode changed.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ignore::WalkState;

use super::builtin::{
    choose, finish, idf, is_binary, query_terms, text_score, walker, Answer, Candidate,
    MAX_FILE_BYTES, NO_MATCH, NO_WORDS, PASSAGE_LINES, PASSAGE_STRIDE, PATH_WEIGHT,
};
use super::postings::{decode_hits, encode, TermBlocks};
use super::tokens::for_each_token;

// A passage is exactly two blocks; the ranking below relies on it.
const _: () = assert!(PASSAGE_LINES == 2 * PASSAGE_STRIDE);

/// What identifies a file's content without reading it. `ctime` cannot be
/// set back by a user, so a rewrite with the same size and mtime is seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
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
struct Doc {
    lines: usize,
    block_tokens: Box<[u32]>,
    /// Interned tokens of the relative path, in order, repeats kept.
    path_terms: Box<[u32]>,
    /// Per term (ascending id): id delta, byte length, then per block the
    /// block delta shifted left (low bit set when a count other than 1
    /// follows) and that count, all LEB128 varints.
    postings: Box<[u8]>,
}

struct Entry {
    stamp: Stamp,
    /// None for a file the engine skips (binary, too large, unreadable).
    doc: Option<Doc>,
}

/// The index of one directory; see the module documentation.
#[derive(Default)]
pub struct DirIndex {
    terms: HashMap<Box<str>, u32>,
    files: BTreeMap<PathBuf, Entry>,
    /// Files replaced or removed since the last full build: their terms
    /// stay interned, so the index is rebuilt when they outnumber the rest.
    replaced: usize,
    built: bool,
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
        let mut kept = BTreeMap::new();
        let mut stale = Vec::new();
        for (relative, stamp) in found {
            match self.files.remove(&relative) {
                Some(entry) if entry.stamp == stamp => {
                    kept.insert(relative, entry);
                }
                Some(_) => {
                    self.replaced += 1;
                    stale.push((relative, stamp));
                }
                None => stale.push((relative, stamp)),
            }
        }
        self.replaced += self.files.len();
        self.files = kept;

        let terms = Mutex::new(std::mem::take(&mut self.terms));
        let work = Mutex::new(stale.into_iter());
        let read = Mutex::new(Vec::new());
        let threads = std::thread::available_parallelism().map_or(2, usize::from);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| loop {
                    let Some((relative, stamp)) = lock(&work).next() else {
                        break;
                    };
                    let doc = read_doc(&root.join(&relative), &relative, &terms);
                    lock(&read).push((relative, Entry { stamp, doc }));
                });
            }
        });
        self.terms = terms.into_inner().unwrap_or_else(|e| e.into_inner());
        self.files
            .extend(read.into_inner().unwrap_or_else(|e| e.into_inner()));
        self.built = true;
    }

    /// An estimate of the heap the index holds, for the cache's budget.
    pub fn heap_bytes(&self) -> usize {
        let terms: usize = self.terms.keys().map(|t| t.len() + 40).sum();
        let files: usize = self
            .files
            .iter()
            .map(|(path, entry)| {
                let doc = entry.doc.as_ref().map_or(0, |d| {
                    d.block_tokens.len() * 4 + d.path_terms.len() * 4 + d.postings.len() + 56
                });
                path.as_os_str().len() + 96 + doc
            })
            .sum();
        terms + files
    }

    /// Answers `question` (and `context`) from the indexed files, reading
    /// only the chosen passages from `root`.
    pub fn answer(&self, root: &Path, question: &str, context: Option<&str>) -> Answer {
        let docs: Vec<(&PathBuf, &Doc)> = self
            .files
            .iter()
            .filter_map(|(path, entry)| entry.doc.as_ref().map(|doc| (path, doc)))
            .collect();
        let absolute: Vec<PathBuf> = docs.iter().map(|(path, _)| root.join(path)).collect();
        let paths: Vec<&Path> = absolute.iter().map(PathBuf::as_path).collect();
        let query = query_terms(question, context);
        if query.is_empty() {
            return finish(root, &paths, Vec::new(), NO_WORDS);
        }
        let width = query.len();
        // Interned id -> position in the query, sorted by id.
        let mut wanted: Vec<(u32, u16)> = query
            .iter()
            .filter_map(|(word, q)| self.terms.get(word.as_str()).map(|id| (*id, *q)))
            .collect();
        wanted.sort_unstable();

        let mut total_passages = 0usize;
        let mut total_length = 0u64;
        let mut document_frequency = vec![0u32; width];
        // (file, window, length), with `width` frequencies each in `frequencies`.
        let mut passages: Vec<(usize, usize, u32)> = Vec::new();
        let mut frequencies: Vec<u32> = Vec::new();
        let mut hits: Vec<(u32, u16, u32)> = Vec::new();
        let mut windows: Vec<usize> = Vec::new();
        for (file, (_, doc)) in docs.iter().enumerate() {
            let count = window_count(doc.lines);
            total_passages += count;
            total_length += (0..count)
                .map(|k| u64::from(window_length(doc, k)))
                .sum::<u64>();
            hits.clear();
            decode_hits(&doc.postings, &wanted, &mut hits);
            if hits.is_empty() {
                continue;
            }
            hits.sort_unstable();
            windows.clear();
            for (block, _, _) in &hits {
                let block = *block as usize;
                windows.extend(block.checked_sub(1));
                windows.push(block);
            }
            windows.sort_unstable();
            windows.dedup();
            for &k in windows.iter().filter(|k| **k < count) {
                let first = hits.partition_point(|h| (h.0 as usize) < k);
                let last = hits.partition_point(|h| (h.0 as usize) <= k + 1);
                let offset = frequencies.len();
                frequencies.resize(offset + width, 0);
                for (_, q, n) in &hits[first..last] {
                    frequencies[offset + usize::from(*q)] += n;
                }
                for (term, f) in frequencies[offset..].iter().enumerate() {
                    if *f > 0 {
                        document_frequency[term] += 1;
                    }
                }
                passages.push((file, k, window_length(doc, k)));
            }
        }
        let n = total_passages.max(1) as f64;
        let average_length = (total_length as f64 / n).max(1.0);
        let idf: Vec<f64> = document_frequency.iter().map(|df| idf(n, *df)).collect();
        let position = |id: u32| wanted.binary_search_by_key(&id, |w| w.0).ok();

        let candidates = passages
            .iter()
            .enumerate()
            .map(|(i, (file, k, length))| {
                let doc = docs[*file].1;
                let tf = &frequencies[i * width..(i + 1) * width];
                let path_score: f64 = doc
                    .path_terms
                    .iter()
                    .filter_map(|id| position(*id))
                    .map(|at| idf[usize::from(wanted[at].1)] * PATH_WEIGHT)
                    .sum();
                let start = k * PASSAGE_STRIDE;
                Candidate {
                    file: *file,
                    start,
                    end: (start + PASSAGE_LINES).min(doc.lines),
                    score: text_score(tf, &idf, *length, average_length) + path_score,
                }
            })
            .collect();
        finish(root, &paths, choose(candidates), NO_MATCH)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The eligible files under `root` (relative) with their stamps.
fn walk(root: &Path) -> Vec<(PathBuf, Stamp)> {
    let found = Mutex::new(Vec::new());
    walker(root).build_parallel().run(|| {
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
    found.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// The windows the scan makes of `lines` lines (see `FileScan::windows`).
fn window_count(lines: usize) -> usize {
    if lines <= PASSAGE_LINES {
        return usize::from(lines > 0);
    }
    (lines - PASSAGE_LINES).div_ceil(PASSAGE_STRIDE) + 1
}

fn window_length(doc: &Doc, k: usize) -> u32 {
    doc.block_tokens[k] + doc.block_tokens.get(k + 1).copied().unwrap_or(0)
}

fn read_doc(path: &Path, relative: &Path, terms: &Mutex<HashMap<Box<str>, u32>>) -> Option<Doc> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.len() as u64 > MAX_FILE_BYTES || is_binary(&bytes) {
        return None;
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut lines = 0usize;
    let mut block_tokens: Vec<u32> = Vec::new();
    let mut local: HashMap<String, Vec<(u32, u32)>> = HashMap::new();
    for (number, line) in text.lines().enumerate() {
        lines += 1;
        let block = number / PASSAGE_STRIDE;
        if block == block_tokens.len() {
            block_tokens.push(0);
        }
        let block_id = block as u32;
        for_each_token(line, |token| {
            block_tokens[block] += 1;
            match local.get_mut(token) {
                Some(blocks) => match blocks.last_mut() {
                    Some((last, count)) if *last == block_id => *count += 1,
                    _ => blocks.push((block_id, 1)),
                },
                None => {
                    local.insert(token.to_owned(), vec![(block_id, 1)]);
                }
            }
        });
    }
    let mut path_words = Vec::new();
    for_each_token(&relative.to_string_lossy(), |t| {
        path_words.push(t.to_owned())
    });

    let (mut postings, path_terms): (Vec<TermBlocks>, Vec<u32>) = {
        let mut terms = lock(terms);
        let mut intern = |word: &str| -> u32 {
            if let Some(id) = terms.get(word) {
                return *id;
            }
            let id = terms.len() as u32;
            terms.insert(word.into(), id);
            id
        };
        let postings = local
            .into_iter()
            .map(|(word, blocks)| (intern(&word), blocks))
            .collect();
        let path_terms = path_words.iter().map(|w| intern(w)).collect();
        (postings, path_terms)
    };
    postings.sort_unstable_by_key(|(id, _)| *id);
    let packed = encode(postings);
    Some(Doc {
        lines,
        block_tokens: block_tokens.into(),
        path_terms: path_terms.into(),
        postings: packed.into(),
    })
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;

//! Reading files into the index, on all cores and without a shared lock:
//! files are taken in chunks; each chunk is first tokenized in parallel
//! (one file per task, its distinct words and their blocks), then merged in
//! parallel by term shard (each thread owns some shards' dictionaries and
//! postings and appends the chunk's files in id order), so postings stay
//! sorted by file and no term is touched by two threads.

use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use rustc_hash::{FxBuildHasher, FxHashMap};

use super::super::builtin::{is_binary, MAX_FILE_BYTES, PASSAGE_STRIDE};
use super::super::postings::Postings;
use super::super::tokens::Tokenizer;
use super::{Doc, Stamp};

/// Term shards, each merged by one thread at a time.
pub(super) const SHARDS: usize = 16;
/// Files tokenized before they are merged: bounds the memory in flight.
pub(super) const CHUNK: usize = 512;

/// One shard of the dictionary: its terms' postings.
pub(super) type Shard = FxHashMap<Box<str>, Postings>;

/// The shard a word belongs to (bits the shard's own table does not use).
pub(super) fn shard_of(word: &str) -> usize {
    (FxBuildHasher.hash_one(word) >> 32) as usize % SHARDS
}

/// A tokenized file: its distinct words (with their shard and the end of
/// their blocks in `blocks`) and the (block, count) pairs of each.
struct FileTerms {
    doc: Option<Doc>,
    words: Vec<(Box<str>, u8, u32)>,
    blocks: Vec<(u32, u32)>,
}

/// What one thread reuses from file to file.
#[derive(Default)]
struct Scratch {
    tokenizer: Tokenizer,
    local: FxHashMap<Box<str>, u32>,
    /// Per local word: its pairs, in block order.
    pairs: Vec<Vec<(u32, u32)>>,
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads `files` (relative to `root`) into `shards` and `docs`; returns
/// each file with its new doc id (None for a file the engine skips).
pub(super) fn read_files(
    root: &Path,
    files: Vec<(PathBuf, Stamp)>,
    shards: &mut [Shard],
    docs: &mut Vec<Option<Doc>>,
) -> Vec<(PathBuf, Stamp, Option<u32>)> {
    let threads = threads();
    let mut read = Vec::with_capacity(files.len());
    for chunk in files.chunks(CHUNK) {
        let next = AtomicUsize::new(0);
        let done = Mutex::new(Vec::with_capacity(chunk.len()));
        std::thread::scope(|scope| {
            for _ in 0..threads.min(chunk.len()) {
                scope.spawn(|| {
                    let mut scratch = Scratch::default();
                    let mut mine = Vec::new();
                    loop {
                        let at = next.fetch_add(1, Ordering::Relaxed);
                        let Some((relative, _)) = chunk.get(at) else {
                            break;
                        };
                        mine.push((at, tokenize_file(&root.join(relative), &mut scratch)));
                    }
                    lock(&done).append(&mut mine);
                });
            }
        });
        let mut tokenized = done.into_inner().unwrap_or_else(|e| e.into_inner());
        tokenized.sort_unstable_by_key(|(at, _)| *at);

        // Ids in chunk order, so every term's postings stay ascending.
        let mut ids = Vec::with_capacity(chunk.len());
        for (_, terms) in &mut tokenized {
            let id = terms.as_mut().and_then(|t| t.doc.take()).map(|doc| {
                docs.push(Some(doc));
                (docs.len() - 1) as u32
            });
            ids.push(id);
        }
        let files: Vec<(u32, &FileTerms)> = tokenized
            .iter()
            .zip(&ids)
            .filter_map(|((_, terms), id)| Some(((*id)?, terms.as_ref()?)))
            .collect();
        let per_thread = SHARDS.div_ceil(threads);
        std::thread::scope(|scope| {
            for (group, owned) in shards.chunks_mut(per_thread).enumerate() {
                let files = &files;
                scope.spawn(move || merge(files, group * per_thread, owned));
            }
        });
        read.extend(
            chunk
                .iter()
                .zip(ids)
                .map(|((relative, stamp), id)| (relative.clone(), *stamp, id)),
        );
    }
    for shard in shards.iter_mut() {
        shard.values_mut().for_each(Postings::shrink);
    }
    read
}

/// Appends `files` to the shards `first..first + owned.len()`.
fn merge(files: &[(u32, &FileTerms)], first: usize, owned: &mut [Shard]) {
    for (doc, terms) in files {
        let mut start = 0;
        for (word, shard, end) in &terms.words {
            let blocks = &terms.blocks[start as usize..*end as usize];
            start = *end;
            let Some(shard) = usize::from(*shard)
                .checked_sub(first)
                .and_then(|s| owned.get_mut(s))
            else {
                continue;
            };
            match shard.get_mut(word) {
                Some(postings) => postings.push(*doc, blocks),
                None => {
                    let mut postings = Postings::default();
                    postings.push(*doc, blocks);
                    shard.insert(word.clone(), postings);
                }
            }
        }
    }
}

/// Reads and tokenizes one file; None for a file the engine skips.
fn tokenize_file(path: &Path, scratch: &mut Scratch) -> Option<FileTerms> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.len() as u64 > MAX_FILE_BYTES || is_binary(&bytes) {
        return None;
    }
    let text = String::from_utf8_lossy(&bytes);
    let Scratch {
        tokenizer,
        local,
        pairs,
    } = scratch;
    let mut lines = 0usize;
    let mut block_tokens: Vec<u32> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        lines += 1;
        let block = number / PASSAGE_STRIDE;
        if block == block_tokens.len() {
            block_tokens.push(0);
        }
        let block_id = block as u32;
        tokenizer.each(line, |token| {
            block_tokens[block] += 1;
            let word = match local.get(token) {
                Some(word) => *word as usize,
                None => {
                    let word = local.len();
                    local.insert(token.into(), word as u32);
                    if pairs.len() == word {
                        pairs.push(Vec::new());
                    }
                    word
                }
            };
            let blocks = &mut pairs[word];
            match blocks.last_mut() {
                Some((last, count)) if *last == block_id => *count += 1,
                _ => blocks.push((block_id, 1)),
            }
        });
    }
    let mut words = Vec::with_capacity(local.len());
    let mut blocks = Vec::new();
    for (word, local) in local.drain() {
        let pairs = &mut pairs[local as usize];
        blocks.extend_from_slice(pairs);
        pairs.clear();
        let shard = shard_of(&word) as u8;
        words.push((word, shard, blocks.len() as u32));
    }
    let doc = Doc::new(lines, block_tokens);
    Some(FileTerms {
        doc: Some(doc),
        words,
        blocks,
    })
}

//! Reading files into the index, on all cores and without a shared lock:
//! files are taken in chunks; each chunk is first tokenized in parallel
//! (one file per task, its distinct words and their blocks), then merged in
//! parallel by term shard (each thread owns some shards' dictionaries and
//! postings and appends the chunk's files in id order), so postings stay
//! sorted by file and no term is touched by two threads.

use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use hashbrown::HashTable;
use parking_lot::Mutex;
use rustc_hash::FxBuildHasher;

use super::super::builtin::{is_binary, MAX_FILE_BYTES, PASSAGE_STRIDE};
use super::super::postings::Postings;
use super::super::tokens::Tokenizer;
use super::{Doc, Stamp};

/// Term shards, each merged by one thread at a time.
pub(super) const SHARDS: usize = 16;
/// Files tokenized before they are merged: bounds the memory in flight.
pub(super) const CHUNK: usize = 512;

/// One shard of the dictionary: its terms and their postings, found by
/// the word's hash ([`word_hash`]), computed once per word and file.
pub(super) type Shard = HashTable<(Box<str>, Postings)>;

pub(super) fn word_hash(word: &str) -> u64 {
    FxBuildHasher.hash_one(word)
}

/// The shard of a word's hash (bits a shard's own table does not use).
pub(super) fn shard_of(hash: u64) -> usize {
    (hash >> 32) as usize % SHARDS
}

/// The postings of `word` in `shards`, if it occurs anywhere.
pub(super) fn find<'a>(shards: &'a [Shard], word: &str) -> Option<&'a Postings> {
    let hash = word_hash(word);
    shards[shard_of(hash)]
        .find(hash, |(w, _)| **w == *word)
        .map(|(_, postings)| postings)
}

/// A file's distinct words: word `i` is `text[ends[i - 1]..ends[i]]`, has
/// hash `hashes[i]` and the (block, count) pairs `blocks[block_ends[i -
/// 1]..block_ends[i]]`.
#[derive(Default)]
struct Words {
    text: String,
    ends: Vec<u32>,
    hashes: Vec<u64>,
    block_ends: Vec<u32>,
    blocks: Vec<(u32, u32)>,
}

impl Words {
    fn word(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    fn blocks(&self, i: usize) -> &[(u32, u32)] {
        let start = if i == 0 {
            0
        } else {
            self.block_ends[i - 1] as usize
        };
        &self.blocks[start..self.block_ends[i] as usize]
    }
}

/// A tokenized file.
struct FileTerms {
    doc: Option<Doc>,
    words: Words,
}

/// What one thread reuses from file to file.
#[derive(Default)]
struct Scratch {
    tokenizer: Tokenizer,
    /// The file's words so far (numbers into `words`), by hash.
    table: HashTable<u32>,
    words: Words,
    /// Per word: its pairs, in block order.
    pairs: Vec<Vec<(u32, u32)>>,
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

fn lock<T>(mutex: &Mutex<T>) -> parking_lot::MutexGuard<'_, T> {
    mutex.lock()
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
                        let Some((relative, stamp)) = chunk.get(at) else {
                            break;
                        };
                        let terms = (stamp.size <= MAX_FILE_BYTES)
                            .then(|| tokenize_file(&root.join(relative), &mut scratch))
                            .flatten();
                        mine.push((at, terms));
                    }
                    lock(&done).append(&mut mine);
                });
            }
        });
        let mut tokenized = done.into_inner();
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
        shard.iter_mut().for_each(|(_, postings)| postings.shrink());
    }
    read
}

/// Appends `files` to the shards `first..first + owned.len()`.
fn merge(files: &[(u32, &FileTerms)], first: usize, owned: &mut [Shard]) {
    for (doc, terms) in files {
        let words = &terms.words;
        for (i, hash) in words.hashes.iter().enumerate() {
            let Some(shard) = shard_of(*hash)
                .checked_sub(first)
                .and_then(|s| owned.get_mut(s))
            else {
                continue;
            };
            let word = words.word(i);
            let blocks = words.blocks(i);
            match shard.find_mut(*hash, |(w, _)| **w == *word) {
                Some((_, postings)) => postings.push(*doc, blocks),
                None => {
                    let mut postings = Postings::default();
                    postings.push(*doc, blocks);
                    shard.insert_unique(*hash, (word.into(), postings), |(w, _)| word_hash(w));
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
        table,
        words,
        pairs,
    } = scratch;
    table.clear();
    words.text.clear();
    words.ends.clear();
    words.hashes.clear();
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
            let hash = word_hash(token);
            let found = table.find(hash, |i| words.word(*i as usize) == token);
            let i = match found {
                Some(i) => *i as usize,
                None => {
                    let i = words.hashes.len();
                    words.text.push_str(token);
                    words.ends.push(words.text.len() as u32);
                    words.hashes.push(hash);
                    let hashes = &words.hashes;
                    table.insert_unique(hash, i as u32, |i| hashes[*i as usize]);
                    if pairs.len() == i {
                        pairs.push(Vec::new());
                    }
                    i
                }
            };
            let blocks = &mut pairs[i];
            match blocks.last_mut() {
                Some((last, count)) if *last == block_id => *count += 1,
                _ => blocks.push((block_id, 1)),
            }
        });
    }
    let count = words.hashes.len();
    let mut blocks = Vec::with_capacity(pairs[..count].iter().map(Vec::len).sum());
    let mut block_ends = Vec::with_capacity(count);
    for pairs in &mut pairs[..count] {
        blocks.extend_from_slice(pairs);
        block_ends.push(blocks.len() as u32);
        pairs.clear();
    }
    Some(FileTerms {
        doc: Some(Doc::new(lines, block_tokens)),
        words: Words {
            text: words.text.clone(),
            ends: words.ends.clone(),
            hashes: words.hashes.clone(),
            block_ends,
            blocks,
        },
    })
}

//! The built-in engine: no network, no model. It walks the workspace
//! (respecting `.gitignore`, skipping binary files, files over 1 MiB and
//! every symlink), scores overlapping passages of lines with BM25 over
//! code-aware tokens, and answers with the best passages.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ignore::{WalkBuilder, WalkState};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::tokens::{for_each_token, tokenize};

pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
pub(super) const PASSAGE_LINES: usize = 12;
pub(super) const PASSAGE_STRIDE: usize = 6;
const MAX_MATCHES: usize = 5;
const MAX_QUERY_TERMS: usize = 64;
const BM25_K1: f64 = 1.2;
const BM25_B: f64 = 0.75;
/// Weight of a query term found in a file's path, relative to its IDF.
pub(super) const PATH_WEIGHT: f64 = 0.5;

/// One passage of an answer. Fields in alphabetical order: the order a
/// stored job's JSON has always had (see `jobs::answer`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Passage {
    pub end_line: usize,
    pub path: String,
    pub score: f64,
    pub snippet: String,
    pub start_line: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    pub output: String,
    pub matches: Vec<Passage>,
    pub files_scanned: usize,
}

/// What one file contributes: per line, its token count and query hits.
struct FileScan {
    path: PathBuf,
    line_tokens: Vec<u32>,
    /// (line, term, count) for every line with a query term.
    hits: Vec<(u32, u16, u16)>,
    path_terms: Vec<u16>,
}

impl FileScan {
    /// Overlapping passages covering every line; none for an empty file.
    fn windows(&self) -> Vec<(usize, usize)> {
        let lines = self.line_tokens.len();
        let mut windows = Vec::new();
        let mut start = 0;
        while start < lines {
            let end = (start + PASSAGE_LINES).min(lines);
            windows.push((start, end));
            if end == lines {
                break;
            }
            start += PASSAGE_STRIDE;
        }
        windows
    }
}

pub(super) fn is_binary(bytes: &[u8]) -> bool {
    bytes.iter().take(8192).any(|b| *b == 0)
}

fn scan_file(path: &Path, terms: &HashMap<String, u16>) -> Option<FileScan> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.len() as u64 > MAX_FILE_BYTES || is_binary(&bytes) {
        return None;
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut line_tokens = Vec::new();
    let mut hits = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let mut count = 0u32;
        let mut line_hits: HashMap<u16, u16> = HashMap::new();
        for_each_token(line, |token| {
            count += 1;
            if let Some(term) = terms.get(token) {
                *line_hits.entry(*term).or_default() += 1;
            }
        });
        line_tokens.push(count);
        hits.extend(
            line_hits
                .into_iter()
                .map(|(term, n)| (number as u32, term, n)),
        );
    }
    Some(FileScan {
        path: path.to_owned(),
        line_tokens,
        hits,
        path_terms: Vec::new(),
    })
}

/// The files the engine reads under `root`: `.gitignore` respected, hidden
/// files and files over `MAX_FILE_BYTES` skipped, symlinks never followed.
pub(super) fn walker(root: &Path) -> WalkBuilder {
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let mut builder = WalkBuilder::new(root);
    builder
        .follow_links(false)
        .require_git(false)
        .max_filesize(Some(MAX_FILE_BYTES))
        .threads(threads);
    builder
}

/// Walks `root` and scans every eligible file, on all cores.
fn scan_tree(root: &Path, terms: &HashMap<String, u16>) -> Vec<FileScan> {
    let scans = Mutex::new(Vec::new());
    walker(root).build_parallel().run(|| {
        Box::new(|entry| {
            let Ok(entry) = entry else {
                return WalkState::Continue;
            };
            if entry.file_type().is_some_and(|t| t.is_file()) {
                if let Some(mut scan) = scan_file(entry.path(), terms) {
                    let relative = scan
                        .path
                        .strip_prefix(root)
                        .unwrap_or(&scan.path)
                        .to_string_lossy();
                    for_each_token(&relative, |token| {
                        if let Some(term) = terms.get(token) {
                            scan.path_terms.push(*term);
                        }
                    });
                    scans.lock().push(scan);
                }
            }
            WalkState::Continue
        })
    });
    let mut scans = scans.into_inner();
    scans.sort_by(|a, b| a.path.cmp(&b.path));
    scans
}

/// A scored passage: lines `start..end` of the `file`-th file in path order.
pub(super) struct Candidate {
    pub file: usize,
    pub start: usize,
    pub end: usize,
    pub score: f64,
}

/// The question's (and context's) distinct words, in order, at most
/// `MAX_QUERY_TERMS`, each numbered by its position.
pub(super) fn query_terms(question: &str, context: Option<&str>) -> HashMap<String, u16> {
    let mut terms: HashMap<String, u16> = HashMap::new();
    let words = tokenize(question)
        .into_iter()
        .chain(context.map(tokenize).unwrap_or_default());
    for word in words {
        let next = terms.len() as u16;
        if terms.len() < MAX_QUERY_TERMS {
            terms.entry(word).or_insert(next);
        }
    }
    terms
}

/// BM25's inverse document frequency of a term found in `df` of `n` passages.
pub(super) fn idf(n: f64, df: u32) -> f64 {
    (1.0 + (n - f64::from(df) + 0.5) / (f64::from(df) + 0.5)).ln()
}

/// A passage's BM25 score from its term frequencies (in query order).
pub(super) fn text_score(
    frequencies: &[u32],
    idf: &[f64],
    length: u32,
    average_length: f64,
) -> f64 {
    let norm = BM25_K1 * (1.0 - BM25_B + BM25_B * f64::from(length) / average_length);
    frequencies
        .iter()
        .zip(idf)
        .filter(|(tf, _)| **tf > 0)
        .map(|(tf, idf)| idf * f64::from(*tf) * (BM25_K1 + 1.0) / (f64::from(*tf) + norm))
        .sum()
}

/// Answers `question` (and `context`) by reading every file under `root`:
/// the reference the index ([`super::index`]) must agree with.
pub fn answer_by_scan(root: &Path, question: &str, context: Option<&str>) -> Answer {
    let terms = query_terms(question, context);
    let scans = scan_tree(root, &terms);
    if terms.is_empty() {
        let paths: Vec<&Path> = scans.iter().map(|s| s.path.as_path()).collect();
        return finish(root, &paths, Vec::new(), NO_WORDS);
    }

    // Term frequencies per passage, document frequencies per term.
    let mut passages: Vec<(usize, usize, usize, Vec<u32>, u32)> = Vec::new();
    let mut total_passages = 0usize;
    let mut total_length = 0u64;
    let mut document_frequency = vec![0u32; terms.len()];
    for (file, scan) in scans.iter().enumerate() {
        let mut hits_by_line: HashMap<u32, Vec<(u16, u16)>> = HashMap::new();
        for (line, term, count) in &scan.hits {
            hits_by_line.entry(*line).or_default().push((*term, *count));
        }
        for (start, end) in scan.windows() {
            total_passages += 1;
            let length: u32 = scan.line_tokens[start..end].iter().sum();
            total_length += u64::from(length);
            let mut frequencies = vec![0u32; terms.len()];
            for line in start..end {
                for (term, count) in hits_by_line.get(&(line as u32)).into_iter().flatten() {
                    frequencies[usize::from(*term)] += u32::from(*count);
                }
            }
            if frequencies.iter().any(|f| *f > 0) {
                for (term, frequency) in frequencies.iter().enumerate() {
                    if *frequency > 0 {
                        document_frequency[term] += 1;
                    }
                }
                passages.push((file, start, end, frequencies, length));
            }
        }
    }
    let n = total_passages.max(1) as f64;
    let average_length = (total_length as f64 / n).max(1.0);
    let idf: Vec<f64> = document_frequency.iter().map(|df| idf(n, *df)).collect();

    let candidates: Vec<Candidate> = passages
        .into_iter()
        .map(|(file, start, end, frequencies, length)| {
            let text_score = text_score(&frequencies, &idf, length, average_length);
            let path_score: f64 = scans[file]
                .path_terms
                .iter()
                .map(|t| idf[usize::from(*t)] * PATH_WEIGHT)
                .sum();
            Candidate {
                file,
                start,
                end,
                score: text_score + path_score,
            }
        })
        .collect();
    let chosen = choose(candidates);
    // The question is not echoed: answers stay small whatever was asked.
    let paths: Vec<&Path> = scans.iter().map(|s| s.path.as_path()).collect();
    finish(root, &paths, chosen, NO_MATCH)
}

pub(super) const NO_MATCH: &str = "No passage in this workspace matches the question's words.";
pub(super) const NO_WORDS: &str = "The question has no words to search for.";

/// A chosen passage overlaps at most its two neighbours, so the answer is
/// always among the first `CHOICES` candidates: only those are sorted.
pub(super) const CHOICES: usize = 3 * MAX_MATCHES;

/// The order of candidates: best score first, then earlier file, then
/// earlier passage (a total order: no two candidates tie).
pub(super) fn best_first(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    b.score
        .total_cmp(&a.score)
        .then(a.file.cmp(&b.file))
        .then(a.start.cmp(&b.start))
}

/// The best `MAX_MATCHES` passages, no two overlapping in one file; ties
/// go to the earlier file, then the earlier passage.
pub(super) fn choose(mut candidates: Vec<Candidate>) -> Vec<Candidate> {
    if candidates.len() > CHOICES {
        candidates.select_nth_unstable_by(CHOICES - 1, best_first);
        candidates.truncate(CHOICES);
    }
    candidates.sort_by(best_first);

    let mut chosen: Vec<Candidate> = Vec::new();
    for candidate in candidates {
        let overlaps = chosen.iter().any(|c| {
            c.file == candidate.file && c.start < candidate.end && candidate.start < c.end
        });
        if !overlaps {
            chosen.push(candidate);
        }
        if chosen.len() == MAX_MATCHES {
            break;
        }
    }
    chosen
}

/// Reads the chosen passages from `files` (every file searched, in path
/// order) and writes the answer.
pub(super) fn finish(root: &Path, files: &[&Path], chosen: Vec<Candidate>, empty: &str) -> Answer {
    let matches: Vec<Passage> = chosen
        .into_iter()
        .filter_map(|c| {
            let path = files[c.file];
            let text = std::fs::read(path).ok()?;
            let text = String::from_utf8_lossy(&text);
            let lines: Vec<&str> = text.lines().skip(c.start).take(c.end - c.start).collect();
            let first = lines.iter().position(|l| !l.trim().is_empty()).unwrap_or(0);
            let last = lines
                .iter()
                .rposition(|l| !l.trim().is_empty())
                .map_or(first, |i| i + 1);
            Some(Passage {
                path: path
                    .strip_prefix(root)
                    .unwrap_or(path)
                    .to_string_lossy()
                    .replace('\\', "/"),
                start_line: c.start + first + 1,
                end_line: c.start + last.max(first + 1),
                score: (c.score * 1000.0).round() / 1000.0,
                snippet: lines[first..last.max(first)].join("\n"),
            })
        })
        .collect();
    Answer {
        output: markdown(&matches, files.len(), empty),
        matches,
        files_scanned: files.len(),
    }
}

fn markdown(matches: &[Passage], files_scanned: usize, empty: &str) -> String {
    if matches.is_empty() {
        return format!("{empty}\n\n{files_scanned} files were searched.\n");
    }
    let mut out = format!("The most relevant passages among {files_scanned} files searched:\n");
    for (rank, passage) in matches.iter().enumerate() {
        let longest_ticks = passage
            .snippet
            .split(|c| c != '`')
            .map(str::len)
            .max()
            .unwrap_or(0);
        let fence = "`".repeat(longest_ticks.max(2) + 1);
        let language = Path::new(&passage.path)
            .extension()
            .and_then(|e| e.to_str())
            .filter(|e| e.chars().all(|c| c.is_ascii_alphanumeric()))
            .unwrap_or("");
        out.push_str(&format!(
            "\n### {}. `{}:{}-{}` (score {:.2})\n\n{fence}{language}\n{}\n{fence}\n",
            rank + 1,
            passage.path,
            passage.start_line,
            passage.end_line,
            passage.score,
            passage.snippet
        ));
    }
    out
}

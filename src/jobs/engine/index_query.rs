//! Answering a question from the index in two passes over the question's
//! postings: the first counts, per term, the passages holding it (for the
//! IDF), the second scores each passage holding a term and keeps only the
//! best few, so memory does not grow with the number of matches.

use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};

use super::super::builtin::{
    best_first, choose, finish, idf, query_terms, text_score, Answer, Candidate, CHOICES, NO_MATCH,
    NO_WORDS, PASSAGE_LINES, PASSAGE_STRIDE, PATH_WEIGHT,
};
use super::super::postings::Cursor;
use super::super::tokens::for_each_token;
use super::build::find;
use super::{window_count, window_length, DirIndex, Doc};

/// A candidate ordered best first, so a max-heap's top is the worst kept.
struct Ranked(Candidate);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        best_first(&self.0, &other.0).is_eq()
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        best_first(&self.0, &other.0)
    }
}

impl DirIndex {
    /// Answers `question` (and `context`) from the indexed files, reading
    /// only the chosen passages from `root`.
    pub fn answer(&self, root: &Path, question: &str, context: Option<&str>) -> Answer {
        let absolute: Vec<PathBuf> = self.order.iter().map(|(p, _)| root.join(p)).collect();
        let paths: Vec<&Path> = absolute.iter().map(PathBuf::as_path).collect();
        let query = query_terms(question, context);
        if query.is_empty() {
            return finish(root, &paths, Vec::new(), NO_WORDS);
        }
        let (mut total_passages, mut total_length) = (0usize, 0u64);
        for (_, id) in &self.order {
            let doc = self.doc(*id);
            total_passages += window_count(doc.lines);
            total_length += doc.length;
        }
        let width = query.len();
        let mut document_frequency = vec![0u32; width];
        self.each_passage(&query, |_, _, _, frequencies| {
            for (term, f) in frequencies.iter().enumerate() {
                if *f > 0 {
                    document_frequency[term] += 1;
                }
            }
        });
        let n = total_passages.max(1) as f64;
        let average_length = (total_length as f64 / n).max(1.0);
        let idf: Vec<f64> = document_frequency.iter().map(|df| idf(n, *df)).collect();

        // Half a term's IDF for each time the file's path holds it.
        let mut path_score = (u32::MAX, 0.0);
        let mut best: BinaryHeap<Ranked> = BinaryHeap::with_capacity(CHOICES + 1);
        self.each_passage(&query, |id, doc, k, frequencies| {
            let file = self.rank[id as usize] as usize;
            if path_score.0 != id {
                let mut score = 0.0;
                for_each_token(&self.order[file].0.to_string_lossy(), |token| {
                    if let Some(q) = query.get(token) {
                        score += idf[usize::from(*q)] * PATH_WEIGHT;
                    }
                });
                path_score = (id, score);
            }
            let start = k * PASSAGE_STRIDE;
            let length = window_length(doc, k);
            best.push(Ranked(Candidate {
                file,
                start,
                end: (start + PASSAGE_LINES).min(doc.lines),
                score: text_score(frequencies, &idf, length, average_length) + path_score.1,
            }));
            if best.len() > CHOICES {
                best.pop();
            }
        });
        let candidates = best.into_iter().map(|r| r.0).collect();
        finish(root, &paths, choose(candidates), NO_MATCH)
    }

    /// Calls `passage` with each live file's passages that hold a query
    /// term (id, file, window, term frequencies in query order), files in
    /// id order.
    fn each_passage(
        &self,
        query: &std::collections::HashMap<String, u16>,
        mut passage: impl FnMut(u32, &Doc, usize, &[u32]),
    ) {
        let mut cursors: Vec<(Cursor<'_>, u16)> = query
            .iter()
            .filter_map(|(word, q)| {
                let postings = find(&self.shards, word)?;
                Some((postings.cursor(), *q))
            })
            .collect();
        let mut hits: Vec<(u32, u16, u32)> = Vec::new();
        let mut windows: Vec<usize> = Vec::new();
        let mut frequencies = vec![0u32; query.len()];
        while let Some(id) = cursors.iter().filter_map(|(c, _)| c.doc()).min() {
            hits.clear();
            for (cursor, q) in cursors.iter_mut().filter(|(c, _)| c.doc() == Some(id)) {
                cursor.take_blocks(*q, &mut hits);
            }
            let Some(doc) = self.docs[id as usize].as_ref() else {
                continue;
            };
            let count = window_count(doc.lines);
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
                frequencies.fill(0);
                for (_, q, n) in &hits[first..last] {
                    frequencies[usize::from(*q)] += n;
                }
                passage(id, doc, k, &frequencies);
            }
        }
    }
}

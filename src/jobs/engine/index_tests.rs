//! The index must rank exactly as the scan: every ranking case runs
//! against both, and the answers (passages, scores, output) are compared.

use std::path::Path;

use super::super::builtin::{answer_by_scan, Answer};
use super::DirIndex;

const WORDS: &[&str] = &[
    "request", "handler", "config", "parse", "buffer", "stream", "client", "server", "token",
    "session", "router", "cache", "queue", "worker", "index", "record", "schema", "value",
];

/// Files of 0 to 40 lines (every window shape), some blank lines, a few
/// rare words, path words that match questions, a git-ignored file, a
/// binary file and a nested directory.
fn generate(root: &Path, files: usize, seed: usize) {
    for n in 0..files {
        let dir = root.join(format!("{}_{:02}", WORDS[(n + seed) % 7], n % 9));
        std::fs::create_dir_all(&dir).unwrap();
        let mut text = String::new();
        for line in 0..((n * 7 + seed) % 41) {
            if (n + line) % 5 == 0 {
                text.push('\n');
                continue;
            }
            let a = WORDS[(n * 7 + line + seed) % WORDS.len()];
            let b = WORDS[(n * 13 + line * 3) % WORDS.len()];
            text.push_str(&format!(
                "let {a}_{b} = {a}Builder::new().with_{b}({n}); // {b}\n"
            ));
            if (n * line + seed) % 97 == 3 {
                text.push_str(
                    "fn rotate_session_ledger(ledger: &mut Ledger) { ledger.rotate() }\n",
                );
            }
        }
        std::fs::write(dir.join(format!("{}_{n}.rs", WORDS[n % WORDS.len()])), text).unwrap();
    }
    std::fs::write(root.join(".gitignore"), "ignored.txt\n").unwrap();
    std::fs::write(
        root.join("ignored.txt"),
        "session ledger rotate ".repeat(50),
    )
    .unwrap();
    std::fs::write(root.join("blob.bin"), b"session\0ledger").unwrap();
}

const QUESTIONS: &[(&str, Option<&str>)] = &[
    ("Where is the session ledger rotated?", None),
    ("How does the request handler parse the config?", None),
    ("queue worker", Some("the cache index record schema")),
    ("stream buffer client server token", None),
    ("What is a zebra?", None),
    ("the and of", None),
];

fn assert_same(index: &DirIndex, root: &Path) {
    for (question, context) in QUESTIONS {
        let scanned = answer_by_scan(root, question, *context);
        let indexed = index.answer(root, question, *context);
        assert_same_answer(&scanned, &indexed, question);
    }
}

fn assert_same_answer(scanned: &Answer, indexed: &Answer, question: &str) {
    assert_eq!(scanned.files_scanned, indexed.files_scanned, "{question}");
    assert_eq!(scanned.matches, indexed.matches, "{question}");
    assert_eq!(scanned.output, indexed.output, "{question}");
}

#[test]
fn the_index_ranks_every_question_exactly_as_the_full_scan() {
    for seed in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), 300, seed);
        let mut index = DirIndex::default();
        index.refresh(dir.path());
        let answer = index.answer(dir.path(), QUESTIONS[0].0, None);
        assert!(answer.matches[0].snippet.contains("rotate_session_ledger"));
        assert!(answer
            .matches
            .iter()
            .all(|m| m.path != "ignored.txt" && m.path != "blob.bin"));
        assert_same(&index, dir.path());
    }
}

#[test]
fn an_index_read_in_several_chunks_and_shards_ranks_as_the_full_scan() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 1300, 4);
    let mut index = DirIndex::default();
    index.refresh(dir.path());
    assert!(index.files.len() > 2 * super::build::CHUNK);
    assert!(index.shards.iter().all(|s| !s.is_empty()));
    assert_same(&index, dir.path());
}

#[test]
fn a_changed_added_or_removed_file_is_seen_at_the_next_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    generate(root, 120, 1);
    let mut index = DirIndex::default();
    index.refresh(root);

    std::fs::write(root.join("new_zebra.rs"), "fn gallop_zebra() {}\n").unwrap();
    let changed = root.join("config_01/handler_1.rs");
    let before = std::fs::metadata(&changed).unwrap();
    // Same size, same mtime afterwards: only ctime and content differ.
    let text = std::fs::read_to_string(&changed).unwrap();
    std::fs::write(&changed, text.replace("token", "zebra")).unwrap();
    let file = std::fs::File::options().write(true).open(&changed).unwrap();
    file.set_modified(before.modified().unwrap()).unwrap();
    std::fs::remove_dir_all(root.join("parse_02")).unwrap();
    index.refresh(root);

    assert_same(&index, root);
    let zebra = index.answer(root, "Where do zebras gallop?", None);
    assert_same_answer(
        &answer_by_scan(root, "Where do zebras gallop?", None),
        &zebra,
        "zebra",
    );
    let paths: Vec<&str> = zebra.matches.iter().map(|m| m.path.as_str()).collect();
    assert_eq!(paths[0], "new_zebra.rs");
    assert!(paths.contains(&"config_01/handler_1.rs"), "{paths:?}");
    let everything = index.answer(root, "request handler config parse buffer", None);
    assert!(everything
        .matches
        .iter()
        .all(|m| !m.path.starts_with("parse_02")));
}

#[test]
fn many_rewrites_rebuild_the_index_without_changing_answers() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    generate(root, 40, 2);
    let mut index = DirIndex::default();
    for round in 0..30 {
        for n in 0..40 {
            let path = root.join(format!("file_{n}.rs"));
            std::fs::write(path, format!("fn session_{round}_{n}() {{ ledger(); }}\n")).unwrap();
        }
        index.refresh(root);
    }
    assert!(index.replaced <= index.files.len().max(1024) + 40);
    assert_same(&index, root);
}

#[test]
fn symlinks_are_not_indexed() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "session ledger secret\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.rs"), "fn nothing() {}\n").unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        dir.path().join("leak.txt"),
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("leakdir")).unwrap();
    let mut index = DirIndex::default();
    index.refresh(dir.path());
    let answer = index.answer(dir.path(), "session ledger secret", None);
    assert_eq!(answer.files_scanned, 1);
    assert!(answer.matches.is_empty());
}

#[test]
fn only_the_first_few_candidates_are_sorted_and_the_choice_is_unchanged() {
    use super::super::builtin::{best_first, choose, Candidate};
    // Every passage's two neighbours score just below it, so each choice
    // skips two candidates: the fifth choice is the 13th candidate.
    let candidates = || {
        (0..30usize)
            .map(|k| Candidate {
                file: 0,
                start: k * 6,
                end: k * 6 + 12,
                score: 10.0 - (k / 3) as f64 - if k % 3 == 1 { 0.0 } else { 0.5 },
            })
            .rev()
            .collect::<Vec<_>>()
    };
    let mut all = candidates();
    all.sort_by(best_first);
    let mut expected: Vec<(usize, usize)> = Vec::new();
    for c in &all {
        let overlaps = expected
            .iter()
            .any(|(file, start)| *file == c.file && *start < c.end && c.start < start + 12);
        if !overlaps && expected.len() < 5 {
            expected.push((c.file, c.start));
        }
    }
    let chosen: Vec<(usize, usize)> = choose(candidates())
        .iter()
        .map(|c| (c.file, c.start))
        .collect();
    assert_eq!(chosen.len(), 5);
    assert_eq!(chosen, expected);
}

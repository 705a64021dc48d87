//! The built-in answer engine on a generated workspace of 10,000 files:
//! a question through the warm index, the index build alone, the query
//! alone, and the full scan the index replaced.

use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use portico::jobs::engine::builtin;
use portico::jobs::engine::cache::{IndexCache, Source};
use portico::jobs::engine::index::DirIndex;

const FILES: usize = 10_000;
const WORDS: &[&str] = &[
    "request", "handler", "config", "parse", "buffer", "stream", "client", "server", "token",
    "session", "router", "cache", "queue", "worker", "index", "record", "schema", "value",
];

/// Writes `FILES` Rust-like files of about 40 lines in 100 directories;
/// exactly one holds `fn rotate_session_ledger`.
fn generate_workspace(root: &Path) {
    for n in 0..FILES {
        let dir = root.join(format!("module_{:03}", n % 100));
        std::fs::create_dir_all(&dir).unwrap();
        let mut text = String::new();
        for line in 0..40 {
            let a = WORDS[(n * 7 + line) % WORDS.len()];
            let b = WORDS[(n * 13 + line * 3) % WORDS.len()];
            text.push_str(&format!(
                "    let {a}_{b}_{line} = {a}Builder::new().with_{b}({n}).build()?; // {a} {b}\n"
            ));
        }
        if n == FILES / 2 {
            text.push_str(
                "pub fn rotate_session_ledger(ledger: &mut Ledger) { ledger.rotate(); }\n",
            );
        }
        std::fs::write(dir.join(format!("file_{n}.rs")), text).unwrap();
    }
}

fn engine(c: &mut Criterion) {
    let workspace = tempfile::tempdir().unwrap();
    generate_workspace(workspace.path());
    let root = workspace.path();
    let question = "Where is the session ledger rotated?";
    let answer = builtin::answer_by_scan(root, question, None);
    assert_eq!(answer.files_scanned, FILES);
    assert!(
        answer.matches[0]
            .path
            .ends_with(&format!("file_{}.rs", FILES / 2)),
        "{:?}",
        answer.matches[0]
    );

    let cache = IndexCache::default();
    let source = Source::Directory(root.to_string_lossy().into_owned());
    assert_eq!(
        cache.answer(&source, root, question, None).matches,
        answer.matches
    );
    let mut built = DirIndex::default();
    built.refresh(root);

    let mut group = c.benchmark_group("builtin_engine");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("10000_files", |b| {
        b.iter(|| cache.answer(&source, root, question, None))
    });
    group.bench_function("index_build_10000_files", |b| {
        b.iter(|| {
            let mut index = DirIndex::default();
            index.refresh(root);
            index
        })
    });
    group.bench_function("index_query_10000_files", |b| {
        b.iter(|| built.answer(root, question, None))
    });
    group.bench_function("scan_10000_files", |b| {
        b.iter(|| builtin::answer_by_scan(root, question, None))
    });
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);

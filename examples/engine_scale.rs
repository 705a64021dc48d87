//! The built-in engine on a generated 50,000-file, ~500 MB workspace:
//! cold (first question, index built), warm (second question), warm after
//! 20 files changed, and the process's peak RSS. Used by scripts/bench.sh.
//!
//!   cargo run --release --example engine_scale -- /tmp/some-empty-dir [files]

use std::path::Path;
use std::time::Instant;

use portico::jobs::engine::cache::{IndexCache, Source};

const WORDS: &[&str] = &[
    "request", "handler", "config", "parse", "buffer", "stream", "client", "server", "token",
    "session", "router", "cache", "queue", "worker", "index", "record", "schema", "value",
    "encode", "decode", "frame", "header", "body", "socket", "listener", "retry", "backoff",
    "limit", "window", "metric", "span", "trace", "event", "store", "commit", "branch",
];

/// File `n` as about 10 KB of Rust-like code; one file holds the answer.
fn file_text(n: usize, files: usize) -> String {
    let mut text = String::with_capacity(11_000);
    text.push_str(&format!(
        "//! Module {n}: generated for the engine benchmark.\n\n"
    ));
    for line in 0..95 {
        let w = |k: usize| WORDS[(n * (k * 2 + 7) + line * (k + 3) + k * 11) % WORDS.len()];
        let (a, b, c) = (w(0), w(1), w(2));
        text.push_str(&format!(
            "    let {a}_{b}_{} = {a}::{c}Builder::new(&{b}_{line}).with_{c}({}).build()?; // {b} {c}\n",
            n % 97,
            (n * 31 + line) % 1000
        ));
    }
    if n == files / 2 {
        text.push_str("pub fn rotate_session_ledger(ledger: &mut Ledger) { ledger.rotate(); }\n");
    }
    text
}

fn generate(root: &Path, files: usize) -> u64 {
    let mut bytes = 0u64;
    for n in 0..files {
        let dir = root.join(format!("crate_{:02}/module_{:03}", n % 50, (n / 50) % 20));
        std::fs::create_dir_all(&dir).unwrap();
        let text = file_text(n, files);
        bytes += text.len() as u64;
        std::fs::write(dir.join(format!("file_{n}.rs")), text).unwrap();
    }
    bytes
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU seconds (user + system) this process has used so far.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let root = args.next().expect("usage: engine_scale DIR [FILES]");
    let files: usize = args.next().map_or(50_000, |f| f.parse().expect("FILES"));
    let root = Path::new(&root);
    let started = Instant::now();
    let bytes = generate(root, files);
    eprintln!(
        "generated {files} files, {:.0} MB in {:.1} s",
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    let rss_before = peak_rss_mib();

    let cache = IndexCache::default();
    let source = Source::Directory(root.to_string_lossy().into_owned());
    let question = "Where is the session ledger rotated?";
    let timed = |question: &str| {
        let started = Instant::now();
        let answer = cache.answer(&source, root, question, None);
        (started.elapsed().as_secs_f64(), answer)
    };
    // The machine may be shared: CPU time says what the build costs.
    let cpu_before = cpu_seconds();
    let (cold, answer) = timed(question);
    let cold_cpu = cpu_seconds() - cpu_before;
    let top = answer
        .matches
        .first()
        .map(|m| m.path.clone())
        .unwrap_or_default();
    assert!(
        top.ends_with(&format!("file_{}.rs", files / 2)),
        "top passage: {top}"
    );
    assert_eq!(answer.files_scanned, files);
    let cpu_before = cpu_seconds();
    let (warm, _) = timed("How does the request handler retry with backoff?");
    let warm_cpu = cpu_seconds() - cpu_before;
    for n in 0..20 {
        let path = root.join(format!(
            "crate_{:02}/module_{:03}/file_{n}.rs",
            n % 50,
            (n / 50) % 20
        ));
        std::fs::write(path, file_text(n + 1, files)).unwrap();
    }
    let (changed, _) = timed(question);
    println!(
        "files={files} megabytes={:.0} cold_s={cold:.2} warm_s={warm:.2} warm_after_20_changes_s={changed:.2} \
         peak_rss_mib={:.1} rss_before_mib={rss_before:.1} cold_cpu_s={cold_cpu:.2} warm_cpu_s={warm_cpu:.2} \
         threads={} load_average={} top={top}",
        bytes as f64 / 1e6,
        peak_rss_mib(),
        std::thread::available_parallelism().map_or(1, usize::from),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .unwrap_or("?"),
    );
}

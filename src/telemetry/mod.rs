//! Structured logging through `tracing`, filtered by `RUST_LOG`. Layer 2
//! (README, "The module map"): imports only `config`.
//!
//! An authentication line per request must cost little, so lines are not
//! written one system call at a time: they are appended to a buffer that a
//! background thread writes to stdout every 50 ms. No line is dropped (a
//! buffer that stdout cannot drain makes callers write it themselves); a
//! crash loses at most the last 50 ms.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

mod address;
mod auth_line;
mod escape;
mod format;
mod json;

pub use auth_line::{auth_attempt, AuthOutcome};

const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
/// Past this, the caller writes the buffer out itself.
const MAX_BUFFERED: usize = 8 * 1024 * 1024;
/// The capacity a flushed buffer keeps for its next turn.
const MAX_KEPT_BUFFER: usize = 1024 * 1024;

#[derive(Default)]
struct Shared {
    buffer: Mutex<(Vec<u8>, bool)>,
    wake: Condvar,
}

fn write_out(bytes: &[u8]) {
    let mut stdout = io::stdout().lock();
    let _ = stdout.write_all(bytes);
    let _ = stdout.flush();
}

/// The `MakeWriter` handed to the subscriber.
#[derive(Clone)]
pub struct BatchedStdout(Arc<Shared>);

impl BatchedStdout {
    fn append(&self, bytes: &[u8]) {
        let mut guard = self.0.buffer.lock().unwrap_or_else(|e| e.into_inner());
        guard.0.extend_from_slice(bytes);
        if guard.0.len() > MAX_BUFFERED {
            let full = std::mem::take(&mut guard.0);
            write_out(&full);
        }
    }
}

impl Write for BatchedStdout {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.append(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedStdout {
    type Writer = BatchedStdout;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Writes what is buffered when dropped; keep it until exit.
pub struct LogGuard(Arc<Shared>, Option<std::thread::JoinHandle<()>>);

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.0.buffer.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.0.wake.notify_one();
        if let Some(thread) = self.1.take() {
            let _ = thread.join();
        }
    }
}

fn spawn_flusher(shared: Arc<Shared>) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || {
            // Two buffers swapped in turn, so the one filling up keeps its
            // capacity instead of growing again from empty every interval.
            let mut pending = Vec::new();
            loop {
                let stop = {
                    let guard = shared.buffer.lock().unwrap_or_else(|e| e.into_inner());
                    let (mut guard, _) = shared
                        .wake
                        .wait_timeout(guard, FLUSH_INTERVAL)
                        .unwrap_or_else(|e| e.into_inner());
                    std::mem::swap(&mut guard.0, &mut pending);
                    guard.1
                };
                if !pending.is_empty() {
                    write_out(&pending);
                }
                pending.clear();
                pending.shrink_to(MAX_KEPT_BUFFER);
                if stop {
                    return;
                }
            }
        })
        .expect("the log writer thread starts")
}

/// Installs the global subscriber. A second call returns `None`.
pub fn init(filter: &str) -> Option<LogGuard> {
    init_with(filter, crate::config::LogFormat::Text)
}

/// Installs the global subscriber writing `format` (`LOG_FORMAT`).
pub fn init_with(filter: &str, format: crate::config::LogFormat) -> Option<LogGuard> {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let shared = Arc::new(Shared::default());
    let writer = BatchedStdout(shared.clone());
    let installed = match format {
        crate::config::LogFormat::Json => json::install(filter, writer),
        crate::config::LogFormat::Text => {
            let installed = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .event_format(format::LeanFormat)
                .with_writer(writer.clone())
                .try_init()
                .is_ok();
            if installed {
                auth_line::text_installed(writer);
            }
            installed
        }
    };
    if !installed {
        return None;
    }
    let flusher = spawn_flusher(shared.clone());
    Some(LogGuard(shared, Some(flusher)))
}

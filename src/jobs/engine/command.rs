//! The command engine (`ASK_COMMAND`): an external program, split like
//! shell words and never run through a shell, started in the workspace with
//! the question on stdin, Portico's secrets removed from its environment, a
//! time limit and a 1 MiB cap on what it prints.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::sandbox::{restrict_in_child, Confinement, Sandbox};
use super::EngineError;
use crate::config::SECRET_VARIABLES;
use crate::jobs::answer::{Answer, CommandAnswer};

pub const MAX_OUTPUT_BYTES: usize = 1024 * 1024;
const STDERR_TAIL_BYTES: usize = 2000;

#[derive(Debug, Clone)]
pub struct CommandEngine {
    pub words: Vec<String>,
    pub timeout: Duration,
    /// `None` only when the operator set `ASK_SANDBOX=off`.
    pub sandbox: Option<Sandbox>,
    /// Never named in the program's environment.
    pub data_dir: PathBuf,
}

/// What the program is given on stdin.
pub fn prompt(question: &str, context: Option<&str>) -> String {
    match context {
        Some(context) if !context.trim().is_empty() => {
            format!("{question}\n\nContext:\n{context}\n")
        }
        _ => format!("{question}\n"),
    }
}

/// Reads everything, keeping the first `cap` bytes; says whether more came.
async fn read_capped(mut stream: impl AsyncRead + Unpin, cap: usize) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buffer = vec![0u8; 64 * 1024];
    while let Ok(n) = stream.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        let room = cap.saturating_sub(kept.len());
        kept.extend_from_slice(&buffer[..n.min(room)]);
        truncated |= n > room;
    }
    (kept, truncated)
}

/// Reads everything, keeping the last `keep` bytes.
async fn read_tail(mut stream: impl AsyncRead + Unpin, keep: usize) -> Vec<u8> {
    let mut tail = Vec::new();
    let mut buffer = vec![0u8; 16 * 1024];
    while let Ok(n) = stream.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        tail.extend_from_slice(&buffer[..n]);
        if tail.len() > keep {
            tail.drain(..tail.len() - keep);
        }
    }
    tail
}

/// Ends the program and everything it started.
fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|pid| i32::try_from(pid).ok()) {
        // SAFETY: kill(2) with a negative pid signals the process group the
        // child leads (it was started with process_group(0)).
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

/// Ends the program's whole process group when dropped.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.0);
    }
}

impl CommandEngine {
    pub fn name(&self) -> &str {
        &self.words[0]
    }

    /// Portico's secrets, `DATA_DIR`, and any variable whose value names
    /// the data directory (such as the `PWD` Portico was started in).
    fn hidden_variables(&self) -> Vec<std::ffi::OsString> {
        let canonical = self.data_dir.canonicalize().ok();
        let names_data_dir = |value: &std::ffi::OsStr| {
            let value = value.to_string_lossy();
            [Some(&self.data_dir), canonical.as_ref()]
                .into_iter()
                .flatten()
                .filter(|dir| dir.is_absolute() && dir.parent().is_some())
                .filter_map(|dir| dir.to_str())
                .any(|dir| value.contains(dir))
        };
        let mut hidden: Vec<std::ffi::OsString> = SECRET_VARIABLES
            .iter()
            .chain(&["DATA_DIR"])
            .map(Into::into)
            .collect();
        hidden.extend(
            std::env::vars_os()
                .filter(|(_, value)| names_data_dir(value))
                .map(|(name, _)| name),
        );
        hidden
    }

    /// `text` with the data directory's absolute path written as
    /// `$DATA_DIR`: clients read what the program prints, and where
    /// Portico keeps its files is none of their business.
    fn without_data_dir(&self, text: &str) -> String {
        let canonical = self.data_dir.canonicalize().ok();
        let mut dirs: Vec<String> = [Some(&self.data_dir), canonical.as_ref()]
            .into_iter()
            .flatten()
            .filter(|dir| dir.is_absolute() && dir.parent().is_some())
            .filter_map(|dir| dir.to_str().map(str::to_owned))
            .collect();
        // The longer spelling first, so that one is not cut into the other.
        dirs.sort_by_key(|dir| std::cmp::Reverse(dir.len()));
        dirs.into_iter()
            .fold(text.to_owned(), |text, dir| text.replace(&dir, "$DATA_DIR"))
    }

    pub async fn run(
        &self,
        question: &str,
        context: Option<&str>,
        cwd: &Path,
    ) -> Result<Answer, EngineError> {
        let confinement = match &self.sandbox {
            Some(sandbox) => sandbox.confine(cwd),
            None => Confinement::unconfined(),
        }
        .map_err(EngineError::Sandbox)?;
        let mut command = Command::new(&self.words[0]);
        command
            .args(&self.words[1..])
            .current_dir(cwd)
            .env("PWD", cwd)
            .env("TMPDIR", confinement.scratch.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        for name in self.hidden_variables() {
            command.env_remove(name);
        }
        let ruleset = confinement.ruleset_fd();
        // SAFETY: only async-signal-safe system calls run in the child:
        // prctl(2) makes the program die with Portico, and the sandbox
        // (built by the parent) is applied without allocating.
        unsafe {
            command.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                ruleset.map_or(Ok(()), restrict_in_child)
            });
        }
        let mut child = command.spawn().map_err(|err| {
            // Landlock refuses to run a program from a directory it may not
            // read; "Permission denied" alone does not say that.
            let hint =
                if self.sandbox.is_some() && err.kind() == std::io::ErrorKind::PermissionDenied {
                    "; the sandbox runs programs only from the system directories \
                 and ASK_SANDBOX_PATHS: add the program's directory to ASK_SANDBOX_PATHS"
                } else {
                    ""
                };
            EngineError::CannotStart {
                program: self.name().to_owned(),
                reason: err.to_string(),
                hint,
            }
        })?;
        let pid = child.id();
        // Also when this future is dropped (the server stopping mid-job).
        let _group = GroupGuard(pid);
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let input = prompt(question, context);
        let writer = tokio::spawn(async move {
            let _ = stdin.write_all(input.as_bytes()).await;
        });
        let stdout = tokio::spawn(read_capped(
            child.stdout.take().expect("stdout is piped"),
            MAX_OUTPUT_BYTES,
        ));
        let stderr = tokio::spawn(read_tail(
            child.stderr.take().expect("stderr is piped"),
            STDERR_TAIL_BYTES,
        ));

        let status = match tokio::time::timeout(self.timeout, child.wait()).await {
            Ok(status) => status.map_err(|err| EngineError::Wait(err.to_string()))?,
            Err(_) => {
                kill_group(pid);
                let _ = child.wait().await;
                writer.abort();
                return Err(EngineError::TimedOut(self.timeout.as_secs()));
            }
        };
        // Whatever the program left running must not hold its pipes open.
        kill_group(pid);
        let _ = writer.await;
        let (output, truncated) = stdout.await.unwrap_or_default();
        let stderr = stderr.await.unwrap_or_default();
        if !status.success() {
            let code = status
                .code()
                .map_or_else(|| "a signal".to_owned(), |c| c.to_string());
            let tail = self.without_data_dir(&String::from_utf8_lossy(&stderr));
            return Err(EngineError::Exited {
                code,
                stderr: tail.trim().to_owned(),
            });
        }
        let mut output = self.without_data_dir(&String::from_utf8_lossy(&output));
        if truncated {
            output.push_str("\n\n[output truncated at 1 MiB]\n");
        }
        Ok(Answer::Command(CommandAnswer {
            execution_time_ms: 0,
            exit_code: 0,
            output,
            source_branch: None,
            truncated,
        }))
    }
}

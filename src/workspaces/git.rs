//! The `git` program, run without a shell, without a terminal prompt, with
//! Portico's secrets removed from its environment and with a time limit.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::config::SECRET_VARIABLES;

const GIT_TIMEOUT: Duration = Duration::from_secs(300);
const STDERR_TAIL: usize = 2000;

fn git() -> Command {
    let mut command = Command::new("git");
    command
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .args([
            "-c",
            "protocol.ext.allow=never",
            "-c",
            "protocol.fd.allow=never",
        ])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for name in SECRET_VARIABLES {
        command.env_remove(name);
    }
    command
}

/// Runs git; `Ok(stdout)` on success, else an error with the stderr tail.
async fn run(mut command: Command) -> anyhow::Result<String> {
    let output = tokio::time::timeout(GIT_TIMEOUT, command.output())
        .await
        .context("git took longer than 300 s")?
        .context("cannot run git; is it installed?")?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: String = stderr
            .trim()
            .chars()
            .rev()
            .take(STDERR_TAIL)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        bail!("{tail}");
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Whether `name` is a branch name git accepts (and not an option).
pub async fn is_valid_branch_name(name: &str) -> bool {
    if name.is_empty() || name.starts_with('-') || name.len() > 200 {
        return false;
    }
    let mut command = git();
    command.args(["check-ref-format", "--branch", name]);
    run(command).await.is_ok()
}

/// A repository URL Portico will hand to git: a remote URL with a known
/// scheme, an scp-like `user@host:path`, or an absolute local path.
pub fn is_acceptable_url(url: &str) -> bool {
    let schemes = ["https://", "http://", "ssh://", "git://", "file://"];
    if url.starts_with('-') || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return false;
    }
    schemes.iter().any(|scheme| url.starts_with(scheme))
        || url.starts_with('/')
        || url
            .split_once(':')
            .is_some_and(|(host, _)| host.contains('@') && !host.contains('/'))
}

/// Clones `url` into `dest`; `options` go before the subcommand (such as
/// the credential helper).
pub async fn clone(
    url: &str,
    branch: Option<&str>,
    dest: &Path,
    options: &[String],
) -> anyhow::Result<()> {
    let mut command = git();
    command.args(options).args(["clone", "--quiet"]);
    if let Some(branch) = branch {
        command.args(["--branch", branch]);
    }
    command.arg("--").arg(url).arg(dest);
    run(command).await.map(|_| ())
}

/// The branch checked out in `repo`, if it is a git work tree on a branch.
pub async fn current_branch(repo: &Path) -> Option<String> {
    let mut command = git();
    command
        .arg("-C")
        .arg(repo)
        .args(["symbolic-ref", "--quiet", "--short", "HEAD"]);
    run(command).await.ok().filter(|branch| !branch.is_empty())
}

/// The commit a branch points to, as a local or `origin/` branch.
pub async fn branch_commit(repo: &Path, branch: &str) -> Option<String> {
    for reference in [
        format!("refs/heads/{branch}"),
        format!("refs/remotes/origin/{branch}"),
    ] {
        let mut command = git();
        command
            .arg("-C")
            .arg(repo)
            .args(["rev-parse", "--verify", "--quiet"])
            .arg(format!("{reference}^{{commit}}"));
        if let Ok(commit) = run(command).await {
            return Some(commit);
        }
    }
    None
}

/// Writes the tree of `commit` into `dest` (which must exist) without
/// touching the repository's checkout, index or references.
pub async fn export_tree(repo: &Path, commit: &str, dest: &Path) -> anyhow::Result<()> {
    let mut archive = git();
    archive
        .arg("-C")
        .arg(repo)
        .args(["archive", "--format=tar", commit])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut archive = archive.spawn().context("cannot run git archive")?;
    let mut tar_input = archive.stdout.take().context("no archive output")?;
    let mut tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(dest)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot run tar")?;
    let mut tar_stdin = tar.stdin.take().context("no tar input")?;
    let (copied, archived) = tokio::time::timeout(GIT_TIMEOUT, async {
        let copied = tokio::io::copy(&mut tar_input, &mut tar_stdin).await;
        drop(tar_stdin);
        (copied, archive.wait().await)
    })
    .await
    .context("exporting the branch took longer than 300 s")?;
    let mut stderr = String::new();
    if let Some(mut err) = archive.stderr.take() {
        let _ = err.read_to_string(&mut stderr).await;
    }
    let tar_status = tar.wait().await.context("tar failed")?;
    copied.context("copying the archive failed")?;
    if !archived?.success() || !tar_status.success() {
        bail!("exporting the branch failed: {}", stderr.trim());
    }
    Ok(())
}

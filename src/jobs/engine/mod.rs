//! Answer engines: the built-in search, or an external command. Both see
//! the workspace directory, or an export of the asked-for branch.

pub mod builtin;
pub mod cache;
pub mod command;
pub mod index;
mod postings;
pub mod sandbox;
pub mod tokens;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tempfile::TempDir;

use super::answer::{Answer, BuiltinAnswer};
use super::job::Job;
use crate::workspaces::{git, Registry};
use cache::{IndexCache, Source};
use command::CommandEngine;

#[derive(Debug, Clone)]
pub enum Engine {
    Builtin,
    Command(CommandEngine),
}

impl Engine {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Builtin => "builtin",
            Self::Command(_) => "command",
        }
    }
}

/// Answers jobs with one engine against the registered workspaces.
#[derive(Debug, Clone)]
pub struct Answerer {
    pub engine: Engine,
    pub registry: Arc<Registry>,
    /// The built-in engine's indexes, shared by all workers.
    pub indexes: Arc<IndexCache>,
}

/// Why a job has no answer; its text is the job's `error`, for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("the workspace registry could not be read; try again later")]
    RegistryUnavailable,
    #[error("the workspace {0} was removed")]
    WorkspaceRemoved(String),
    /// The registry's reason the workspace may not be read.
    #[error("{0}")]
    WorkspaceUnusable(String),
    #[error("the branch '{0}' does not exist (any more) in this workspace")]
    NoSuchBranch(String),
    #[error("cannot prepare the branch export: {0}")]
    ExportDir(String),
    #[error("cannot read the branch '{branch}': {reason}")]
    Export { branch: String, reason: String },
    #[error("the built-in engine failed unexpectedly")]
    BuiltinFailed,
    /// The sandbox could not be set up for this run.
    #[error("{0}")]
    Sandbox(String),
    #[error("cannot start the ASK_COMMAND program '{program}': {reason}{hint}")]
    CannotStart {
        program: String,
        reason: String,
        hint: &'static str,
    },
    #[error("waiting for the ASK_COMMAND program failed: {0}")]
    Wait(String),
    #[error("timed out after {0} s")]
    TimedOut(u64),
    #[error("the ASK_COMMAND program exited with status {code}: {stderr}")]
    Exited { code: String, stderr: String },
}

impl Answerer {
    /// The job's answer, or the error a user should read.
    pub async fn answer(&self, job: &Job) -> Result<Answer, EngineError> {
        let workspace = self
            .registry
            .get(&job.workspace_id)
            .await
            .map_err(|err| {
                tracing::error!(error = format!("{err:#}"), "reading the workspaces failed");
                EngineError::RegistryUnavailable
            })?
            .ok_or_else(|| EngineError::WorkspaceRemoved(job.workspace_id.clone()))?;
        let root = self
            .registry
            .local_root(&workspace)
            .await
            .map_err(EngineError::WorkspaceUnusable)?;
        let started = Instant::now();
        let export = match &job.source_branch {
            Some(branch) => Some(export_branch(&root, branch).await?),
            None => None,
        };
        let dir: &Path = export.as_ref().map_or(&root, |(dir, _)| dir.path());
        let source = match &export {
            Some((_, commit)) => Source::Commit {
                repository: root.to_string_lossy().into_owned(),
                commit: commit.clone(),
            },
            None => Source::Directory(root.to_string_lossy().into_owned()),
        };
        let answer = match &self.engine {
            Engine::Builtin => {
                let (dir, question, context) =
                    (dir.to_owned(), job.question.clone(), job.context.clone());
                let indexes = self.indexes.clone();
                let answer = tokio::task::spawn_blocking(move || {
                    indexes.answer(&source, &dir, &question, context.as_deref())
                })
                .await
                .map_err(|_| EngineError::BuiltinFailed)?;
                Answer::Builtin(BuiltinAnswer {
                    execution_time_ms: 0,
                    files_scanned: answer.files_scanned,
                    matches: answer.matches,
                    output: answer.output,
                    source_branch: None,
                })
            }
            Engine::Command(command) => {
                command
                    .run(&job.question, job.context.as_deref(), dir)
                    .await?
            }
        };
        let elapsed = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(answer.stamped(elapsed, job.source_branch.as_deref()))
    }
}

/// Writes `branch` of `repo` into a fresh directory outside the data
/// directory, removed when the returned value is dropped, and the commit.
async fn export_branch(repo: &Path, branch: &str) -> Result<(TempDir, String), EngineError> {
    let commit = git::branch_commit(repo, branch)
        .await
        .ok_or_else(|| EngineError::NoSuchBranch(branch.to_owned()))?;
    let export = tempfile::Builder::new()
        .prefix("portico-export-")
        .tempdir()
        .map_err(|err| EngineError::ExportDir(err.to_string()))?;
    git::export_tree(repo, &commit, export.path())
        .await
        .map_err(|err| EngineError::Export {
            branch: branch.to_owned(),
            reason: format!("{err:#}"),
        })?;
    Ok((export, commit))
}

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

use serde_json::{json, Value};
use tempfile::TempDir;

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

impl Answerer {
    /// The answer as the job's `result`, or the error a user should read.
    pub async fn answer(&self, job: &Job) -> Result<Value, String> {
        let workspace = self
            .registry
            .get(&job.workspace_id)
            .await
            .map_err(|err| {
                tracing::error!(error = format!("{err:#}"), "reading the workspaces failed");
                "the workspace registry could not be read; try again later".to_owned()
            })?
            .ok_or_else(|| format!("the workspace {} was removed", job.workspace_id))?;
        let root = self.registry.checked_root(&workspace)?;
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
        let mut result = match &self.engine {
            Engine::Builtin => {
                let (dir, question, context) =
                    (dir.to_owned(), job.question.clone(), job.context.clone());
                let indexes = self.indexes.clone();
                let answer = tokio::task::spawn_blocking(move || {
                    indexes.answer(&source, &dir, &question, context.as_deref())
                })
                .await
                .map_err(|_| "the built-in engine failed unexpectedly".to_owned())?;
                serde_json::to_value(answer).map_err(|e| e.to_string())?
            }
            Engine::Command(command) => {
                command
                    .run(&job.question, job.context.as_deref(), dir)
                    .await?
            }
        };
        result["engine"] = json!(self.engine.label());
        result["executionTimeMs"] = json!(started.elapsed().as_millis() as u64);
        if let Some(branch) = &job.source_branch {
            result["sourceBranch"] = json!(branch);
        }
        Ok(result)
    }
}

/// Writes `branch` of `repo` into a fresh directory outside the data
/// directory, removed when the returned value is dropped, and the commit.
async fn export_branch(repo: &Path, branch: &str) -> Result<(TempDir, String), String> {
    let commit = git::branch_commit(repo, branch).await.ok_or_else(|| {
        format!("the branch '{branch}' does not exist (any more) in this workspace")
    })?;
    let export = tempfile::Builder::new()
        .prefix("portico-export-")
        .tempdir()
        .map_err(|err| format!("cannot prepare the branch export: {err}"))?;
    git::export_tree(repo, &commit, export.path())
        .await
        .map_err(|err| format!("cannot read the branch '{branch}': {err:#}"))?;
    Ok((export, commit))
}

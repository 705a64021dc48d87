//! Answer engines: the built-in search, or an external command. Both see
//! the workspace directory, or an export of the asked-for branch.

pub mod builtin;
pub mod command;
pub mod sandbox;
pub mod tokens;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use super::job::Job;
use crate::workspaces::{git, Registry};
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
}

/// A temporary export of a branch, removed when dropped.
struct Export(PathBuf);

impl Drop for Export {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Answerer {
    /// The answer as the job's `result`, or the error a user should read.
    pub async fn answer(&self, job: &Job) -> Result<Value, String> {
        let workspace = self
            .registry
            .get(&job.workspace_id)
            .ok_or_else(|| format!("the workspace {} was removed", job.workspace_id))?;
        let started = Instant::now();
        let export = match &job.source_branch {
            Some(branch) => Some(self.export_branch(&workspace.path, branch, job).await?),
            None => None,
        };
        let dir: &Path = export.as_ref().map_or(&workspace.path, |e| &e.0);
        let mut result = match &self.engine {
            Engine::Builtin => {
                let (dir, question, context) =
                    (dir.to_owned(), job.question.clone(), job.context.clone());
                let answer = tokio::task::spawn_blocking(move || {
                    builtin::answer(&dir, &question, context.as_deref())
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

    async fn export_branch(&self, repo: &Path, branch: &str, job: &Job) -> Result<Export, String> {
        let commit = git::branch_commit(repo, branch).await.ok_or_else(|| {
            format!("the branch '{branch}' does not exist (any more) in this workspace")
        })?;
        let dest = self.registry.scratch_dir().join(job.id.as_str());
        let _ = std::fs::remove_dir_all(&dest);
        std::fs::create_dir_all(&dest)
            .map_err(|err| format!("cannot prepare the branch export: {err}"))?;
        let export = Export(dest);
        git::export_tree(repo, &commit, &export.0)
            .await
            .map_err(|err| format!("cannot read the branch '{branch}': {err:#}"))?;
        Ok(export)
    }
}

//! The workspace registry: the rules over the `WorkspaceStore` records
//! (names, paths, clones under `<DATA_DIR>/repos/<id>`, credentials), and
//! the rules that keep a workspace from exposing Portico's own data directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;

use super::credentials::{self, credential_file, RepoUrl};
use super::git;
use super::record::{Workspace, WorkspaceId};
use super::store::{FileWorkspaceStore, WorkspaceStore};
use crate::store::StoreError;

const MAX_NAME_CHARS: usize = 100;

/// What a client asks to register.
#[derive(Debug, Clone)]
pub enum NewWorkspace {
    Directory {
        name: String,
        path: String,
    },
    Clone {
        name: String,
        repo_url: String,
        branch: Option<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Storage(anyhow::Error),
}

impl From<StoreError> for WorkspaceError {
    fn from(err: StoreError) -> Self {
        Self::Storage(err.into())
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> WorkspaceError {
    WorkspaceError::Invalid {
        field,
        message: message.into(),
    }
}

/// The workspaces of this server: the rules (names, paths, clones,
/// credentials) over a `WorkspaceStore` that keeps the records.
#[derive(Debug)]
pub struct Registry {
    data_dir: PathBuf,
    repos_dir: PathBuf,
    store: Arc<dyn WorkspaceStore>,
    /// One clone on first use at a time in this process.
    cloning: tokio::sync::Mutex<()>,
}

impl Registry {
    /// The registry on `workspaces.json` in the data directory.
    pub fn load(data_dir: &Path) -> anyhow::Result<Self> {
        let data_dir = data_dir.canonicalize()?;
        // Branch exports of jobs a crash interrupted.
        let _ = std::fs::remove_dir_all(data_dir.join("tmp"));
        let store = FileWorkspaceStore::load(&data_dir, |items| {
            credentials::move_out_of_records(&data_dir, items)
        })?;
        Ok(Self::new(&data_dir, Arc::new(store)))
    }

    /// The registry on `store`; `data_dir` is canonical.
    pub fn new(data_dir: &Path, store: Arc<dyn WorkspaceStore>) -> Self {
        Self {
            repos_dir: data_dir.join("repos"),
            data_dir: data_dir.to_owned(),
            store,
            cloning: tokio::sync::Mutex::new(()),
        }
    }

    /// Every workspace, oldest first.
    pub async fn list(&self) -> Result<Vec<Workspace>, StoreError> {
        Ok(self.store.list().await?.value)
    }

    pub async fn get(&self, id: &str) -> Result<Option<Workspace>, StoreError> {
        self.store.get(id).await
    }

    /// A registered directory may not be, hold or lie in the data directory
    /// (outside `repos/`): questions would read keys and sessions.
    fn check_directory(&self, path: &Path) -> Result<PathBuf, WorkspaceError> {
        let canonical = path
            .canonicalize()
            .map_err(|_| invalid("path", format!("{} does not exist", path.display())))?;
        if !canonical.is_dir() {
            return Err(invalid(
                "path",
                format!("{} is not a directory", canonical.display()),
            ));
        }
        let in_repos = canonical.starts_with(&self.repos_dir) && canonical != self.repos_dir;
        if !in_repos
            && (canonical.starts_with(&self.data_dir) || self.data_dir.starts_with(&canonical))
        {
            return Err(invalid(
                "path",
                "this directory overlaps Portico's data directory, which holds keys and sessions; \
                 register a clone instead ({\"repoUrl\": \"<this path>\"} clones it into the data directory)",
            ));
        }
        Ok(canonical)
    }

    pub async fn add(&self, request: NewWorkspace) -> Result<Workspace, WorkspaceError> {
        let name = match &request {
            NewWorkspace::Directory { name, .. } | NewWorkspace::Clone { name, .. } => {
                name.trim().to_owned()
            }
        };
        if name.is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(invalid(
                "name",
                format!("give a name of 1 to {MAX_NAME_CHARS} characters"),
            ));
        }
        if let Some(err) = duplicate(&self.list().await?, &name, None) {
            return Err(err);
        }
        let id = WorkspaceId::generate();
        let (path, repo_url, target_branch) = match request {
            NewWorkspace::Directory { path, .. } => {
                let path = self.check_directory(Path::new(&path))?;
                let branch = git::current_branch(&path).await;
                (path, None, branch)
            }
            NewWorkspace::Clone {
                repo_url, branch, ..
            } => {
                if !git::is_acceptable_url(&repo_url) {
                    return Err(invalid(
                        "repoUrl",
                        "use an https://, ssh://, git:// or file:// URL, user@host:path, or an absolute path",
                    ));
                }
                if let Some(branch) = &branch {
                    if !git::is_valid_branch_name(branch).await {
                        return Err(invalid("branch", "is not a valid branch name"));
                    }
                }
                let dest = self.repos_dir.join(id.as_str());
                std::fs::create_dir_all(&self.repos_dir)
                    .map_err(|e| WorkspaceError::Storage(e.into()))?;
                let url = RepoUrl::parse(&repo_url);
                drop(repo_url);
                let secret_file = credential_file(&self.data_dir, id.as_str());
                let options = credentials::store(&url, &secret_file)
                    .map_err(|e| WorkspaceError::Storage(e.into()))?;
                let cloned = git::clone(&url.clone_url, branch.as_deref(), &dest, &options).await;
                if let Err(err) = cloned {
                    let _ = std::fs::remove_dir_all(&dest);
                    let _ = std::fs::remove_file(&secret_file);
                    return Err(invalid("repoUrl", format!("git clone failed: {err}")));
                }
                let checked_out = git::current_branch(&dest).await;
                (dest, Some(url.redacted), branch.or(checked_out))
            }
        };
        let workspace = Workspace {
            id,
            name,
            path,
            repo_url,
            target_branch,
            created_at: Utc::now(),
        };
        let own_path = workspace
            .repo_url
            .is_none()
            .then_some(workspace.path.as_path());
        // Checked again against the version written to: of two racing
        // requests, one stores and the other sees its record on the retry.
        loop {
            let items = self.store.list().await?;
            if let Some(err) = duplicate(&items.value, &workspace.name, own_path) {
                if workspace.repo_url.is_some() {
                    let _ = tokio::fs::remove_dir_all(&workspace.path).await;
                }
                return Err(err);
            }
            match self.store.insert(items.version, workspace.clone()).await {
                Err(StoreError::Conflict) => continue,
                stored => return stored.map(|()| workspace).map_err(WorkspaceError::from),
            }
        }
    }

    /// Forgets a workspace, deleting its clone if Portico made one.
    pub async fn remove(&self, id: &str) -> Result<bool, WorkspaceError> {
        let Some(removed) = self.store.remove(id).await? else {
            return Ok(false);
        };
        if removed.path.starts_with(&self.repos_dir) {
            let _ = tokio::fs::remove_dir_all(&removed.path).await;
        }
        if removed.repo_url.is_some() {
            // This instance's own clone (Redis mode: registered elsewhere).
            let _ = tokio::fs::remove_dir_all(self.repos_dir.join(removed.id.as_str())).await;
        }
        let _ = tokio::fs::remove_file(credential_file(&self.data_dir, id)).await;
        Ok(true)
    }

    /// The directory a job reads. A registered directory is used where it
    /// is; a repository Portico cloned lives in this instance's
    /// `repos/<id>`, cloned here on first use when it is missing — with
    /// `REDIS_URL` the instance that registered it may be another machine
    /// (or the clone was deleted). The password of a repository URL is
    /// read from this instance's `credentials/<id>`.
    pub async fn local_root(&self, workspace: &Workspace) -> Result<PathBuf, String> {
        if workspace.repo_url.is_none() {
            return self.checked_root(workspace);
        }
        let dest = self.repos_dir.join(workspace.id.as_str());
        if std::fs::symlink_metadata(&dest).is_err() {
            let _one_at_a_time = self.cloning.lock().await;
            if std::fs::symlink_metadata(&dest).is_err() {
                self.clone_here(workspace, &dest).await?;
            }
        }
        let here = Workspace {
            path: dest,
            ..workspace.clone()
        };
        self.checked_root(&here)
    }

    async fn clone_here(&self, workspace: &Workspace, dest: &Path) -> Result<(), String> {
        let stored = workspace.repo_url.as_deref().unwrap_or_default();
        let url = RepoUrl::parse(stored);
        let secret_file = credential_file(&self.data_dir, workspace.id.as_str());
        let options = if secret_file.is_file() {
            credentials::git_options(&secret_file)
        } else if url.redacted != url.clone_url {
            return Err(format!(
                "workspace {} is a repository whose password only the instance that \
                 registered it holds; copy DATA_DIR/credentials/{} to this instance, or \
                 register it again",
                workspace.id, workspace.id
            ));
        } else {
            Vec::new()
        };
        std::fs::create_dir_all(&self.repos_dir)
            .map_err(|err| format!("cannot create {}: {err}", self.repos_dir.display()))?;
        let partial = self.repos_dir.join(format!(
            ".{}.cloning-{:08x}",
            workspace.id,
            rand::random::<u32>()
        ));
        tracing::info!(workspace = %workspace.id, "cloning a workspace on its first use here");
        let cloned = git::clone(
            &url.clone_url,
            workspace.target_branch.as_deref(),
            &partial,
            &options,
        )
        .await;
        let placed = cloned.and_then(|()| Ok(std::fs::rename(&partial, dest)?));
        if let Err(err) = placed {
            let _ = std::fs::remove_dir_all(&partial);
            if dest.is_dir() {
                // Another process sharing this DATA_DIR cloned it first.
                return Ok(());
            }
            return Err(format!(
                "workspace {} could not be cloned here: {err:#}",
                workspace.id
            ));
        }
        Ok(())
    }

    /// The workspace's directory, checked again before every job: it must
    /// still resolve to the directory registered (not a link swapped in
    /// since) and must not overlap the data directory.
    pub fn checked_root(&self, workspace: &Workspace) -> Result<PathBuf, String> {
        let moved = || {
            format!(
                "the directory of workspace {} was moved or replaced since it was registered; \
                 an admin must register it again",
                workspace.id
            )
        };
        let canonical = workspace.path.canonicalize().map_err(|_| moved())?;
        if canonical != workspace.path {
            return Err(moved());
        }
        self.check_directory(&canonical).map_err(|_| moved())
    }
}

/// A workspace that already has this name, or this directory.
fn duplicate(items: &[Workspace], name: &str, path: Option<&Path>) -> Option<WorkspaceError> {
    if let Some(other) = items.iter().find(|w| w.name.eq_ignore_ascii_case(name)) {
        return Some(invalid(
            "name",
            format!(
                "a workspace named “{}” exists already; choose another name",
                other.name
            ),
        ));
    }
    let other = items.iter().find(|w| Some(w.path.as_path()) == path)?;
    Some(invalid(
        "path",
        format!("this directory is already the workspace “{}”", other.name),
    ))
}

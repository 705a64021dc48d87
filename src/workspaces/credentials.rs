//! Credentials in repository URLs (`https://user:token@host/…`): the token
//! is split off before git sees the URL, kept only in a 0600 file under
//! `<DATA_DIR>/credentials/` that git reads through its `store` helper, and
//! every URL shown or stored is the redacted form `https://user:***@host/…`.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::Workspace;
use crate::store::write_atomic;

const REDACTED: &str = "***";

/// A repository URL taken apart.
pub struct RepoUrl {
    /// What git is given: the URL without its password.
    pub clone_url: String,
    /// What is stored and shown: the password replaced by `***`.
    pub redacted: String,
    /// The URL with its password, in git's credential-store format.
    credential: Option<SecretString>,
}

impl std::fmt::Debug for RepoUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoUrl")
            .field("redacted", &self.redacted)
            .finish_non_exhaustive()
    }
}

impl RepoUrl {
    pub fn parse(text: &str) -> Self {
        let plain = || Self {
            clone_url: text.to_owned(),
            redacted: text.to_owned(),
            credential: None,
        };
        let Ok(mut url) = Url::parse(text) else {
            return plain();
        };
        if url.password().is_none() {
            return plain();
        }
        let redacted = redact(&url);
        let mut credential = url.clone();
        credential.set_path("");
        credential.set_query(None);
        credential.set_fragment(None);
        let _ = url.set_password(None);
        Self {
            clone_url: url.to_string(),
            redacted,
            // Only git's http transports take a password from a helper.
            credential: matches!(url.scheme(), "http" | "https")
                .then(|| SecretString::from(credential.as_str().trim_end_matches('/').to_owned())),
        }
    }

    #[cfg(test)]
    fn has_credential(&self) -> bool {
        self.credential.is_some()
    }
}

fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_password(Some(REDACTED));
    shown.to_string()
}

/// `url` as it may be shown: any password replaced by `***`.
pub fn redacted(url: &str) -> String {
    RepoUrl::parse(url).redacted
}

/// Where a workspace's credential is kept.
pub fn credential_file(data_dir: &Path, workspace_id: &str) -> PathBuf {
    data_dir.join("credentials").join(workspace_id)
}

/// Writes the credential (0600, atomically) and returns the git options
/// that make git read it and nothing else.
pub fn store(url: &RepoUrl, file: &Path) -> std::io::Result<Vec<String>> {
    let Some(credential) = &url.credential else {
        return Ok(Vec::new());
    };
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    write_atomic(file, format!("{}\n", credential.expose_secret()).as_bytes())?;
    Ok(git_options(file))
}

/// `-c` options for git: forget other helpers, use only `file`.
pub fn git_options(file: &Path) -> Vec<String> {
    let quoted = shell_words::quote(&file.to_string_lossy()).into_owned();
    vec![
        "-c".into(),
        "credential.helper=".into(),
        "-c".into(),
        format!("credential.helper=store --file={quoted}"),
    ]
}

/// Records written before credentials were split off: moves each password
/// into its file, out of the clone's `.git/config`, and redacts the record.
/// Says whether any record changed.
pub fn move_out_of_records(data_dir: &Path, items: &mut [Workspace]) -> bool {
    let mut changed = false;
    for workspace in items.iter_mut() {
        let Some(text) = &workspace.repo_url else {
            continue;
        };
        let url = RepoUrl::parse(text);
        if url.redacted == *text {
            continue;
        }
        let file = credential_file(data_dir, workspace.id.as_str());
        if let Err(err) = store(&url, &file) {
            tracing::error!(workspace = %workspace.id, error = %err, "cannot store a repository credential");
            continue;
        }
        let set_url = std::process::Command::new("git")
            .arg("-C")
            .arg(&workspace.path)
            .args(["remote", "set-url", "origin", &url.clone_url])
            .stdin(std::process::Stdio::null())
            .output();
        if !set_url.is_ok_and(|out| out.status.success()) {
            tracing::warn!(workspace = %workspace.id, "cannot remove the password from the clone's .git/config");
        }
        workspace.repo_url = Some(url.redacted);
        changed = true;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_split_off_and_redacted() {
        let url = RepoUrl::parse("https://bob:ghp_s3cret@example.com/o/r.git");
        assert_eq!(url.clone_url, "https://bob@example.com/o/r.git");
        assert_eq!(url.redacted, "https://bob:***@example.com/o/r.git");
        assert_eq!(
            url.credential.as_ref().unwrap().expose_secret(),
            "https://bob:ghp_s3cret@example.com"
        );
        assert!(!format!("{url:?}").contains("s3cret"));
    }

    #[test]
    fn urls_without_a_password_are_left_alone() {
        for text in [
            "https://example.com/o/r.git",
            "git@example.com:o/r.git",
            "/srv/git/r",
            "file:///srv/git/r",
        ] {
            let url = RepoUrl::parse(text);
            assert_eq!(
                (url.clone_url.as_str(), url.redacted.as_str()),
                (text, text)
            );
            assert!(!url.has_credential());
        }
    }

    #[test]
    fn an_ssh_password_is_never_shown_nor_given_to_git() {
        let url = RepoUrl::parse("ssh://bob:pw@example.com/r.git");
        assert_eq!(url.redacted, "ssh://bob:***@example.com/r.git");
        assert_eq!(url.clone_url, "ssh://bob@example.com/r.git");
        assert!(!url.has_credential());
    }
}

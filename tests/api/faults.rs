//! Storage faults: a data directory that fills up or turns read-only. The
//! request fails with 503 and says why, nothing stored is damaged, and
//! Portico works again once the fault clears. A small tmpfs is mounted where
//! the test may (root). Elsewhere a read-only directory is made by taking
//! away write permission, a real fault the writer meets; a full disk cannot
//! be made without root, so there the writer's fault hook stands in, which
//! fails writes before they touch anything and so proves less.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::helpers::{answer_repo, assert_error, spawn_app, TestApp, ADMIN_KEY};

/// A data directory whose storage can be made to fail.
struct FaultyDir {
    path: PathBuf,
    mounted: bool,
    _holder: tempfile::TempDir,
}

impl FaultyDir {
    fn new() -> Self {
        let holder = tempfile::tempdir().unwrap();
        let path = holder.path().join("data");
        std::fs::create_dir(&path).unwrap();
        // PORTICO_TEST_NO_MOUNT=1 exercises the fault hook where mounting works.
        let mounted = std::env::var_os("PORTICO_TEST_NO_MOUNT").is_none()
            && Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs"])
                .arg(&path)
                .output()
                .is_ok_and(|out| out.status.success());
        Self {
            path,
            mounted,
            _holder: holder,
        }
    }

    fn remount(&self, mode: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.path)
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn fill(&self) {
        if self.mounted {
            let mut filler = std::fs::File::create(self.path.join("filler")).unwrap();
            let block = vec![0u8; 64 * 1024];
            while std::io::Write::write_all(&mut filler, &block).is_ok() {}
        } else {
            portico::store::inject_write_fault(&self.path, true);
        }
    }

    fn read_only(&self) {
        if self.mounted {
            self.remount("ro");
        } else if !self.deny_writes() {
            portico::store::inject_write_fault(&self.path, true);
        }
    }

    /// Takes write permission from every directory of the data dir; `false`
    /// when that does not stop writes (root ignores permissions).
    fn deny_writes(&self) -> bool {
        self.set_directory_modes(0o500);
        let probe = self.path.join("probe");
        if std::fs::write(&probe, "x").is_ok() {
            let _ = std::fs::remove_file(probe);
            self.set_directory_modes(0o700);
            return false;
        }
        true
    }

    fn set_directory_modes(&self, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        let mut directories = vec![self.path.clone()];
        while let Some(dir) = directories.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let entry = entry.unwrap();
                if entry.file_type().unwrap().is_dir() {
                    directories.push(entry.path());
                }
            }
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }

    fn clear(&self) {
        if self.mounted {
            self.remount("rw");
            let _ = std::fs::remove_file(self.path.join("filler"));
        } else {
            self.set_directory_modes(0o700);
            portico::store::inject_write_fault(&self.path, false);
        }
    }
}

impl Drop for FaultyDir {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        } else {
            self.set_directory_modes(0o700);
        }
    }
}

fn snapshot(dir: &Path) -> Vec<(String, String)> {
    ["users.json", "api-keys.json", "workspaces.json"]
        .iter()
        .map(|name| {
            (
                name.to_string(),
                std::fs::read_to_string(dir.join(name)).unwrap(),
            )
        })
        .collect()
}

async fn ask(app: &TestApp, workspace: &str) -> reqwest::Response {
    app.post_json(
        "/api/ask",
        ADMIN_KEY,
        &json!({"workspaceId": workspace, "question": "token bucket"}),
    )
    .await
}

async fn generate_status(app: &TestApp, csrf: &str, name: &str) -> (u16, String) {
    app.generate_key_page(csrf, name, "client", "never")
        .await
        .unwrap()
}

async fn check_fault(fault: impl Fn(&FaultyDir)) {
    let dir = FaultyDir::new();
    let data = dir.path.display().to_string();
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY), ("DATA_DIR", &data)]).await;
    let csrf = app.setup_and_login().await;
    let key = app.generate_key(&csrf, "before", "client", "never").await;
    let repo = answer_repo();
    let workspace = app.register_workspace(repo.path()).await;
    let before = snapshot(&dir.path);

    fault(&dir);
    let body = assert_error(ask(&app, &workspace).await, 503, "store-unavailable").await;
    assert!(
        body["error"].as_str().unwrap().contains("data directory"),
        "{body}"
    );
    let other_repo = answer_repo();
    let add = app
        .post_json(
            "/api/workspaces",
            ADMIN_KEY,
            &json!({"name": "x", "path": other_repo.path()}),
        )
        .await;
    assert_error(add, 503, "store-unavailable").await;
    let (status, page) = generate_status(&app, &csrf, "during fault").await;
    assert_eq!(status, 503);
    assert!(page.contains("data directory"));
    assert!(app.me_fresh(&[("x-api-key", &key)]).await.status() == 200);
    assert_eq!(snapshot(&dir.path), before, "nothing stored was damaged");

    dir.clear();
    assert_eq!(ask(&app, &workspace).await.status(), 202, "recovered");
    let (status, page) = generate_status(&app, &csrf, "after the fault").await;
    assert_eq!(status, 303);
    assert!(page.contains("ptk_"));
}

#[tokio::test]
async fn a_full_data_dir_fails_writes_with_503_and_recovers() {
    check_fault(FaultyDir::fill).await;
}

#[tokio::test]
async fn a_read_only_data_dir_fails_writes_with_503_and_recovers() {
    check_fault(FaultyDir::read_only).await;
}

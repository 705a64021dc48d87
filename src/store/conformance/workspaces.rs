//! What every `WorkspaceStore` must do.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;

use crate::store::StoreError;
use crate::workspaces::{Workspace, WorkspaceId, WorkspaceStore};

fn workspace(id: &str, name: &str) -> Workspace {
    Workspace {
        id: WorkspaceId::parse(id).unwrap(),
        name: name.to_owned(),
        path: PathBuf::from(format!("/srv/{name}")),
        repo_url: None,
        target_branch: Some("main".into()),
        created_at: Utc::now(),
    }
}

fn ids(items: &[Workspace]) -> Vec<&str> {
    items.iter().map(|w| w.id.as_str()).collect()
}

/// Runs every check on fresh places below a temporary directory.
pub async fn check(
    open: impl Fn(&Path) -> Arc<dyn WorkspaceStore>,
    fail_writes: impl Fn(&Path, bool),
) {
    let root = tempfile::tempdir().unwrap();
    let place = |name: &str| {
        let dir = root.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        dir
    };
    create_get_list_remove(&open, &place("crud")).await;
    stale_versions_are_refused(&open, &place("versions")).await;
    records_survive_a_reopen(&open, &place("reopen")).await;
    a_failed_write_changes_nothing(&open, &fail_writes, &place("faults")).await;
}

async fn create_get_list_remove(open: &impl Fn(&Path) -> Arc<dyn WorkspaceStore>, at: &Path) {
    let store = open(at);
    let empty = store.list().await.unwrap();
    assert!(empty.value.is_empty());
    assert_eq!(store.get("ws-nothing").await.unwrap(), None);
    let a = workspace("ws-aaaa", "alpha");
    let b = workspace("ws-bbbb", "beta");
    store.insert(empty.version, a.clone()).await.unwrap();
    let one = store.list().await.unwrap();
    assert_ne!(one.version, empty.version, "a write moves the version on");
    store.insert(one.version, b.clone()).await.unwrap();
    let two = store.list().await.unwrap();
    assert_eq!(ids(&two.value), ["ws-aaaa", "ws-bbbb"], "oldest first");
    assert_eq!(store.get("ws-bbbb").await.unwrap(), Some(b));
    assert_eq!(store.remove("ws-aaaa").await.unwrap(), Some(a));
    assert_eq!(store.remove("ws-aaaa").await.unwrap(), None);
    assert_eq!(store.get("ws-aaaa").await.unwrap(), None);
    let after = store.list().await.unwrap();
    assert_eq!(ids(&after.value), ["ws-bbbb"]);
    assert_ne!(after.version, two.version, "a removal moves the version on");
}

async fn stale_versions_are_refused(open: &impl Fn(&Path) -> Arc<dyn WorkspaceStore>, at: &Path) {
    let store = open(at);
    let seen = store.list().await.unwrap();
    store
        .insert(seen.version, workspace("ws-first", "first"))
        .await
        .unwrap();
    let stale = store.insert(seen.version, workspace("ws-second", "second"));
    assert!(matches!(stale.await, Err(StoreError::Conflict)));
    assert_eq!(ids(&store.list().await.unwrap().value), ["ws-first"]);
}

async fn records_survive_a_reopen(open: &impl Fn(&Path) -> Arc<dyn WorkspaceStore>, at: &Path) {
    let store = open(at);
    let a = workspace("ws-kept", "kept");
    store.insert(0, a.clone()).await.unwrap();
    drop(store);
    let again = open(at);
    assert_eq!(again.list().await.unwrap().value, vec![a]);
}

async fn a_failed_write_changes_nothing(
    open: &impl Fn(&Path) -> Arc<dyn WorkspaceStore>,
    fail_writes: &impl Fn(&Path, bool),
    at: &Path,
) {
    let store = open(at);
    let a = workspace("ws-stays", "stays");
    store.insert(0, a.clone()).await.unwrap();
    let before = store.list().await.unwrap();
    fail_writes(at, true);
    let insert = store
        .insert(before.version, workspace("ws-lost", "lost"))
        .await;
    let remove = store.remove("ws-stays").await;
    fail_writes(at, false);
    assert!(matches!(insert, Err(StoreError::Unavailable { .. })));
    assert!(matches!(remove, Err(StoreError::Unavailable { .. })));
    assert_eq!(store.list().await.unwrap(), before);
    assert_eq!(open(at).list().await.unwrap().value, vec![a]);
}

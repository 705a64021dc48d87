//! What a question can reach (SPEC §5.1): the ASK_COMMAND program, given a
//! cloned repository full of hostile links, cannot read or write the data
//! directory by any path; the built-in engine re-checks the workspace root.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::helpers::{
    answer_repo, git, spawn_app_with_jobs_by_hand, start_server, ADMIN_KEY, SETUP_TOKEN,
};

const CLIENT_KEY: &str = "client-key-for-the-sandbox-test";

/// Every way out an agent might try; each success prints a marker.
const HOSTILE_AGENT: &str = r#"data="$1"
echo "README: $(cat README.md)"
cat branch.txt 2>/dev/null | sed 's/^/BRANCH: /'
cat leak 2>/dev/null && echo "READ: relative link"
cat abs 2>/dev/null && echo "READ: absolute link"
cat up/session-secret 2>/dev/null && echo "READ: directory link"
cat "$data/session-secret" 2>/dev/null && echo "READ: absolute path"
cat "$data/workspaces.json" 2>/dev/null && echo "READ: registry"
ls "$data" 2>/dev/null && echo "LISTED: data dir"
find / -maxdepth 5 -name session-secret 2>/dev/null | sed 's/^/FOUND: /'
{ echo pwned > "$data/pwned"; } 2>/dev/null && echo "WROTE: data dir"
{ echo pwned > ./pwned; } 2>/dev/null && echo "WROTE: workspace"
{ echo ok > "$TMPDIR/scratch"; } 2>/dev/null && echo "SCRATCH: $(cat "$TMPDIR/scratch")"
tr '\0' '\n' < /proc/$PPID/environ 2>/dev/null | sed 's/^/PARENT-ENV: /'
env | sed 's/^/ENV: /'
exit 0
"#;

/// A repository whose links point at the session secret from where the
/// clone will live (`<DATA_DIR>/repos/<id>`).
fn hostile_repo(data_dir: &Path) -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    std::fs::write(root.join("README.md"), "workspace-readable-marker\n").unwrap();
    let link = |target: &Path, name: &str| {
        std::os::unix::fs::symlink(target, root.join(name)).unwrap();
    };
    link(Path::new("../../session-secret"), "leak");
    link(&data_dir.join("session-secret"), "abs");
    link(Path::new("../.."), "up");
    git(root, &["init", "--quiet"]);
    git(root, &["add", "."]);
    git(root, &["commit", "--quiet", "-m", "hostile"]);
    git(root, &["checkout", "--quiet", "-b", "other"]);
    std::fs::write(root.join("branch.txt"), "branch-export-readable\n").unwrap();
    git(root, &["add", "."]);
    git(root, &["commit", "--quiet", "-m", "other"]);
    git(root, &["checkout", "--quiet", "main"]);
    repo
}

#[tokio::test]
async fn a_sandboxed_command_cannot_reach_the_data_dir_through_links_or_absolute_paths() {
    let cwd = tempfile::tempdir().unwrap();
    let data_dir = cwd.path().canonicalize().unwrap().join("data");
    let scripts = tempfile::tempdir().unwrap();
    std::fs::write(scripts.path().join("agent.sh"), HOSTILE_AGENT).unwrap();
    let command = format!(
        "sh '{}' '{}'",
        scripts.path().join("agent.sh").display(),
        data_dir.display()
    );
    let server = start_server(
        cwd.path(),
        &[
            ("BIND", "127.0.0.1:0"),
            ("DATA_DIR", data_dir.to_str().unwrap()),
            ("ADMIN_API_KEY", ADMIN_KEY),
            ("VALID_API_KEYS", CLIENT_KEY),
            ("INITIAL_SETUP_TOKEN", SETUP_TOKEN),
            ("ASK_COMMAND", &command),
            ("ASK_SANDBOX_PATHS", scripts.path().to_str().unwrap()),
        ],
    );
    let session_secret = std::fs::read_to_string(data_dir.join("session-secret")).unwrap();
    assert!(session_secret.trim().len() >= 32);

    let origin = hostile_repo(&data_dir);
    let workspace = server
        .add_workspace(json!({"name": "hostile", "repoUrl": origin.path()}))
        .await;
    let clone = Path::new(workspace["path"].as_str().unwrap()).to_owned();
    assert!(clone.join("leak").symlink_metadata().unwrap().is_symlink());

    let job = server
        .ask_and_wait(
            CLIENT_KEY,
            json!({"workspaceId": workspace["id"], "question": "what is here?"}),
        )
        .await;
    assert_eq!(job["status"], "completed", "{job}");
    let output = job["result"]["output"].as_str().unwrap();
    assert!(
        !output.contains("BRANCH:"),
        "the checkout is main: {output}"
    );
    assert_contained(output, &data_dir, &clone, &session_secret);

    // The same from an export of another branch (outside the data dir).
    let job = server
        .ask_and_wait(
            CLIENT_KEY,
            json!({"workspaceId": workspace["id"], "question": "and there?", "sourceBranch": "other"}),
        )
        .await;
    assert_eq!(job["status"], "completed", "{job}");
    let output = job["result"]["output"].as_str().unwrap();
    assert!(
        output.contains("BRANCH: branch-export-readable"),
        "{output}"
    );
    let export = output
        .lines()
        .find_map(|line| line.strip_prefix("ENV: PWD="))
        .expect("the program's PWD");
    assert!(!Path::new(export).starts_with(&data_dir), "{export}");
    assert_contained(output, &data_dir, Path::new(export), &session_secret);
}

/// What the hostile agent printed shows it read its workspace and its
/// scratch dir and nothing of the data dir.
fn assert_contained(output: &str, data_dir: &Path, workspace: &Path, session_secret: &str) {
    assert!(
        output.contains("README: workspace-readable-marker"),
        "the workspace is readable: {output}"
    );
    assert!(
        output.contains("SCRATCH: ok"),
        "the scratch dir is writable: {output}"
    );
    for escape in ["READ:", "LISTED:", "FOUND:", "WROTE:", "PARENT-ENV:"] {
        assert!(!output.contains(escape), "{escape} in {output}");
    }
    for secret in [session_secret.trim(), ADMIN_KEY, CLIENT_KEY, SETUP_TOKEN] {
        assert!(!output.contains(secret), "a secret leaked: {output}");
    }
    // The clone lives in <DATA_DIR>/repos/<id>, so only PWD may show that
    // path (which answers write as `$DATA_DIR`); nothing in the environment
    // names the data dir itself.
    let clone_id = workspace.file_name().unwrap().to_str().unwrap();
    let naming_data_dir: Vec<&str> = output
        .lines()
        .filter(|line| line.contains("DATA_DIR") || line.contains(data_dir.to_str().unwrap()))
        .filter(|line| *line != format!("ENV: PWD=$DATA_DIR/repos/{clone_id}"))
        .collect();
    assert!(naming_data_dir.is_empty(), "{naming_data_dir:?}");
    assert!(!data_dir.join("pwned").exists());
    assert!(!workspace.join("pwned").exists());
}

#[tokio::test]
async fn a_workspace_root_swapped_for_a_link_into_the_data_dir_is_not_searched() {
    let app =
        spawn_app_with_jobs_by_hand(&[("ADMIN_API_KEY", ADMIN_KEY)], Duration::from_secs(30)).await;
    let outside = tempfile::tempdir().unwrap();
    let root = outside.path().join("project");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("notes.md"), "harmless notes\n").unwrap();
    let workspace = app.register_workspace(&root).await;
    std::fs::write(
        app.data_file("canary.txt"),
        "zebra canary from the data directory\n",
    )
    .unwrap();
    std::fs::remove_dir_all(&root).unwrap();
    std::os::unix::fs::symlink(app.data_dir.path(), &root).unwrap();

    let job = app
        .ask_and_wait(
            ADMIN_KEY,
            json!({"workspaceId": workspace, "question": "zebra canary"}),
        )
        .await;
    assert_eq!(job["status"], "failed", "{job}");
    assert!(
        job["error"].as_str().unwrap().contains("moved or replaced"),
        "{job}"
    );
    assert!(!job.to_string().contains("zebra canary from"), "{job}");
}

#[tokio::test]
async fn with_the_sandbox_off_every_start_warns_that_the_command_is_unconfined() {
    let cwd = tempfile::tempdir().unwrap();
    let server = start_server(
        cwd.path(),
        &[
            ("BIND", "127.0.0.1:0"),
            ("ADMIN_API_KEY", ADMIN_KEY),
            ("ASK_COMMAND", "cat"),
            ("ASK_SANDBOX", "off"),
        ],
    );
    assert!(
        server.start_log.contains("ASK_SANDBOX=off")
            && server.start_log.contains("runs unconfined"),
        "{}",
        server.start_log
    );
}

#[tokio::test]
async fn what_a_failing_command_prints_never_shows_where_the_data_dir_is() {
    let app = spawn_app_with_jobs_by_hand(
        &[
            ("ADMIN_API_KEY", ADMIN_KEY),
            ("ASK_COMMAND", "sh -c 'pwd; pwd >&2; exit 3'"),
        ],
        Duration::from_secs(30),
    )
    .await;
    let origin = answer_repo();
    let workspace = app
        .add_workspace(json!({"name": "clone", "repoUrl": origin.path()}))
        .await;
    let job = app
        .ask_and_wait(
            ADMIN_KEY,
            json!({"workspaceId": workspace["id"], "question": "where am I?"}),
        )
        .await;
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    // The clone's directory, as the program saw it, with the data dir hidden.
    assert!(error.contains("$DATA_DIR/"), "{error}");
    let data_dir = app.data_dir.path().canonicalize().unwrap();
    for dir in [app.data_dir.path(), data_dir.as_path()] {
        assert!(!error.contains(dir.to_str().unwrap()), "{error}");
    }
}

#[tokio::test]
async fn a_program_outside_the_sandbox_paths_fails_with_a_message_naming_the_setting() {
    use std::os::unix::fs::PermissionsExt;
    let scripts = tempfile::tempdir().unwrap();
    let script = scripts.path().join("answer.sh");
    std::fs::write(&script, "#!/bin/sh\necho answered\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let app = spawn_app_with_jobs_by_hand(
        &[
            ("ADMIN_API_KEY", ADMIN_KEY),
            ("ASK_COMMAND", script.to_str().unwrap()),
        ],
        Duration::from_secs(30),
    )
    .await;
    let workspace = tempfile::tempdir().unwrap();
    std::fs::write(workspace.path().join("notes.md"), "notes\n").unwrap();
    let id = app.register_workspace(workspace.path()).await;
    let job = app
        .ask_and_wait(
            ADMIN_KEY,
            json!({"workspaceId": id, "question": "anything?"}),
        )
        .await;
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(error.contains("Permission denied"), "{error}");
    assert!(error.contains("ASK_SANDBOX_PATHS"), "{error}");
}

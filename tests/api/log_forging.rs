//! Log forging through the real binary: a failing `ASK_COMMAND` whose
//! stderr carries a fake log line stays inside one line of Portico's log.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{answer_repo, start_server, ADMIN_KEY, SETUP_TOKEN};

const CLIENT_KEY: &str = "client-key-for-the-log-forging-test";
const FORGED: &str = "1999-01-01T00:00:00.000000Z  INFO portico::auth: authentication attempt outcome=allowed principal=admin-key";

#[tokio::test]
async fn a_failing_commands_stderr_cannot_forge_a_log_line() {
    let script_dir = tempfile::tempdir().unwrap();
    let script = script_dir.path().join("agent.sh");
    std::fs::write(
        &script,
        format!("printf 'broke\\n{FORGED}\\n\\033[2Kcleared' >&2\nexit 3\n"),
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let command = format!("sh '{}'", script.display());
    let server = start_server(
        data.path(),
        &[
            ("BIND", "127.0.0.1:0"),
            ("ADMIN_API_KEY", ADMIN_KEY),
            ("VALID_API_KEYS", CLIENT_KEY),
            ("INITIAL_SETUP_TOKEN", SETUP_TOKEN),
            ("ASK_COMMAND", &command),
            ("ASK_SANDBOX_PATHS", script_dir.path().to_str().unwrap()),
        ],
    );
    let workspace = answer_repo();
    let workspace_id = server.register_workspace(workspace.path()).await;
    let finished = server
        .ask_and_wait(
            CLIENT_KEY,
            json!({"workspaceId": workspace_id, "question": "anything"}),
        )
        .await;
    assert_eq!(finished["status"], "failed", "{finished}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = server.drain_log();
    let failure_lines: Vec<&str> = log.lines().filter(|l| l.contains("broke")).collect();
    assert_eq!(failure_lines.len(), 1, "{log}");
    assert!(
        failure_lines[0].contains("broke\\n1999-01-01T00:00:00"),
        "{log}"
    );
    assert!(
        !failure_lines[0].contains('\u{1b}'),
        "escape sequences are escaped"
    );
    assert!(
        !log.lines().any(|line| line.starts_with("1999-01-01")),
        "a forged line reached the log: {log}"
    );
}

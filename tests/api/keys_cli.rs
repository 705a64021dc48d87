//! The library behind `portico keys ...`: the same operations as the API,
//! on a data directory no server holds.

use std::path::Path;

use portico::auth::offline_keys::{self, KeysCommand, KeysCommandError};

use crate::helpers::spawn_app;

/// `offline_keys::run`, retried while the lock of the previous run is
/// still shared with a child that another test is forking (flock locks
/// follow the open file description until the child's exec closes it).
async fn run(dir: &Path, command: KeysCommand) -> Result<String, KeysCommandError> {
    for _ in 0..40 {
        match offline_keys::run(dir, command.clone()).await {
            Err(KeysCommandError::ServerRunning(_)) => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await
            }
            other => return other,
        }
    }
    offline_keys::run(dir, command).await
}

fn create(name: &str) -> KeysCommand {
    KeysCommand::Create {
        name: name.to_owned(),
        role: None,
        expires_days: None,
    }
}

#[tokio::test]
async fn keys_made_offline_print_only_the_key_and_work_once_the_server_starts() {
    let dir = tempfile::tempdir().unwrap();
    let printed = run(dir.path(), create("deploy")).await.unwrap();
    assert_eq!(printed.lines().count(), 1, "{printed}");
    let key = printed.trim_end().to_owned();
    assert!(key.starts_with("ptk_") && key.len() > 50, "{printed}");
    let id = key.split('_').nth(1).unwrap().to_owned();

    let listed = run(dir.path(), KeysCommand::List).await.unwrap();
    assert!(
        listed.contains(&id) && listed.contains("deploy"),
        "{listed}"
    );
    assert!(
        !listed.contains(key.rsplit('_').next().unwrap()),
        "{listed}"
    );
    assert!(!listed.contains("argon2"), "{listed}");

    let rolled = run(
        dir.path(),
        KeysCommand::Roll {
            id: id.clone(),
            grace_seconds: Some(0),
        },
    )
    .await
    .unwrap();
    let new = rolled.trim_end().to_owned();
    assert!(new.starts_with(&format!("ptk_{id}_")) && new != key);

    let data_dir = dir.path().display().to_string();
    let app = spawn_app(&[("DATA_DIR", &data_dir)]).await;
    assert_eq!(app.me_with_key(&new).await.0, 200);
    assert_eq!(app.me_with_key(&key).await.0, 401, "rolled with no grace");

    // While the server holds the data directory, writes are refused and
    // the message names the JSON API.
    let refused = offline_keys::run(dir.path(), create("second"))
        .await
        .unwrap_err();
    assert!(matches!(refused, KeysCommandError::ServerRunning(_)));
    assert!(refused.to_string().contains("/api/keys"), "{refused}");
    drop(app);
}

#[tokio::test]
async fn offline_revocation_and_bad_input_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let key = run(dir.path(), create("old")).await.unwrap();
    let id = key.split('_').nth(1).unwrap().to_owned();
    let revoked = run(dir.path(), KeysCommand::Revoke { id: id.clone() }).await;
    assert_eq!(revoked.unwrap(), "");
    let again = run(dir.path(), KeysCommand::Revoke { id: id.clone() })
        .await
        .unwrap_err();
    assert!(again.to_string().contains(&id), "{again}");
    let bad = run(
        dir.path(),
        KeysCommand::Create {
            name: "x".into(),
            role: Some("root".into()),
            expires_days: None,
        },
    )
    .await
    .unwrap_err();
    assert!(bad.to_string().contains("'client' or 'admin'"), "{bad}");
    let bad = run(
        dir.path(),
        KeysCommand::Create {
            name: "x".into(),
            role: None,
            expires_days: Some(7),
        },
    )
    .await
    .unwrap_err();
    assert!(bad.to_string().contains("30, 90 or 365"), "{bad}");
    let listed = run(dir.path(), KeysCommand::List).await.unwrap();
    assert_eq!(listed.lines().count(), 1, "only the header: {listed}");
    let activity = std::fs::read_to_string(dir.path().join("activity.json")).unwrap();
    assert!(
        activity.contains("key-revoked") && activity.contains("command line"),
        "{activity}"
    );
}

#[test]
fn portico_keys_create_prints_only_the_key_and_list_roll_revoke_work_on_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_dir = data.display().to_string();
    let vars = [("DATA_DIR", data_dir.as_str())];
    let run = |args: &[&str]| {
        let output = crate::helpers::portico_command(dir.path(), &vars)
            .args(args)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    };
    let (code, stdout, stderr) = run(&["keys", "create", "--name", "ci", "--expires-days", "90"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "only the key: {stdout}");
    let key = stdout.trim_end();
    assert!(key.starts_with("ptk_") && key.len() > 50, "{stdout}");
    let id = key.split('_').nth(1).unwrap();
    let (code, listed, _) = run(&["keys", "list"]);
    assert_eq!(code, Some(0));
    assert!(listed.contains(id) && listed.contains("ci"), "{listed}");
    assert!(!listed.contains(key), "{listed}");
    let (code, rolled, stderr) = run(&["keys", "roll", id, "--grace-seconds", "0"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(rolled.trim_end().starts_with(&format!("ptk_{id}_")) && rolled.trim_end() != key);
    let (code, _, stderr) = run(&["keys", "create", "--name", "x", "--role", "root"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("'client' or 'admin'"), "{stderr}");
    let (code, out, stderr) = run(&["keys", "revoke", id]);
    assert_eq!((code, out.as_str()), (Some(0), ""), "{stderr}");
    let (code, _, stderr) = run(&["keys", "revoke", id]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains(id), "{stderr}");
}

#[test]
fn portico_keys_refuses_to_write_while_a_server_holds_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let _server = crate::helpers::start_server(dir.path(), &[("BIND", "127.0.0.1:0")]);
    let output = crate::helpers::portico_command(dir.path(), &[])
        .args(["keys", "create", "--name", "live"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/api/keys"), "names the JSON API: {stderr}");
}

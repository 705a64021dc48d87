//! The command engine, through the real binary: what the program gets
//! (stdin, working directory, environment) and how failures end.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use tempfile::TempDir;

use crate::helpers::{answer_repo, start_server, RunningServer, ADMIN_KEY, SETUP_TOKEN};

const SESSION_SECRET: &str = "session-secret-session-secret-session-secret-session-secret-0123";
const CLIENT_KEY: &str = "client-key-for-the-command-test";

const SCRIPT: &str = r#"out="$1"
cat > "$out/stdin.txt"
pwd -P > "$out/cwd.txt"
env > "$out/env.txt"
case "$(cat "$out/stdin.txt")" in
  *TIMEOUT*) sleep 30 ;;
  *FAIL*) echo "something broke in the agent" >&2; exit 3 ;;
  *HUGE*) head -c 3145728 /dev/zero | tr '\0' 'a' ;;
  *) echo "answer from the agent" ;;
esac
"#;

struct Agent {
    server: RunningServer,
    out: TempDir,
    workspace_id: String,
    workspace: TempDir,
    _script_dir: TempDir,
    _data: TempDir,
}

async fn start_agent() -> Agent {
    let script_dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let script = script_dir.path().join("agent.sh");
    std::fs::write(&script, SCRIPT).unwrap();
    let command = format!("sh '{}' '{}'", script.display(), out.path().display());
    let data = tempfile::tempdir().unwrap();
    let server = start_server(
        data.path(),
        &[
            ("BIND", "127.0.0.1:0"),
            ("ADMIN_API_KEY", ADMIN_KEY),
            ("VALID_API_KEYS", CLIENT_KEY),
            ("SESSION_SECRET", SESSION_SECRET),
            ("INITIAL_SETUP_TOKEN", SETUP_TOKEN),
            ("ASK_COMMAND", &command),
            ("ASK_TIMEOUT_SECS", "2"),
            ("ASK_SANDBOX_PATHS", script_dir.path().to_str().unwrap()),
            ("ASK_SANDBOX_WRITE_PATHS", out.path().to_str().unwrap()),
        ],
    );
    let workspace = answer_repo();
    let workspace_id = server.register_workspace(workspace.path()).await;
    Agent {
        workspace_id,
        server,
        out,
        workspace,
        _script_dir: script_dir,
        _data: data,
    }
}

impl Agent {
    async fn ask(&self, question: &str, context: Option<&str>) -> serde_json::Value {
        let mut body = json!({"workspaceId": self.workspace_id, "question": question});
        if let Some(context) = context {
            body["context"] = json!(context);
        }
        self.server.ask_and_wait(CLIENT_KEY, body).await
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.out.path().join(name)).unwrap()
    }

    fn workspace_path(&self) -> PathBuf {
        self.workspace.path().canonicalize().unwrap()
    }
}

#[tokio::test]
async fn the_program_gets_the_question_on_stdin_in_the_workspace_without_secrets() {
    let agent = start_agent().await;
    let job = agent
        .ask("How are tokens refilled?", Some("We use a token bucket."))
        .await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["result"]["output"], "answer from the agent\n");
    assert_eq!(job["result"]["engine"], "command");
    assert_eq!(
        agent.read("stdin.txt"),
        "How are tokens refilled?\n\nContext:\nWe use a token bucket.\n"
    );
    assert_eq!(
        Path::new(agent.read("cwd.txt").trim()),
        agent.workspace_path()
    );
    let env = agent.read("env.txt");
    for secret in [
        "ADMIN_API_KEY",
        "VALID_API_KEYS",
        "SESSION_SECRET",
        "INITIAL_SETUP_TOKEN",
        ADMIN_KEY,
        CLIENT_KEY,
        SESSION_SECRET,
        SETUP_TOKEN,
    ] {
        assert!(
            !env.contains(secret),
            "the program's environment holds {secret}"
        );
    }
    assert!(env.contains("PATH="), "the rest of the environment is kept");
}

#[tokio::test]
async fn shell_metacharacters_in_the_question_stay_literal() {
    let agent = start_agent().await;
    let marker = agent.out.path().join("pwned");
    let question = format!(
        "$(touch {m}); `touch {m}` | rm -rf ~ && echo hi > {m} ; 'quoted' \"double\"",
        m = marker.display()
    );
    let job = agent.ask(&question, None).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(agent.read("stdin.txt"), format!("{question}\n"));
    assert!(!marker.exists(), "the question was run by a shell");
}

#[tokio::test]
async fn a_program_that_runs_too_long_is_killed_and_the_job_fails() {
    let agent = start_agent().await;
    let started = Instant::now();
    let job = agent.ask("TIMEOUT please", None).await;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["error"], "timed out after 2 s");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn a_non_zero_exit_fails_the_job_with_the_end_of_stderr() {
    let agent = start_agent().await;
    let job = agent.ask("FAIL now", None).await;
    assert_eq!(job["status"], "failed");
    let error = job["error"].as_str().unwrap();
    assert!(
        error.contains("status 3") && error.contains("something broke in the agent"),
        "{error}"
    );
}

#[tokio::test]
async fn huge_output_is_capped_at_one_mebibyte() {
    let agent = start_agent().await;
    let job = agent.ask("HUGE answer", None).await;
    assert_eq!(job["status"], "completed");
    let output = job["result"]["output"].as_str().unwrap();
    let cap = 1024 * 1024;
    assert!(output.as_bytes()[..cap].iter().all(|b| *b == b'a'));
    assert_eq!(&output[cap..], "\n\n[output truncated at 1 MiB]\n");
    assert_eq!(job["result"]["truncated"], true);
}

//! The README's shell examples, run as written against the real binary in a
//! git checkout: every ```sh block in order, in one bash session, with
//! `set -e`. `cargo run` is the binary started in the background (on a free
//! port: the blocks' `127.0.0.1:3000` is rewritten to it). Blocks that are
//! not meant to be run (builds, placeholders) are fenced as `console`.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::answer_repo;

const PRELUDE: &str = r#"set -e
SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}
trap stop_server EXIT
# `cargo run --release` of the README: the built binary, in the background.
cargo() {
  if [ "$1" != run ]; then
    echo "the README test runs only 'cargo run', not 'cargo $*'" >&2
    return 1
  fi
  stop_server
  BIND=127.0.0.1:0 "$PORTICO_BIN" >"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 300); do
    PORTICO_PORT=$(sed -n 's|.*Portico is listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$SERVER_LOG" | head -n 1)
    [ -n "$PORTICO_PORT" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$SERVER_LOG" >&2; return 1; }
    sleep 0.1
  done
  echo "the server did not start" >&2
  return 1
}
"#;

/// Every ```sh block of the README, with the line it starts on.
fn shell_blocks(readme: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (number, line) in readme.lines().enumerate() {
        let fence = line.trim_start();
        match &mut current {
            None if fence == "```sh" => current = Some((number + 1, String::new())),
            Some(_) if fence == "```" => blocks.push(current.take().unwrap()),
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {}
        }
    }
    blocks
}

fn script_of<'a>(blocks: impl IntoIterator<Item = &'a (usize, String)>) -> String {
    let mut script = PRELUDE.to_owned();
    for (line, block) in blocks {
        script.push_str(&format!("echo '### README block at line {line}' >&2\n"));
        script.push_str(&block.replace("127.0.0.1:3000", "127.0.0.1:$PORTICO_PORT"));
    }
    script
}

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `script` with bash in `cwd` (at most 120 s).
fn run_script(cwd: &std::path::Path, script: &str, vars: &[(&str, &str)]) -> Ran {
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("PORTICO_BIN", env!("CARGO_BIN_EXE_portico"))
        .env("SERVER_LOG", log.path())
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash runs");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).unwrap();
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).unwrap();
        text
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the README examples did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ran {
        code: status.code(),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

#[test]
fn every_shell_example_in_the_readme_works_as_written_in_a_checkout() {
    let checkout = answer_repo();
    let blocks = shell_blocks(&readme());
    assert!(blocks.len() >= 6, "found only {} blocks", blocks.len());
    let ran = run_script(checkout.path(), &script_of(&blocks), &[]);
    let (stdout, stderr) = (&ran.stdout, &ran.stderr);
    assert_eq!(ran.code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!stderr.contains("jq: error"), "{stderr}");
    assert!(stdout.contains("\"ok\":true"), "health: {stdout}");
    assert!(stdout.contains("\"role\":\"client\""), "me: {stdout}");
    assert!(
        stdout.contains("}ws-") || stdout.contains("\nws-"),
        "the workspace id is printed: {stdout}"
    );
    assert!(stdout.contains("\"queued\":true"), "the ask: {stdout}");
    assert!(
        stdout.contains("files were searched") || stdout.contains("files searched"),
        "the polled answer: {stdout}"
    );
    assert!(
        checkout.path().join("answer.sh").exists(),
        "the script example ran"
    );
}

#[test]
fn the_readme_poll_loop_stops_with_the_api_message_when_the_ask_fails() {
    let checkout = answer_repo();
    let blocks = shell_blocks(&readme());
    let start = blocks
        .iter()
        .find(|(_, b)| b.contains("VALID_API_KEYS=$PORTICO_KEY") && b.contains("cargo run"))
        .expect("the quick start's server block");
    let poll = blocks
        .iter()
        .find(|(_, b)| b.contains("/api/jobs/$JOB"))
        .expect("the poll loop");
    let begun = Instant::now();
    let ran = run_script(
        checkout.path(),
        &script_of([start, poll]),
        &[("WORKSPACE_ID", "ws-doesnotexist")],
    );
    assert_eq!(ran.code, Some(0), "{}\n{}", ran.stdout, ran.stderr);
    assert!(ran.stderr.contains("Workspace not found"), "{}", ran.stderr);
    assert!(!ran.stdout.contains("null"), "{}", ran.stdout);
    assert!(
        begun.elapsed() < Duration::from_secs(60),
        "no endless polling"
    );
}

/// The README's `ask.mjs`, pointed at `base`.
fn ask_mjs(base: &str) -> String {
    let readme = readme();
    let start = readme
        .find("save as `ask.mjs`")
        .expect("the ask.mjs example");
    let code = &readme[start..];
    let code = &code[code.find("```js\n").unwrap() + 6..];
    let code = &code[..code.find("```").unwrap()];
    code.replace("http://127.0.0.1:3000", base)
}

fn run_node(dir: &std::path::Path, code: &str, vars: &[(&str, &str)]) -> std::process::Output {
    let file = dir.join("ask.mjs");
    std::fs::write(&file, code).unwrap();
    Command::new("node")
        .arg(&file)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars.iter().copied())
        .output()
        .expect("node runs (Node.js 18 or later)")
}

#[tokio::test]
async fn the_readme_ask_mjs_prints_the_answer_or_stops_with_the_api_message() {
    let dir = tempfile::tempdir().unwrap();
    let server = crate::helpers::start_server(
        dir.path(),
        &[
            ("BIND", "127.0.0.1:0"),
            ("ADMIN_API_KEY", crate::helpers::ADMIN_KEY),
        ],
    );
    let repo = answer_repo();
    let workspace = server.register_workspace(repo.path()).await;
    let code = ask_mjs(&server.address);
    let key = crate::helpers::ADMIN_KEY;

    let answered = run_node(
        dir.path(),
        &code,
        &[("PORTICO_KEY", key), ("WORKSPACE_ID", &workspace)],
    );
    let stdout = String::from_utf8_lossy(&answered.stdout);
    assert!(
        answered.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&answered.stderr)
    );
    assert!(stdout.contains("files"), "{stdout}");

    let refused = run_node(
        dir.path(),
        &code,
        &[("PORTICO_KEY", key), ("WORKSPACE_ID", "ws-doesnotexist")],
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("404 not-found: Workspace not found"),
        "{stderr}"
    );

    let bad_key = run_node(
        dir.path(),
        &code,
        &[("PORTICO_KEY", "wrong"), ("WORKSPACE_ID", &workspace)],
    );
    let stderr = String::from_utf8_lossy(&bad_key.stderr);
    assert!(
        stderr.contains("401 invalid-api-key: Invalid API key"),
        "{stderr}"
    );
}

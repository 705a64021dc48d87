//! One queue for both instances: every job runs exactly once, whichever
//! instance took it, and a job held by an instance that dies is taken over
//! by the other when its lease runs out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use portico::config::DEFAULT_JOB_LEASE;
use serde_json::Value;
use tempfile::TempDir;

use super::{shared_workspace, Pair, CLIENT_KEY, OTHER_CLIENT_KEY};
use crate::helpers::{eventually, TestRedis, ADMIN_KEY};

/// Logs the start and the end of every answer with the instance's name
/// (its first argument), so the log shows who ran what and how often.
const AGENT: &str = r#"out="$1"; who="$2"
question="$(cat)"
echo "start $who $question" >> "$out/runs.log"
case "$question" in
  *slow*) sleep 6 ;;
  *) sleep 0.3 ;;
esac
echo "end $who $question" >> "$out/runs.log"
echo "answered by $who: $question"
"#;

/// The agent's directory (script and log) and the command of each instance.
pub struct Agent {
    dir: TempDir,
}

impl Agent {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("agent.sh"), AGENT).unwrap();
        Agent { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, who: &str) -> String {
        format!(
            "sh '{}' '{}' {who}",
            self.path().join("agent.sh").display(),
            self.path().display()
        )
    }

    /// Starts A and B on `redis`, each with two workers and this agent
    /// under its own name.
    pub async fn pair(&self, redis: TestRedis) -> Pair {
        let write = self.path().to_str().unwrap().to_owned();
        let common = [
            ("JOB_CONCURRENCY", "2"),
            ("API_RATE_LIMIT", "100000"),
            ("ASK_SANDBOX_WRITE_PATHS", write.as_str()),
        ];
        let (command_a, command_b) = (self.command("A"), self.command("B"));
        Pair::start_on(
            redis,
            &common,
            &[("ASK_COMMAND", &command_a)],
            &[("ASK_COMMAND", &command_b)],
        )
        .await
    }

    /// Every `start`/`end` line of the log: (event, instance, question).
    pub fn runs(&self) -> Vec<(String, String, String)> {
        let log = std::fs::read_to_string(self.path().join("runs.log")).unwrap_or_default();
        log.lines()
            .map(|line| {
                let mut parts = line.splitn(3, ' ');
                let mut next = || parts.next().unwrap_or_default().to_owned();
                (next(), next(), next())
            })
            .collect()
    }

    pub fn log_path(&self) -> PathBuf {
        self.path().join("runs.log")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_jobs_submitted_to_a_and_b_with_two_workers_each_run_exactly_once() {
    let agent = Agent::new();
    let pair = agent.pair(TestRedis::start()).await;
    let workspace = shared_workspace();
    let id = pair.a.register_workspace(workspace.path()).await;

    let mut jobs = Vec::new();
    for n in 0..20 {
        let server = if n % 2 == 0 { &pair.a } else { &pair.b };
        let key = if n % 4 < 2 {
            CLIENT_KEY
        } else {
            OTHER_CLIENT_KEY
        };
        let question = format!("question {n:02}");
        jobs.push((
            key,
            question.clone(),
            server.ask_question(key, &id, &question).await,
        ));
    }
    for (key, question, job) in &jobs {
        for (_, server) in pair.both() {
            let seen = server.job(key, job).await;
            assert_eq!(seen["id"], *job, "both instances know job {job}");
        }
        let done = pair.b.wait_for_job(key, job).await;
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!(done["attempts"], 1, "{done}");
        let output = done["result"]["output"].as_str().unwrap();
        assert!(output.contains(question.as_str()), "{output}");
    }

    let runs = agent.runs();
    let mut by_question: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    for (event, who, question) in &runs {
        by_question
            .entry(question.as_str())
            .or_default()
            .push((event.as_str(), who.as_str()));
    }
    assert_eq!(by_question.len(), 20, "{runs:?}");
    for (question, events) in &by_question {
        assert_eq!(
            events.len(),
            2,
            "{question} started and ended once: {events:?}"
        );
        assert_eq!(events[0].1, events[1].1, "{question}: on one instance");
    }
    for who in ["A", "B"] {
        assert!(
            runs.iter().any(|(_, w, _)| w == who),
            "instance {who} took jobs too: {runs:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_held_by_an_instance_killed_mid_answer_completes_on_the_other_within_the_lease() {
    let agent = Agent::new();
    let mut pair = agent.pair(TestRedis::start()).await;
    let workspace = shared_workspace();
    let id = pair.a.register_workspace(workspace.path()).await;
    let job = pair.a.ask_question(ADMIN_KEY, &id, "a slow question").await;

    let holder = eventually(Duration::from_secs(20), || async {
        match agent.runs().first() {
            Some((_, who, _)) => Ok(who.clone()),
            None => Err("no instance took the job".to_owned()),
        }
    })
    .await;
    if holder == "A" {
        pair.a.kill();
    } else {
        pair.b.kill();
    }
    let killed_at = Instant::now();
    let survivor = if holder == "A" { &pair.b } else { &pair.a };

    let done: Value = survivor.wait_for_job(ADMIN_KEY, &job).await;
    let took = killed_at.elapsed();
    assert_eq!(done["status"], "completed", "{done}");
    let other = if holder == "A" { "B" } else { "A" };
    let output = done["result"]["output"].as_str().unwrap();
    assert!(
        output.starts_with(&format!("answered by {other}")),
        "{output}"
    );
    assert_eq!(done["attempts"], 2, "taken over once: {done}");
    let limit = DEFAULT_JOB_LEASE + Duration::from_secs(6 + 8);
    assert!(
        took <= limit,
        "taken over and answered {took:?} after the kill (lease {DEFAULT_JOB_LEASE:?})"
    );
    let starts: Vec<String> = agent
        .runs()
        .into_iter()
        .filter(|(event, _, _)| event == "start")
        .map(|(_, who, _)| who)
        .collect();
    assert_eq!(starts, [holder.as_str(), other], "{:?}", agent.log_path());
}

//! Twenty SIGKILLs at arbitrary moments while keys are generated, the
//! password is changed and questions are queued. After every restart each
//! file parses, every key and job whose success was reported is there, and
//! the password is one that existed: the old one or the new one.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{
    answer_repo, find_key, start_server, test_client, TestClient, ADMIN_KEY, SETUP_TOKEN, USERNAME,
};

const ROUNDS: u64 = 20;

fn password(round: u64) -> String {
    format!("round {round} password, long enough")
}

/// Logs in with whichever candidate works; exactly one must.
async fn login(server: &TestClient, candidates: &[String]) -> (TestClient, String) {
    let mut working = Vec::new();
    let mut session = None;
    for candidate in candidates {
        let browser = server.fresh();
        if browser.login(USERNAME, candidate).await.status() == 303 {
            working.push(candidate.clone());
            session = Some(browser);
        }
    }
    assert_eq!(
        working.len(),
        1,
        "exactly one of {candidates:?} must work, these do: {working:?}"
    );
    (session.unwrap(), working.remove(0))
}

fn all_files_parse(data: &std::path::Path) {
    for name in [
        "users.json",
        "api-keys.json",
        "sessions.json",
        "workspaces.json",
    ] {
        let Ok(text) = std::fs::read_to_string(data.join(name)) else {
            continue;
        };
        serde_json::from_str::<serde_json::Value>(&text)
            .unwrap_or_else(|e| panic!("{name} does not parse: {e}"));
    }
    for entry in std::fs::read_dir(data.join("queue")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            serde_json::from_str::<serde_json::Value>(&text)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_sigkills_lose_nothing_that_was_reported_done() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("workspaces");
    let vars = [
        ("BIND", "127.0.0.1:0"),
        ("INITIAL_SETUP_TOKEN", SETUP_TOKEN),
        ("ADMIN_API_KEY", ADMIN_KEY),
        ("API_RATE_LIMIT", "1000000"),
    ];
    let repo = answer_repo();

    let server = start_server(dir.path(), &vars);
    let first = password(0);
    let setup = server.setup_with_password(&first).await;
    assert_eq!(setup.status(), 303, "setup succeeds");
    let workspace_id = server.register_workspace(repo.path()).await;
    drop(server);

    let keys = Arc::new(Mutex::new(Vec::<String>::new()));
    let jobs = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut candidates = vec![first];
    for round in 1..=ROUNDS {
        let mut server = start_server(dir.path(), &vars);
        all_files_parse(&data);
        let base = server.address.clone();
        let (owner, current) = login(&server, &candidates).await;
        let csrf = owner.csrf_token().await;
        let next = password(round);
        let deadline = Instant::now() + Duration::from_secs(5);

        let key_maker = {
            let (owner, csrf, keys) = (owner.clone(), csrf.clone(), keys.clone());
            tokio::spawn(async move {
                for n in 0.. {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let name = format!("crash {round}-{n}");
                    let Ok((_, html)) = owner
                        .generate_key_page(&csrf, &name, "client", "never")
                        .await
                    else {
                        break;
                    };
                    match find_key(&html) {
                        Some(key) => keys.lock().unwrap().push(key),
                        None => break,
                    }
                }
            })
        };
        let asker = {
            let (base, jobs, workspace_id) = (base.clone(), jobs.clone(), workspace_id.clone());
            tokio::spawn(async move {
                let client = test_client();
                while Instant::now() < deadline {
                    let sent = client
                        .post(format!("{base}/api/ask"))
                        .header("x-api-key", ADMIN_KEY)
                        .json(&json!({"workspaceId": workspace_id, "question": format!("token bucket {round}")}))
                        .send()
                        .await;
                    let Ok(response) = sent else { break };
                    if response.status() != 202 {
                        break;
                    }
                    let Ok(body) = response.json::<serde_json::Value>().await else {
                        break;
                    };
                    jobs.lock()
                        .unwrap()
                        .push(body["jobId"].as_str().unwrap().to_owned());
                }
            })
        };
        let changer = {
            let (owner, base, csrf, current, next) = (
                owner.clone(),
                base.clone(),
                csrf.clone(),
                current.clone(),
                next.clone(),
            );
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20 + round * 7 % 90)).await;
                let form = [
                    ("csrf_token", csrf.as_str()),
                    ("current", current.as_str()),
                    ("new", next.as_str()),
                    ("confirm", next.as_str()),
                ];
                let sent = owner
                    .client
                    .post(format!("{base}/dashboard/security/password"))
                    .header("origin", &base)
                    .form(&form)
                    .send()
                    .await;
                sent.is_ok_and(|r| r.status() == 303)
            })
        };

        tokio::time::sleep(Duration::from_millis(40 + (round * 37) % 260)).await;
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        key_maker.await.unwrap();
        asker.await.unwrap();
        candidates = if changer.await.unwrap() {
            vec![next]
        } else {
            vec![current, next]
        };
    }

    let server = start_server(dir.path(), &vars);
    all_files_parse(&data);
    login(&server, &candidates).await;
    let client = server.fresh();
    let keys = keys.lock().unwrap().clone();
    let jobs = jobs.lock().unwrap().clone();
    eprintln!(
        "{ROUNDS} rounds: {} keys and {} jobs reported, password candidates now {candidates:?}",
        keys.len(),
        jobs.len()
    );
    // A key takes two requests (post/redirect/get) and the password change
    // ends the session early in each round, so fewer keys than jobs finish.
    assert!(
        keys.len() >= 3 && jobs.len() >= 10,
        "too little happened: {} keys, {} jobs",
        keys.len(),
        jobs.len()
    );
    for key in &keys {
        let status = client.me(&[("x-api-key", key)]).await.status();
        assert_eq!(status, 200, "a key that was shown is lost");
    }
    // `job` fails at once on a job that is not there; a job that was
    // interrupted runs again and must answer, not fail.
    for id in &jobs {
        let job = server.wait_for_job(ADMIN_KEY, id).await;
        assert_eq!(
            job["status"], "completed",
            "an accepted job did not answer: {job}"
        );
    }
}

//! Crash safety of key storage: a server killed with SIGKILL while several
//! clients generate keys loses no key whose plaintext it returned.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::{find_key, start_server, SETUP_TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_whose_plaintext_was_returned_survive_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let vars = [
        ("BIND", "127.0.0.1:0"),
        ("INITIAL_SETUP_TOKEN", SETUP_TOKEN),
    ];
    let mut server = start_server(dir.path(), &vars);
    let owner = server.http.clone();
    let csrf = owner.setup_and_login().await;

    let returned = Arc::new(Mutex::new(Vec::new()));
    let deadline = Instant::now() + Duration::from_secs(20);
    let generators: Vec<_> = (0..4)
        .map(|worker| {
            let (owner, csrf, returned) = (owner.clone(), csrf.clone(), returned.clone());
            tokio::spawn(async move {
                for n in 0.. {
                    if Instant::now() > deadline {
                        break;
                    }
                    let name = format!("w{worker}-{n}");
                    let sent = owner
                        .generate_key_page(&csrf, &name, "client", "never")
                        .await;
                    let Ok((_, html)) = sent else { break };
                    if let Some(key) = find_key(&html) {
                        returned.lock().unwrap().push(key);
                    }
                }
            })
        })
        .collect();

    while returned.lock().unwrap().len() < 12 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    for generator in generators {
        generator.await.unwrap();
    }
    let returned = returned.lock().unwrap().clone();
    assert!(
        returned.len() >= 12,
        "only {} keys before the kill",
        returned.len()
    );

    let text = std::fs::read_to_string(dir.path().join("workspaces/api-keys.json")).unwrap();
    let records: Vec<serde_json::Value> = serde_json::from_str(&text).expect("the key file parses");
    assert!(records.len() >= returned.len());

    let restarted = start_server(dir.path(), &vars);
    for key in &returned {
        let response = restarted.me(&[("x-api-key", key)]).await;
        assert_eq!(response.status(), 200, "a returned key was lost");
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("workspaces"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporaries of cut-short writes are cleared: {leftovers:?}"
    );
}

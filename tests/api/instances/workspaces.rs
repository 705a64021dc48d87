//! The workspace registry is shared, the files are not: a repository
//! registered on one instance is cloned by another the first time a job
//! needs it there.

use serde_json::json;

use super::{Pair, CLIENT_KEY};
use crate::helpers::answer_repo;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_registered_on_a_is_cloned_by_b_for_its_first_job_there() {
    let mut pair = Pair::start(&[]).await;
    let repo = answer_repo();
    let workspace = pair
        .a
        .add_workspace(json!({"name": "cloned", "repoUrl": repo.path()}))
        .await;
    let id = workspace["id"].as_str().unwrap().to_owned();
    // A goes away with its data directory (another machine's disk): only
    // the registry in Redis remains.
    pair.a.kill();
    let [a_data, b_data] = pair.data_dirs();
    std::fs::remove_dir_all(&a_data).unwrap();

    let (status, listed) = pair.b.get_json("/api/workspaces", CLIENT_KEY).await;
    assert_eq!(status, 200);
    assert!(listed.to_string().contains(&id), "{listed}");
    let question = json!({"workspaceId": id, "question": "how is the token bucket refilled?"});
    let job = pair.b.ask_and_wait(CLIENT_KEY, question).await;
    assert_eq!(job["status"], "completed", "{job}");
    let output = job["result"]["output"].as_str().unwrap();
    assert!(output.contains("src/token_bucket.rs"), "{output}");
    let in_b: Vec<_> = walk(&b_data)
        .into_iter()
        .filter(|p| p.ends_with("src/token_bucket.rs"))
        .collect();
    assert_eq!(
        in_b.len(),
        1,
        "B cloned the repository into its own DATA_DIR: {in_b:?}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() && !path.is_symlink() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

//! Git repositories for workspaces to answer from.

use std::process::Command;

use tempfile::TempDir;

/// Runs git in `dir`, panicking on failure.
pub fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A git repository on branch `main` whose `src/token_bucket.rs` holds the
/// answer to questions about refilling tokens, a git-ignored file that
/// would match too, and a branch `feature` with one more file.
pub fn answer_repo() -> TempDir {
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(
        root.join("src/token_bucket.rs"),
        "/// Refills the token bucket of a client.\n\
         pub fn refill_token_bucket(bucket: &mut TokenBucket, elapsed_secs: u64) {\n\
         \x20   let refill = elapsed_secs * bucket.refill_per_second;\n\
         \x20   bucket.tokens = (bucket.tokens + refill).min(bucket.capacity);\n\
         }\n",
    )
    .unwrap();
    std::fs::write(
        root.join("src/main.rs"),
        "fn main() {\n    println!(\"hello\");\n}\n",
    )
    .unwrap();
    std::fs::write(root.join("README.md"), "# Demo\n\nA demo project.\n").unwrap();
    std::fs::write(root.join(".gitignore"), "ignored_notes.txt\n").unwrap();
    std::fs::write(
        root.join("ignored_notes.txt"),
        "refill token bucket refill token bucket refill token bucket\n",
    )
    .unwrap();
    git(root, &["init", "--quiet"]);
    git(root, &["add", "."]);
    git(root, &["commit", "--quiet", "-m", "initial"]);
    git(root, &["checkout", "--quiet", "-b", "feature"]);
    std::fs::write(
        root.join("src/zebra_feature.rs"),
        "pub fn gallop_zebra_feature() -> &'static str {\n    \"zebras gallop on the feature branch\"\n}\n",
    )
    .unwrap();
    git(root, &["add", "."]);
    git(root, &["commit", "--quiet", "-m", "feature"]);
    git(root, &["checkout", "--quiet", "main"]);
    repo
}

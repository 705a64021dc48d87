//! Repository credentials (SPEC §5.1): a `user:token@` URL clones with the
//! token, which then lives only in a 0600 file: not in any API answer,
//! page, record or the clone's `.git/config`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::json;

use crate::helpers::{answer_repo, git, spawn_app, ADMIN_KEY};

const TOKEN: &str = "s3cret-token-42";
/// `git-user:s3cret-token-42` in base64.
const BASIC: &str = "Basic Z2l0LXVzZXI6czNjcmV0LXRva2VuLTQy";
const CLIENT_KEY: &str = "client-key-for-the-credential-test";

/// Serves `root` over git's dumb HTTP protocol to whoever sends the token.
fn serve_with_password(root: PathBuf) -> (String, actix_web::dev::ServerHandle) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let server = HttpServer::new(move || {
        let root = root.clone();
        App::new().default_service(web::to(move |request: HttpRequest| {
            let root = root.clone();
            async move {
                let authorised = request
                    .headers()
                    .get("authorization")
                    .is_some_and(|value| value == BASIC);
                if !authorised {
                    return HttpResponse::Unauthorized()
                        .insert_header(("WWW-Authenticate", "Basic realm=\"git\""))
                        .finish();
                }
                let relative = request.path().trim_start_matches('/');
                match std::fs::read(root.join(relative)) {
                    Ok(bytes) if !relative.contains("..") => HttpResponse::Ok()
                        .content_type("application/octet-stream")
                        .body(bytes),
                    _ => HttpResponse::NotFound().finish(),
                }
            }
        }))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    (
        format!("http://git-user:{TOKEN}@{address}/repo.git"),
        handle,
    )
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let kind = std::fs::symlink_metadata(&path).unwrap().file_type();
        if kind.is_dir() {
            files.extend(files_under(&path));
        } else if kind.is_file() {
            files.push(path);
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_in_a_repository_url_clones_but_is_never_shown_or_left_in_the_clone() {
    let origin = answer_repo();
    let served = tempfile::tempdir().unwrap();
    let bare = served.path().join("repo.git");
    git(
        served.path(),
        &[
            "clone",
            "--quiet",
            "--bare",
            origin.path().to_str().unwrap(),
            "repo.git",
        ],
    );
    git(&bare, &["update-server-info"]);
    let (url, git_server) = serve_with_password(served.path().to_owned());
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY), ("VALID_API_KEYS", CLIENT_KEY)]).await;

    let response = app
        .post_json(
            "/api/workspaces",
            ADMIN_KEY,
            &json!({"name": "private", "repoUrl": url}),
        )
        .await;
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, 201, "the token was used for the clone: {body}");
    assert!(!body.contains(TOKEN), "{body}");
    let created: serde_json::Value = serde_json::from_str(&body).unwrap();
    let redacted = url.replace(TOKEN, "***");
    assert_eq!(created["repoUrl"], redacted);

    let (_, listed) = app.get_json("/api/workspaces", CLIENT_KEY).await;
    assert!(!listed.to_string().contains(TOKEN), "{listed}");
    assert_eq!(listed[0]["repoUrl"], redacted);

    app.setup_and_login().await;
    let (_, page) = app.page("/dashboard/workspaces").await;
    assert!(!page.contains(TOKEN));
    assert!(
        page.contains("git-user:***@"),
        "the page shows the redacted URL"
    );

    let clone = Path::new(created["path"].as_str().unwrap());
    assert!(clone.join("src/token_bucket.rs").exists());
    let holders: Vec<PathBuf> = files_under(app.data_dir.path())
        .into_iter()
        .filter(|file| {
            std::fs::read(file)
                .is_ok_and(|bytes| bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()))
        })
        .collect();
    assert_eq!(
        holders.len(),
        1,
        "the token is in exactly one file: {holders:?}"
    );
    let secret_file = &holders[0];
    assert!(
        !secret_file.starts_with(clone),
        "{secret_file:?} is inside the clone"
    );
    let mode = std::fs::metadata(secret_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{secret_file:?}");

    let workspace = format!("/api/workspaces/{}", created["id"].as_str().unwrap());
    let removed = app.delete(&workspace, ADMIN_KEY).await;
    assert_eq!(removed.status(), 204);
    assert!(
        !secret_file.exists(),
        "removing the workspace removes its credential"
    );
    git_server.stop(false).await;
}

#[tokio::test]
async fn a_token_stored_by_an_older_version_is_moved_out_at_start() {
    const OLD: &str = "https://bob:tok3n-from-before@example.com/o/r.git";
    let origin = answer_repo();
    let mut app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let created = app
        .add_workspace(json!({"name": "old", "repoUrl": origin.path()}))
        .await;
    let clone = PathBuf::from(created["path"].as_str().unwrap());
    app.restart_with(|app| {
        let file = app.data_file("workspaces.json");
        let text = std::fs::read_to_string(&file).unwrap();
        let from = serde_json::to_string(origin.path()).unwrap();
        std::fs::write(&file, text.replace(&from, &format!("\"{OLD}\""))).unwrap();
        git(&clone, &["remote", "set-url", "origin", OLD]);
    })
    .await;

    let (_, listed) = app.get_json("/api/workspaces", ADMIN_KEY).await;
    assert_eq!(listed[0]["repoUrl"], "https://bob:***@example.com/o/r.git");
    for file in [app.data_file("workspaces.json"), clone.join(".git/config")] {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains("tok3n-from-before"), "{file:?}: {text}");
    }
    let secret_file = app
        .data_file("credentials")
        .join(created["id"].as_str().unwrap());
    let secret = std::fs::read_to_string(&secret_file).unwrap();
    assert_eq!(secret.trim(), "https://bob:tok3n-from-before@example.com");
    let mode = std::fs::metadata(&secret_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

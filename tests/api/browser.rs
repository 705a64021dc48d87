//! The dashboard in a real headless Chromium through WebDriver: setup,
//! login, generate a key, use it, revoke it. Fails, never skips, when the
//! browser is missing. Leaves a screenshot of Account Security under
//! `target/screenshots/`.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::helpers::{spawn_app, TestClient, PASSWORD, SETUP_TOKEN, USERNAME};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver, started as the leader of its own process group: Chromium
/// and its helpers join that group, and dropping the driver kills it all.
pub(crate) struct Driver {
    child: Child,
    url: String,
    profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = self.child.id() as libc::pid_t;
        // SAFETY: killpg only sends a signal; the group is the one this
        // driver leads (its id is not reused before `wait` reaps it).
        unsafe { libc::killpg(group, libc::SIGKILL) };
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The processes whose command line names `profile`: Chromium's, whatever
/// group or session they ended up in.
fn processes_using(profile: &std::path::Path) -> Vec<String> {
    let needle = profile.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let cmdline = std::fs::read(path.join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let state = std::fs::read_to_string(path.join("stat")).ok()?;
            let zombie = state
                .rsplit(") ")
                .next()
                .is_some_and(|s| s.starts_with('Z'));
            (cmdline.contains(&needle) && !zombie).then(|| format!("{}: {cmdline}", path.display()))
        })
        .collect()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) async fn start_browser() -> (Driver, Client) {
    for program in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            std::path::Path::new(program).exists(),
            "{program} is missing: install Debian's chromium and chromium-driver (.ci/run does)"
        );
    }
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        profile: tempfile::tempdir().unwrap(),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen within 20 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                "--disable-dev-shm-usage", "--window-size=1280,1600",
                format!("--user-data-dir={}", driver.profile.path().display()),
            ],
        }),
    );
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session in headless Chromium");
    (driver, client)
}

pub(crate) async fn fill(client: &Client, css: &str, text: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

pub(crate) async fn wait_for_path(client: &Client, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let url = client.current_url().await.unwrap();
        if url.path() == path {
            return;
        }
        assert!(Instant::now() < deadline, "expected {path}, still at {url}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Fills the setup (`with_confirm`) or login form and waits for the dashboard.
pub(crate) async fn submit_login_form(client: &Client, with_confirm: bool) {
    fill(client, "input[name=username]", USERNAME).await;
    fill(client, "input[name=password]", PASSWORD).await;
    if with_confirm {
        fill(client, "input[name=confirm]", PASSWORD).await;
    }
    click(client, "form button[type=submit]").await;
    wait_for_path(client, "/dashboard").await;
}

pub(crate) async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Opens `path` under `base`.
pub(crate) async fn open(client: &Client, base: &str, path: &str) {
    client.goto(&format!("{base}{path}")).await.unwrap();
}

/// Creates the owner through the setup form and waits for the dashboard.
pub(crate) async fn set_up_owner(client: &Client, base: &str) {
    open(client, base, &format!("/setup?token={SETUP_TOKEN}")).await;
    submit_login_form(client, true).await;
}

/// Clicks Log out and waits for the login page.
pub(crate) async fn log_out(client: &Client) {
    click(client, "form.logout button").await;
    wait_for_path(client, "/login").await;
}

/// Generates a key named `name` on Account Security; returns its value.
pub(crate) async fn generate_key(client: &Client, name: &str) -> String {
    fill(client, "input[name=name]", name).await;
    click(client, "form[action='/dashboard/security/keys'] button").await;
    client
        .wait()
        .for_element(Locator::Id("new-key-value"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .expect("the key is in the field")
}

/// Saves a screenshot as `name` under `screenshot_dir()` and returns it.
pub(crate) async fn save_screenshot(client: &Client, name: &str) -> Vec<u8> {
    std::fs::create_dir_all(screenshot_dir()).unwrap();
    let png = client.screenshot().await.unwrap();
    std::fs::write(screenshot_dir().join(name), &png).unwrap();
    png
}

pub(crate) async fn me_status(base: &str, key: &str) -> u16 {
    let response = TestClient::new(base).me(&[("x-api-key", key)]).await;
    response.status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_end_to_end_in_headless_chromium() {
    let app = spawn_app(&[]).await;
    let (driver, client) = start_browser().await;
    let base = app.address.clone();

    set_up_owner(&client, &base).await;

    // Log out and in again through the forms.
    log_out(&client).await;
    submit_login_form(&client, false).await;

    open(&client, &base, "/dashboard/security").await;
    let key = generate_key(&client, "browser key").await;
    assert!(key.starts_with("ptk_"), "{key}");

    let copy = client.find(Locator::Css("button.copy")).await.unwrap();
    copy.click().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while copy.text().await.unwrap() != "Copied" {
        assert!(Instant::now() < deadline, "the copy button reacts");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    assert_eq!(me_status(&base, &key).await, 200);

    let id = key.split('_').nth(1).unwrap().to_owned();
    open(&client, &base, "/dashboard/security").await;
    let page = client.source().await.unwrap();
    assert!(!page.contains(&key), "the key is never shown again");
    save_screenshot(&client, "account-security.png").await;

    click(&client, &format!("tr[data-key-id='{id}'] a.danger")).await;
    // The confirmation page names the key; its button revokes.
    wait_for_path(&client, &format!("/dashboard/security/keys/{id}/revoke")).await;
    assert!(client.source().await.unwrap().contains("browser key"));
    assert_eq!(
        me_status(&base, &key).await,
        200,
        "not revoked before confirming"
    );
    click(&client, ".confirm button.danger").await;
    let flash = client
        .wait()
        .for_element(Locator::Css(".flash-success"))
        .await
        .unwrap();
    assert!(flash.text().await.unwrap().contains("browser key"));
    assert_eq!(me_status(&base, &key).await, 401);

    // Dropped with the session still open, as a failing test would: the
    // whole browser goes with the driver.
    let profile = driver.profile.path().to_owned();
    assert!(
        !processes_using(&profile).is_empty(),
        "Chromium's processes are found by their profile"
    );
    drop(client);
    drop(driver);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = processes_using(&profile);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "browser processes outlived the test: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub(crate) fn screenshot_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("screenshots")
}

#[tokio::test]
async fn the_api_docs_page_renders_the_document_under_the_strict_csp() {
    let app = spawn_app(&[]).await;
    let (_driver, client) = start_browser().await;
    client.goto(&app.url("/api/docs")).await.unwrap();
    let operation = client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(
            "//h3[normalize-space(.)='POST /api/keys/{id}/roll']",
        ))
        .await
        .expect("the script ran and rendered the operations");
    assert!(operation.text().await.unwrap().contains("roll"));
    let page = client.source().await.unwrap();
    assert!(page.contains("ErrorBody"), "the schemas are listed");
    client.close().await.unwrap();
}

//! First run without traps (SPEC §1.1): without `PUBLIC_URL` every loopback
//! name of the bound port works; other host names get 421; a refused form
//! says why; misspelt or impossible settings stop start-up.

use crate::helpers::{
    port_of, run_to_exit, setup_fields, spawn_app, start_server, test_client, SETUP_TOKEN,
};

/// POSTs the setup form as a browser at `origin` would, with `Host` set to
/// that origin's host.
async fn setup_from(base: &str, origin: &str) -> reqwest::Response {
    let host = origin.trim_start_matches("http://");
    test_client()
        .post(format!("{base}/setup"))
        .header("host", host)
        .header("origin", origin)
        .form(&setup_fields(SETUP_TOKEN))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn without_public_url_setup_works_from_localhost_127_0_0_1_and_ipv6_loopback() {
    for name in ["localhost", "127.0.0.1", "[::1]"] {
        let app = spawn_app(&[("PUBLIC_URL", "")]).await;
        let origin = format!("http://{name}:{}", port_of(&app.address));
        let page = test_client()
            .get(app.url("/setup"))
            .header("host", origin.trim_start_matches("http://"))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200, "{name}");
        let response = setup_from(&app.address, &origin).await;
        assert_eq!(response.status(), 303, "setup via {name}");
        assert_eq!(response.headers()["location"], "/dashboard");
    }
}

#[tokio::test]
async fn without_public_url_a_form_from_another_port_is_refused_saying_why() {
    let app = spawn_app(&[("PUBLIC_URL", "")]).await;
    let port = port_of(&app.address);
    let response = setup_from(&app.address, "http://localhost:9").await;
    assert_eq!(response.status(), 403);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("sent from a page at http://localhost:9."),
        "{page}"
    );
    assert!(page.contains(&format!("http://localhost:{port}")), "{page}");
    assert!(
        page.contains(&format!("href=\"{}\"", app.address)),
        "{page}"
    );
    assert!(!page.contains("expired"), "{page}");
}

#[tokio::test]
async fn a_foreign_host_name_gets_421_on_pages_and_the_api_but_not_on_health() {
    let app = spawn_app(&[("PUBLIC_URL", "")]).await;
    let client = test_client();
    let rebound = |path: &str| {
        client.get(app.url(path)).header(
            "host",
            format!("attacker.example:{}", port_of(&app.address)),
        )
    };
    let page = rebound("/setup").send().await.unwrap();
    assert_eq!(page.status(), 421);
    let text = page.text().await.unwrap();
    assert!(
        text.contains("attacker.example") && text.contains("PUBLIC_URL"),
        "{text}"
    );

    let api = rebound("/api/me").send().await.unwrap();
    assert_eq!(api.status(), 421);
    let body: serde_json::Value = api.json().await.unwrap();
    assert_eq!(body["code"], "unknown-host", "{body}");

    assert_eq!(rebound("/api/health").send().await.unwrap().status(), 200);
    let setup = rebound("/setup")
        .header("origin", "http://attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(setup.status(), 421);
}

#[tokio::test]
async fn with_public_url_only_its_name_and_origin_are_accepted() {
    let app = spawn_app(&[("PUBLIC_URL", "https://portico.example.com")]).await;
    let local = test_client().get(app.url("/setup")).send().await.unwrap();
    assert_eq!(local.status(), 421, "127.0.0.1 is not the public name");

    let named = |origin: &str| {
        test_client()
            .post(app.url("/setup"))
            .header("host", "portico.example.com")
            .header("origin", origin.to_owned())
            .form(&setup_fields(SETUP_TOKEN))
            .send()
    };
    let refused = named("http://localhost:3000").await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("accepts forms only from https://portico.example.com"));
    assert_eq!(
        named("https://portico.example.com").await.unwrap().status(),
        303
    );
}

#[tokio::test]
async fn the_start_up_log_prints_the_setup_url_on_the_real_port_and_it_works() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(
        dir.path(),
        &[
            ("BIND", "127.0.0.1:0"),
            ("INITIAL_SETUP_TOKEN", SETUP_TOKEN),
        ],
    );
    let log = server.drain_log();
    let expected = format!("{}/setup?token={SETUP_TOKEN}", server.address);
    assert!(log.contains(&expected), "{log}");
    assert_ne!(port_of(&server.address), 3000);
    let origin = format!("http://localhost:{}", port_of(&server.address));
    assert_eq!(setup_from(&server.address, &origin).await.status(), 303);
}

#[test]
fn a_misspelt_variable_in_env_local_stops_start_up_with_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env.local"), "ALOWED_IPS=10.0.0.1\n").unwrap();
    let (code, stderr) = run_to_exit(dir.path(), &[("BIND", "127.0.0.1:0")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(".env.local")
            && stderr.contains("ALOWED_IPS")
            && stderr.contains("did you mean ALLOWED_IPS?"),
        "{stderr}"
    );
    assert!(!dir.path().join("workspaces").exists(), "nothing created");
}

#[test]
fn a_public_url_with_a_path_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = run_to_exit(
        dir.path(),
        &[
            ("BIND", "127.0.0.1:0"),
            ("PUBLIC_URL", "https://example.com/portico"),
        ],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("PUBLIC_URL") && stderr.contains("path"),
        "{stderr}"
    );
}

#[test]
fn a_short_setup_token_draws_a_warning_that_never_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(
        dir.path(),
        &[
            ("BIND", "127.0.0.1:0"),
            ("INITIAL_SETUP_TOKEN", "abc123xyz"),
        ],
    );
    let log = server.start_log.clone();
    assert!(
        log.contains("INITIAL_SETUP_TOKEN is shorter than 24"),
        "{log}"
    );
    let warning = log.lines().find(|l| l.contains("is shorter")).unwrap();
    assert!(!warning.contains("abc123xyz"), "{warning}");
}

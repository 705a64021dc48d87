//! `ALLOWED_IPS` covers the dashboard (SPEC §2): setup, login and every page
//! answer an outside address with a 403 page; `/api/health` and the static
//! files stay open.

use crate::helpers::{assert_error, setup_fields, spawn_app, TestApp, SETUP_TOKEN};

const DENIED: &str = "Access denied from this IP address";

async fn app_allowing(allowed: &str, trusted: Option<&str>) -> TestApp {
    let mut vars = vec![("ALLOWED_IPS", allowed)];
    if let Some(trusted) = trusted {
        vars.push(("TRUSTED_PROXIES", trusted));
    }
    spawn_app(&vars).await
}

/// Status and body of `method path` sent with `extra` headers (and, for
/// POST, the setup or login form a browser would send).
async fn send(app: &TestApp, method: &str, path: &str, extra: &[(&str, &str)]) -> (u16, String) {
    let browser = app.fresh();
    let response = match method {
        "GET" => browser.get(path, extra).await,
        _ => {
            let form = setup_fields(SETUP_TOKEN);
            browser.post_form_with(path, extra, &form).await
        }
    };
    (response.status().as_u16(), response.text().await.unwrap())
}

const DASHBOARD_REQUESTS: [(&str, &str); 10] = [
    ("GET", "/"),
    ("GET", "/setup"),
    ("POST", "/setup"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/dashboard"),
    ("GET", "/dashboard/security"),
    ("POST", "/dashboard/security/keys"),
    ("GET", "/no-such-page"),
];

async fn assert_refused_everywhere(app: &TestApp, extra: &[(&str, &str)]) {
    for (method, path) in DASHBOARD_REQUESTS {
        let (status, body) = send(app, method, path, extra).await;
        assert_eq!(status, 403, "{method} {path}");
        assert!(body.contains(DENIED), "{method} {path}: {body}");
        assert!(body.contains("/static/"), "a styled page: {body}");
    }
}

#[tokio::test]
async fn an_address_outside_the_allowlist_gets_a_403_page_on_setup_login_and_every_page() {
    let app = app_allowing("10.0.0.1", None).await;
    assert_refused_everywhere(&app, &[]).await;
    let (status, _) = send(&app, "GET", "/api/health", &[]).await;
    assert_eq!(status, 200, "health stays open");
    let (status, css) = send(&app, "GET", "/static/portico.css", &[]).await;
    assert_eq!(status, 200, "the stylesheet stays open");
    assert!(!css.contains(DENIED));
    assert_error(app.me(&[]).await, 403, "ip-not-allowed").await;
    assert!(
        !app.data_file("users.json").exists(),
        "a refused setup created no user"
    );
}

#[tokio::test]
async fn an_allowed_address_sets_up_and_uses_the_dashboard() {
    let app = app_allowing("10.0.0.0/8, 127.0.0.1", None).await;
    let csrf = app.setup_and_login().await;
    assert!(!csrf.is_empty());
    let (status, _) = app.page("/dashboard").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn behind_a_trusted_proxy_chain_the_forwarded_client_decides() {
    let app = app_allowing("203.0.113.0/24", Some("127.0.0.1, 10.0.0.0/8")).await;
    let allowed = [("x-forwarded-for", "203.0.113.7, 10.1.2.3")];
    let (status, body) = send(&app, "GET", "/setup", &allowed).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = send(&app, "POST", "/setup", &allowed).await;
    assert_eq!(status, 303, "an allowed client behind the proxies sets up");
    // The right-most untrusted hop is the client, whatever it put before.
    assert_refused_everywhere(
        &app,
        &[("x-forwarded-for", "203.0.113.7, 198.51.100.9, 10.1.2.3")],
    )
    .await;
    assert_refused_everywhere(&app, &[("x-real-ip", "198.51.100.9")]).await;
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_cannot_open_the_dashboard() {
    let app = app_allowing("203.0.113.0/24", None).await;
    assert_refused_everywhere(&app, &[("x-forwarded-for", "203.0.113.7")]).await;
    assert_refused_everywhere(&app, &[("x-real-ip", "203.0.113.7")]).await;
}

//! The security headers (CSP, `X-Frame-Options`, `nosniff`,
//! `Referrer-Policy`) on every HTML and JSON response, checked by value:
//! every registered route with and without a login, and every error shape
//! the API and the dashboard produce.

use crate::census::{concrete, registered_routes};
use crate::helpers::{spawn_app, TestApp, ADMIN_KEY};

const EXPECTED: [(&str, &str); 4] = [
    (
        "content-security-policy",
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
];

/// What the checked responses were, so the test proves it saw both kinds.
#[derive(Default)]
struct Seen {
    html: usize,
    json: usize,
    statuses: std::collections::BTreeSet<u16>,
}

impl Seen {
    fn check(&mut self, response: &reqwest::Response, what: &str) {
        for (name, value) in EXPECTED {
            let found: Vec<_> = response.headers().get_all(name).iter().collect();
            assert_eq!(found, [value], "{what} ({}): {name}", response.status());
        }
        let kind = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        if kind.starts_with("text/html") {
            self.html += 1;
        } else if kind.starts_with("application/json") {
            self.json += 1;
        }
        self.statuses.insert(response.status().as_u16());
    }
}

async fn send(app: &TestApp, request: reqwest::RequestBuilder) -> reqwest::Response {
    request
        .header("origin", &app.address)
        .send()
        .await
        .expect("request sent")
}

/// Every registered route, GET and POST, with `client`'s credentials.
async fn every_route(app: &TestApp, client: &reqwest::Client, seen: &mut Seen, who: &str) {
    for route in registered_routes().await {
        let url = app.url(&concrete(&route));
        let response = send(app, client.get(&url)).await;
        seen.check(&response, &format!("{who} GET {route}"));
        let response = send(app, client.post(&url).form(&[("x", "y")])).await;
        seen.check(&response, &format!("{who} POST {route}"));
    }
}

#[tokio::test]
async fn every_page_and_every_api_answer_carries_the_security_headers_by_value() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY), ("API_RATE_LIMIT", "1000")]).await;
    let mut seen = Seen::default();
    let anonymous = app.fresh_client();
    every_route(&app, &anonymous, &mut seen, "anonymous").await;

    let csrf = app.setup_and_login().await;
    let key = app.generate_key(&csrf, "headers", "admin", "never").await;
    every_route(&app, &app.client, &mut seen, "logged in").await;
    for page in ["/dashboard", "/dashboard/security", "/no-such-page"] {
        seen.check(&app.get(page, &[]).await, page);
    }

    let keyed = reqwest::Client::builder()
        .default_headers(crate::helpers::headers(&[("x-api-key", &key)]))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    every_route(&app, &keyed, &mut seen, "with a key").await;

    let ask = app.url("/api/ask");
    let errors = [
        (
            "malformed JSON",
            keyed
                .post(&ask)
                .header("content-type", "application/json")
                .body("{"),
        ),
        ("wrong content type", keyed.post(&ask).body("question")),
        (
            "a body over 1 MiB",
            keyed
                .post(&ask)
                .header("content-type", "application/json")
                .body(vec![b' '; 1024 * 1024 + 1]),
        ),
        (
            "an unknown API route",
            keyed.get(app.url("/api/no-such-route")),
        ),
        (
            "a wrong key",
            anonymous
                .get(app.url("/api/me"))
                .header("x-api-key", "wrong"),
        ),
        (
            "the stylesheet",
            anonymous.get(app.url("/static/portico.css")),
        ),
    ];
    for (what, request) in errors {
        seen.check(&send(&app, request).await, what);
    }

    let limited = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY), ("API_RATE_LIMIT", "1")]).await;
    assert_eq!(limited.me(&[("x-api-key", ADMIN_KEY)]).await.status(), 200);
    let refused = limited.me(&[("x-api-key", ADMIN_KEY)]).await;
    seen.check(&refused, "over the quota");
    let fenced = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY), ("ALLOWED_IPS", "10.0.0.1")]).await;
    seen.check(
        &fenced.me(&[("x-api-key", ADMIN_KEY)]).await,
        "outside the allowlist",
    );

    assert!(
        seen.html >= 20 && seen.json >= 40,
        "{} HTML and {} JSON responses checked",
        seen.html,
        seen.json
    );
    for status in [200, 303, 400, 401, 403, 404, 405, 413, 415, 429] {
        assert!(
            seen.statuses.contains(&status),
            "no {status} answer was checked: {:?}",
            seen.statuses
        );
    }
}

//! The route census: every route the application registers is read from
//! the application's own resource map, then tried without credentials. A
//! new route is either behind the API gate, behind the dashboard login, or
//! on the short public list below; anything else fails this test.

use actix_web::{test, web, App, HttpRequest, HttpResponse};

use crate::helpers::{assert_error, spawn_app, ADMIN_KEY};

/// Routes anyone may reach, and why.
const PUBLIC: &[&str] = &[
    "/",                 // redirects to setup, login or the dashboard
    "/setup",            // exists only until the first user; needs the setup token
    "/login",            // the way in
    "/login/code",       // the second step: only for a session that passed the password
    "/static",           // the stylesheet and script
    "/favicon.ico",      // a redirect to the icon under /static
    "/api/health",       // liveness, by the spec
    "/api/openapi.json", // the API's description, by the spec
    "/api/docs",         // renders that description
    "/metrics",          // loopback peers or METRICS_TOKEN only; tested in metrics.rs
];

/// Every registered route pattern, scope prefixes joined, read from the
/// pretty `Debug` form of actix's resource map (its only public view).
pub async fn registered_routes() -> Vec<String> {
    let app = test::init_service(App::new().configure(portico::startup::routes).route(
        "/__census",
        web::get().to(|req: HttpRequest| async move {
            HttpResponse::Ok().body(format!("{:#?}", req.resource_map()))
        }),
    ))
    .await;
    let response =
        test::call_service(&app, test::TestRequest::get().uri("/__census").to_request()).await;
    let map = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();

    let lines: Vec<&str> = map.lines().collect();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut routes = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let text = line.trim();
        if text == "ResourceMap {" {
            stack.retain(|(depth, _)| *depth < indent);
            stack.push((indent, String::new()));
        } else if text == "patterns: Single(" {
            let pattern = lines[index + 1]
                .trim()
                .trim_end_matches(',')
                .trim_matches('"')
                .to_owned();
            if let Some(top) = stack.last_mut() {
                if top.1.is_empty() {
                    top.1 = pattern;
                }
            }
        } else if text == "nodes: None," {
            let path: String = stack.iter().map(|(_, pattern)| pattern.as_str()).collect();
            if path != "/__census" {
                routes.push(if path.is_empty() {
                    "/".to_owned()
                } else {
                    path
                });
            }
        }
    }
    routes
}

pub fn concrete(route: &str) -> String {
    let mut path = String::new();
    let mut in_param = false;
    for c in route.chars() {
        match c {
            '{' => {
                in_param = true;
                path.push_str("census");
            }
            '}' => in_param = false,
            _ if !in_param => path.push(c),
            _ => {}
        }
    }
    path
}

#[actix_web::test]
async fn every_route_is_gated_behind_a_login_or_declared_public() {
    let routes = registered_routes().await;
    for known in [
        "/api/me",
        "/api/ask",
        "/api/jobs/{id}",
        "/api/queue/status",
        "/dashboard/security",
        "/logout",
    ] {
        assert!(
            routes.iter().any(|r| r == known),
            "the census missed {known}: {routes:?}"
        );
    }
    let app = spawn_app(&[]).await;
    assert_eq!(app.setup().await.status(), 303, "setup succeeds");
    let anonymous = app.fresh_client();
    let mut checked = 0;
    for route in &routes {
        let path = concrete(route);
        if PUBLIC.contains(&route.as_str()) {
            continue;
        }
        if route.starts_with("/api/") || route == "/api" {
            for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
                let response = anonymous
                    .request(method.parse().unwrap(), app.url(&path))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    response.headers()["www-authenticate"],
                    "Bearer",
                    "{method} {path}"
                );
                assert_error(response, 401, "missing-api-key").await;
                checked += 1;
            }
        } else if route.starts_with("/dashboard") || route == "/logout" {
            for method in ["GET", "POST"] {
                let response = anonymous
                    .request(method.parse().unwrap(), app.url(&path))
                    .header("origin", &app.address)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 303, "{method} {path}");
                assert_eq!(response.headers()["location"], "/login", "{method} {path}");
                checked += 1;
            }
        } else {
            panic!("{route} is neither under /api, nor a dashboard page, nor on the public list");
        }
    }
    assert!(
        checked >= 40,
        "only {checked} requests were tried: {routes:?}"
    );
}

#[tokio::test]
async fn every_api_route_answers_a_method_it_lacks_with_a_405_in_the_api_shape() {
    let routes: Vec<String> = registered_routes()
        .await
        .into_iter()
        .filter(|route| route.starts_with("/api/"))
        .collect();
    assert!(
        routes.iter().any(|r| r == "/api/keys/{id}/usage"),
        "{routes:?}"
    );
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    for route in &routes {
        // No API route takes PUT.
        let response = app
            .api(reqwest::Method::PUT, &concrete(route), ADMIN_KEY, None)
            .await;
        assert_eq!(response.status(), 405, "PUT {route}");
        assert_error(response, 405, "method-not-allowed").await;
    }
}

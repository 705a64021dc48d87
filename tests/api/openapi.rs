//! The OpenAPI document: public, complete (every `/api` route the app
//! registers is in it and nothing else), and true (real responses validate
//! against the schemas it declares for them).

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::census::registered_routes;
use crate::helpers::{answer_repo, spawn_app, TestApp, ADMIN_KEY};

async fn document(app: &TestApp) -> Value {
    let response = app.fresh().get("/api/openapi.json", &[]).await;
    assert_eq!(response.status(), 200, "public, without a key");
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_document_and_the_application_have_the_same_api_routes() {
    let app = spawn_app(&[]).await;
    let doc = document(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );

    let registered: BTreeSet<String> = registered_routes()
        .await
        .into_iter()
        .filter(|route| route.starts_with("/api/"))
        .collect();
    let documented: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    assert!(registered.len() >= 12, "{registered:?}");
    let undocumented: Vec<_> = registered.difference(&documented).collect();
    let unregistered: Vec<_> = documented.difference(&registered).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the document: {undocumented:?}"
    );
    assert!(
        unregistered.is_empty(),
        "documented routes the app lacks: {unregistered:?}"
    );

    // Every method the app answers is documented too: a method the
    // document does not list answers 405 from the app.
    for (path, operations) in doc["paths"].as_object().unwrap() {
        let concrete = path.replace("{id}", "census");
        for method in ["get", "post", "delete"] {
            if operations.get(method).is_some() {
                continue;
            }
            let verb = method.to_uppercase().parse().unwrap();
            let response = app.api(verb, &concrete, ADMIN_KEY, None).await;
            assert!(
                [401, 405].contains(&response.status().as_u16()),
                "{method} {path} answers {} but is not documented",
                response.status()
            );
        }
    }
}

#[tokio::test]
async fn the_document_declares_both_key_schemes_and_the_error_body() {
    let app = spawn_app(&[]).await;
    let doc = document(&app).await;
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["apiKey"]["type"], "apiKey");
    assert_eq!(schemes["apiKey"]["in"], "header");
    assert_eq!(schemes["apiKey"]["name"], "x-api-key");
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(error["required"], json!(["error", "code"]));
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let public = ["/api/health", "/api/openapi.json", "/api/docs"].contains(&path.as_str());
            assert_eq!(
                operation.get("security").is_none(),
                public,
                "{method} {path}"
            );
            if !public {
                assert!(
                    operation["responses"].get("401").is_some(),
                    "{method} {path}"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_docs_page_uses_only_portico_s_own_assets_under_the_strict_csp() {
    let app = spawn_app(&[]).await;
    let response = app.fresh().get("/api/docs", &[]).await;
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let html = response.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no outside asset: {html}"
    );
    assert!(!html.contains("<script>"), "no inline script");
    let script = app.fresh().get("/static/api-docs.js", &[]).await;
    assert_eq!(script.status(), 200);
    let script = script.text().await.unwrap();
    assert!(script.contains("/api/openapi.json"));
    assert!(
        !script.contains("innerHTML"),
        "the document is rendered as text"
    );
}

/// The schema the document declares for `method path` answering `status`,
/// made strict (no undeclared fields) and self-contained.
fn response_schema(doc: &Value, path: &str, method: &str, status: u16) -> Value {
    let declared = &doc["paths"][path][method]["responses"][status.to_string()];
    assert!(
        !declared.is_null(),
        "{method} {path} does not declare {status}"
    );
    let mut schema = declared["content"]["application/json"]["schema"].clone();
    assert!(
        !schema.is_null(),
        "{method} {path} {status} has no JSON schema"
    );
    let mut components = doc["components"].clone();
    for (_, component) in components["schemas"].as_object_mut().unwrap() {
        if component.get("properties").is_some() {
            component["additionalProperties"] = json!(false);
        }
    }
    schema["components"] = components;
    schema
}

async fn check(doc: &Value, path: &str, method: &str, response: reqwest::Response) -> Value {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    let schema = response_schema(doc, path, method, status);
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON schema");
    let errors: Vec<String> = validator
        .iter_errors(&body)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: {errors:?}\n{body}"
    );
    body
}

#[tokio::test]
async fn real_responses_of_every_endpoint_match_the_document() {
    let app = spawn_app(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let doc = document(&app).await;
    let client = app.fresh_client();
    let send = |method: &str, path: &str, body: Option<Value>, key: Option<&str>| {
        let mut request = client.request(method.parse().unwrap(), app.url(path));
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };
    let admin = Some(ADMIN_KEY);

    let r = send("GET", "/api/health", None, None).await.unwrap();
    check(&doc, "/api/health", "get", r).await;
    let r = send("GET", "/api/me", None, admin).await.unwrap();
    check(&doc, "/api/me", "get", r).await;
    let r = send("GET", "/api/me", None, None).await.unwrap();
    check(&doc, "/api/me", "get", r).await;

    let r = send(
        "POST",
        "/api/keys",
        Some(json!({"name": "ci", "expiresInDays": 90})),
        admin,
    )
    .await
    .unwrap();
    let created = check(&doc, "/api/keys", "post", r).await;
    let id = created["record"]["id"].as_str().unwrap().to_owned();
    let client_key = created["key"].as_str().unwrap().to_owned();
    let r = send("POST", "/api/keys", Some(json!({"name": ""})), admin)
        .await
        .unwrap();
    check(&doc, "/api/keys", "post", r).await;
    let r = send(
        "POST",
        "/api/keys",
        Some(json!({"name": "x"})),
        Some(&client_key),
    )
    .await
    .unwrap();
    check(&doc, "/api/keys", "post", r).await;
    let roll = format!("/api/keys/{id}/roll");
    let r = send("POST", &roll, Some(json!({"graceSeconds": 60})), admin)
        .await
        .unwrap();
    check(&doc, "/api/keys/{id}/roll", "post", r).await;
    let r = send("POST", "/api/keys/nosuchkey1/roll", None, admin)
        .await
        .unwrap();
    check(&doc, "/api/keys/{id}/roll", "post", r).await;
    let r = send("GET", "/api/keys", None, admin).await.unwrap();
    check(&doc, "/api/keys", "get", r).await;
    let usage = format!("/api/keys/{id}/usage");
    let r = send("GET", &usage, None, admin).await.unwrap();
    check(&doc, "/api/keys/{id}/usage", "get", r).await;
    let r = send("GET", "/api/keys/nosuchkey1/usage", None, admin)
        .await
        .unwrap();
    check(&doc, "/api/keys/{id}/usage", "get", r).await;
    let r = send("DELETE", "/api/keys/nosuchkey1", None, admin)
        .await
        .unwrap();
    check(&doc, "/api/keys/{id}", "delete", r).await;

    let repo = answer_repo();
    let r = send(
        "POST",
        "/api/workspaces",
        Some(json!({"name": "demo", "path": repo.path()})),
        admin,
    )
    .await
    .unwrap();
    let workspace = check(&doc, "/api/workspaces", "post", r).await;
    let workspace_id = workspace["id"].as_str().unwrap().to_owned();
    let r = send(
        "POST",
        "/api/workspaces",
        Some(json!({"name": "demo"})),
        admin,
    )
    .await
    .unwrap();
    check(&doc, "/api/workspaces", "post", r).await;
    let r = send("GET", "/api/workspaces", None, admin).await.unwrap();
    check(&doc, "/api/workspaces", "get", r).await;

    let question =
        json!({"workspaceId": workspace_id, "question": "how is the token bucket refilled?"});
    let r = send("POST", "/api/ask", Some(question), admin)
        .await
        .unwrap();
    let queued = check(&doc, "/api/ask", "post", r).await;
    let job_id = queued["jobId"].as_str().unwrap().to_owned();
    app.wait_for_job(ADMIN_KEY, &job_id).await;
    let r = send("GET", &format!("/api/jobs/{job_id}"), None, admin)
        .await
        .unwrap();
    let job = check(&doc, "/api/jobs/{id}", "get", r).await;
    assert_eq!(job["status"], "completed", "{job}");
    let r = send("DELETE", &format!("/api/jobs/{job_id}"), None, admin)
        .await
        .unwrap();
    check(&doc, "/api/jobs/{id}", "delete", r).await;
    let r = send("GET", "/api/jobs", None, admin).await.unwrap();
    check(&doc, "/api/jobs", "get", r).await;
    let r = send("GET", "/api/jobs?limit=0", None, admin).await.unwrap();
    check(&doc, "/api/jobs", "get", r).await;
    let r = send("GET", "/api/queue/status", None, admin).await.unwrap();
    check(&doc, "/api/queue/status", "get", r).await;
    let r = send(
        "DELETE",
        &format!("/api/workspaces/{workspace_id}-gone"),
        None,
        admin,
    )
    .await
    .unwrap();
    check(&doc, "/api/workspaces/{id}", "delete", r).await;
}

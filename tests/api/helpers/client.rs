//! `TestClient`: the one client API every test speaks to Portico with,
//! whether the server runs in-process (`TestApp`) or as the binary
//! (`RunningServer`); both dereference to it.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::cookie::{CookieStore, Jar};
use reqwest::{Method, Response};
use serde_json::{json, Value};

use super::{
    csrf_in, find_key, headers, setup_fields_with, ADMIN_KEY, PASSWORD, SETUP_TOKEN, USERNAME,
};

/// A waiting test asks again after 10 ms, then twice as long each time up
/// to this: quick answers are seen at once, and a slow job costs no more
/// requests (each counted against the key's hourly quota) than a steady
/// 100 ms poll.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How long a job may take before a test gives up on it.
pub const JOB_DEADLINE: Duration = Duration::from_secs(60);

/// A browser-like client of one Portico: its own cookie jar, redirects
/// off, and helpers that send what the dashboard and the API expect.
#[derive(Clone)]
pub struct TestClient {
    /// `http://host:port`, also the `Origin` the dashboard's forms send.
    pub address: String,
    /// The client holding this browser's cookies.
    pub client: reqwest::Client,
    pub cookies: Arc<Jar>,
}

impl TestClient {
    /// A new browser, without cookies, for the server at `address`.
    pub fn new(address: impl Into<String>) -> Self {
        let cookies = Arc::new(Jar::default());
        TestClient {
            address: address.into(),
            client: client_with(cookies.clone()),
            cookies,
        }
    }

    /// A second browser for the same server.
    pub fn fresh(&self) -> TestClient {
        TestClient::new(self.address.clone())
    }

    /// The same browser (its cookies) pointed at another address, as
    /// after a restart on a new port: cookies do not tell ports apart.
    pub fn at(&self, address: &str) -> TestClient {
        TestClient {
            address: address.to_owned(),
            ..self.clone()
        }
    }

    /// A new `reqwest` client with no cookies.
    pub fn fresh_client(&self) -> reqwest::Client {
        test_client()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// The session cookie this browser holds, as a `Cookie` header value.
    pub fn session_cookie(&self) -> Option<String> {
        let url = self.address.parse().unwrap();
        let header = self.cookies.cookies(&url)?;
        header
            .to_str()
            .unwrap()
            .split("; ")
            .find(|c| c.starts_with("portico_session="))
            .map(str::to_owned)
    }

    /// A GET from this browser (with its cookies) and extra headers.
    pub async fn get(&self, path: &str, pairs: &[(&str, &str)]) -> Response {
        self.client
            .get(self.url(path))
            .headers(headers(pairs))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn page(&self, path: &str) -> (u16, String) {
        let response = self.get(path, &[]).await;
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// POSTs a form as the dashboard's own pages do (same `Origin`).
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.post_form_with(path, &[], fields).await
    }

    /// POSTs a dashboard form: the session's CSRF token, then `fields`.
    pub async fn submit(&self, path: &str, csrf: &str, fields: &[(&str, &str)]) -> Response {
        let mut form = vec![("csrf_token", csrf)];
        form.extend_from_slice(fields);
        self.post_form(path, &form).await
    }

    /// `post_form` with extra headers.
    pub async fn post_form_with(
        &self,
        path: &str,
        pairs: &[(&str, &str)],
        fields: &[(&str, &str)],
    ) -> Response {
        self.client
            .post(self.url(path))
            .header("origin", &self.address)
            .headers(headers(pairs))
            .form(fields)
            .send()
            .await
            .expect("request sent")
    }

    /// Creates the owner with `SETUP_TOKEN` and `PASSWORD` (which logs in).
    pub async fn setup(&self) -> Response {
        self.setup_with_password(PASSWORD).await
    }

    pub async fn setup_with_password(&self, password: &str) -> Response {
        self.post_form("/setup", &setup_fields_with(SETUP_TOKEN, password))
            .await
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.post_form("/login", &[("username", username), ("password", password)])
            .await
    }

    /// Creates the owner (which logs in) and returns the CSRF token.
    pub async fn setup_and_login(&self) -> String {
        let response = self.setup().await;
        assert_eq!(response.status(), 303, "setup succeeds");
        self.csrf_token().await
    }

    /// A login from a new browser behind a trusted proxy that names
    /// `address` as the client (`X-Forwarded-For`).
    pub async fn login_from(&self, address: &str, username: &str, password: &str) -> Response {
        self.fresh()
            .post_form_with(
                "/login",
                &[("x-forwarded-for", address)],
                &[("username", username), ("password", password)],
            )
            .await
    }

    /// The status of a login of the owner from a new browser.
    pub async fn fresh_login_status(&self, password: &str) -> u16 {
        self.fresh()
            .login(USERNAME, password)
            .await
            .status()
            .as_u16()
    }

    /// The CSRF token of this browser's session.
    pub async fn csrf_token(&self) -> String {
        let (status, html) = self.page("/dashboard/security").await;
        assert_eq!(status, 200, "logged in");
        csrf_in(&html)
    }

    /// Generates a key on Account Security and returns its plaintext.
    pub async fn generate_key(&self, csrf: &str, name: &str, role: &str, expiry: &str) -> String {
        let (status, html) = self
            .generate_key_page(csrf, name, role, expiry)
            .await
            .expect("the request is answered");
        assert_eq!(status, 303, "{html}");
        find_key(&html).expect("the new key is on the page")
    }

    /// Sends the generate-key form and, when it redirects, follows to the
    /// page that shows the key once. Returns the form's status and the
    /// final page; a connection error is returned, not a panic.
    pub async fn generate_key_page(
        &self,
        csrf: &str,
        name: &str,
        role: &str,
        expiry: &str,
    ) -> reqwest::Result<(u16, String)> {
        let response = self
            .client
            .post(self.url("/dashboard/security/keys"))
            .header("origin", &self.address)
            .form(&[
                ("csrf_token", csrf),
                ("name", name),
                ("role", role),
                ("expiry", expiry),
            ])
            .send()
            .await?;
        let status = response.status().as_u16();
        let Some(location) = response.headers().get("location").cloned() else {
            return Ok((status, response.text().await?));
        };
        let page = self
            .client
            .get(self.url(location.to_str().unwrap()))
            .send()
            .await?;
        Ok((status, page.text().await?))
    }

    /// `GET /api/me` from this browser (its session too) with `pairs`.
    pub async fn me(&self, pairs: &[(&str, &str)]) -> Response {
        self.get("/api/me", pairs).await
    }

    /// `GET /api/me` with `x-api-key`, returning the status and JSON body.
    pub async fn me_with_key(&self, key: &str) -> (u16, Value) {
        status_and_json(self.me(&[("x-api-key", key)]).await).await
    }

    /// `GET /api/me` from a new client (no session) with only `pairs`.
    pub async fn me_fresh(&self, pairs: &[(&str, &str)]) -> Response {
        self.api_with(Method::GET, "/api/me", pairs, None).await
    }

    /// An API call from a client without cookies, with `pairs` as its
    /// only headers (credentials in either form) and a JSON body if given.
    pub async fn api_with(
        &self,
        method: Method,
        path: &str,
        pairs: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Response {
        let mut request = self
            .fresh_client()
            .request(method, self.url(path))
            .headers(headers(pairs));
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request sent")
    }

    /// An API call with `key` in `x-api-key` and nothing else.
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<&Value>,
    ) -> Response {
        self.api_with(method, path, &[("x-api-key", key)], body)
            .await
    }

    pub async fn post_json(&self, path: &str, key: &str, body: &Value) -> Response {
        self.api(Method::POST, path, key, Some(body)).await
    }

    pub async fn patch_json(&self, path: &str, key: &str, body: &Value) -> Response {
        self.api(Method::PATCH, path, key, Some(body)).await
    }

    pub async fn delete(&self, path: &str, key: &str) -> Response {
        self.api(Method::DELETE, path, key, None).await
    }

    /// A GET with `key`; the status and the JSON body (`Null` if none).
    pub async fn get_json(&self, path: &str, key: &str) -> (u16, Value) {
        let response = self.api(Method::GET, path, key, None).await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Creates a key with the admin key (`POST /api/keys` with `body`);
    /// returns the key and its id.
    pub async fn create_key(&self, body: Value) -> (String, String) {
        let response = self.post_json("/api/keys", ADMIN_KEY, &body).await;
        assert_eq!(response.status(), 201, "creating {body}");
        let created: Value = response.json().await.unwrap();
        (
            created["key"].as_str().unwrap().to_owned(),
            created["record"]["id"].as_str().unwrap().to_owned(),
        )
    }

    /// Registers `path` as a workspace with the admin key; returns its id.
    pub async fn register_workspace(&self, path: &std::path::Path) -> String {
        self.register_workspace_named("demo", path).await
    }

    pub async fn register_workspace_named(&self, name: &str, path: &std::path::Path) -> String {
        let workspace = self
            .add_workspace(json!({"name": name, "path": path}))
            .await;
        workspace["id"].as_str().unwrap().to_owned()
    }

    /// `POST /api/workspaces` with the admin key and `body`, which must
    /// succeed; returns the new workspace.
    pub async fn add_workspace(&self, body: Value) -> Value {
        let response = self.post_json("/api/workspaces", ADMIN_KEY, &body).await;
        assert_eq!(response.status(), 201, "registering {body}");
        response.json().await.unwrap()
    }

    /// Queues a question (`POST /api/ask` with `body`); returns the job id.
    pub async fn ask(&self, key: &str, body: Value) -> String {
        let response = self.post_json("/api/ask", key, &body).await;
        assert_eq!(response.status(), 202);
        let answer: Value = response.json().await.unwrap();
        answer["jobId"].as_str().unwrap().to_owned()
    }

    /// Queues `question` about a workspace; returns the job id.
    pub async fn ask_question(&self, key: &str, workspace_id: &str, question: &str) -> String {
        self.ask(
            key,
            json!({"workspaceId": workspace_id, "question": question}),
        )
        .await
    }

    /// Queues a question and waits for its job to finish; returns the job.
    pub async fn ask_and_wait(&self, key: &str, body: Value) -> Value {
        let id = self.ask(key, body).await;
        self.wait_for_job(key, &id).await
    }

    /// `GET /api/jobs/{id}`; a job that is not there (a lost job) fails
    /// the test at once.
    pub async fn job(&self, key: &str, id: &str) -> Value {
        let (status, body) = self.get_json(&format!("/api/jobs/{id}"), key).await;
        assert_eq!(status, 200, "job {id} is not there: {body}");
        body
    }

    /// Polls a job until it is completed or failed.
    pub async fn wait_for_job(&self, key: &str, id: &str) -> Value {
        self.wait_for_job_until(key, id, |job| {
            job["status"] == "completed" || job["status"] == "failed"
        })
        .await
    }

    /// Polls a job until `done` holds for it (at most `JOB_DEADLINE`).
    pub async fn wait_for_job_until(
        &self,
        key: &str,
        id: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        eventually(JOB_DEADLINE, || async {
            let job = self.job(key, id).await;
            if done(&job) {
                Ok(job)
            } else {
                Err(format!("job {id} did not get there: {job}"))
            }
        })
        .await
    }
}

/// Runs `probe` until it returns `Ok`, at most every `POLL_INTERVAL`; after
/// `deadline` the test fails with the last `Err`.
pub async fn eventually<T, F, Fut>(deadline: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let give_up = Instant::now() + deadline;
    let mut pause = Duration::from_millis(10);
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) => assert!(Instant::now() < give_up, "{last} (after {deadline:?})"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(POLL_INTERVAL);
    }
}

/// The status and the JSON body of an answer.
pub async fn status_and_json(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

fn client_with(cookies: Arc<Jar>) -> reqwest::Client {
    builder()
        .cookie_provider(cookies)
        .build()
        .expect("a reqwest client")
}

/// A client with a cookie store of its own and redirects off.
pub fn test_client() -> reqwest::Client {
    builder()
        .cookie_store(true)
        .build()
        .expect("a reqwest client")
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
}

//! `TestClient`'s API side: calls with a key in either header, keys,
//! workspaces, questions, and waiting for jobs.

use std::future::Future;
use std::time::{Duration, Instant};

use reqwest::{Method, Response};
use serde_json::{json, Value};

use super::{headers, TestClient, ADMIN_KEY};

/// A waiting test asks again after 10 ms, then twice as long each time up
/// to this: quick answers are seen at once, and a slow job costs no more
/// requests (each counted against the key's hourly quota) than a steady
/// 100 ms poll.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How long a job may take before a test gives up on it.
pub const JOB_DEADLINE: Duration = Duration::from_secs(60);

impl TestClient {
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

//! `TestClient`: the one client API every test speaks to Portico with,
//! whether the server runs in-process (`TestApp`) or as the binary
//! (`RunningServer`); both dereference to it. This file holds the browser
//! side (pages, forms, login, keys on Account Security); api.rs the API.

use std::sync::Arc;
use std::time::Duration;

use reqwest::cookie::{CookieStore, Jar};
use reqwest::Response;

use super::{csrf_in, find_key, headers, setup_fields_with, PASSWORD, SETUP_TOKEN, USERNAME};

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

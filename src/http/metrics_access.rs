//! Who may read `/metrics`: a loopback client, or anyone presenting
//! `Authorization: Bearer $METRICS_TOKEN`. The client is the address the
//! API gate would see (TRUSTED_PROXIES honoured), so a reverse proxy on the
//! same host does not make every visitor "loopback".

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use secrecy::SecretString;
use serde_json::json;

use crate::core::address::{client_address, TrustedProxies};
use crate::core::secrets_match;

pub struct MetricsAccess {
    token: Option<SecretString>,
    trusted_proxies: TrustedProxies,
}

impl MetricsAccess {
    pub fn new(token: Option<SecretString>, trusted_proxies: TrustedProxies) -> Self {
        Self {
            token,
            trusted_proxies,
        }
    }

    fn token_matches(&self, req: &HttpRequest) -> bool {
        let Some(token) = &self.token else {
            return false;
        };
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim);
        presented.is_some_and(|presented| secrets_match(presented, token))
    }

    /// `None` when the request may read the metrics, else the refusal.
    pub fn refusal(&self, req: &HttpRequest) -> Option<HttpResponse> {
        let client = client_address(req.peer_addr(), req.headers(), &self.trusted_proxies);
        if client.is_loopback() || self.token_matches(req) {
            return None;
        }
        let (mut response, message, code) = if self.token.is_some() {
            let mut response = HttpResponse::Unauthorized();
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            (
                response,
                "Metrics need Authorization: Bearer with the METRICS_TOKEN value",
                "invalid-metrics-token",
            )
        } else {
            (
                HttpResponse::Forbidden(),
                "Metrics are served to loopback clients only; set METRICS_TOKEN to allow others",
                "metrics-forbidden",
            )
        };
        Some(
            response
                .insert_header(("Cache-Control", "no-store"))
                .json(json!({ "error": message, "code": code })),
        )
    }
}

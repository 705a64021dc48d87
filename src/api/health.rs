//! `GET /api/health`: open to anyone, for load balancers and container
//! checks. It says which store holds the state and whether it answers; with
//! Redis unreachable it answers 503, so a balancer drains the instance.

use actix_web::{web, HttpResponse};
use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::store::redis::Redis;

/// Where the shared state is, and whether it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StoreState {
    /// The embedded file store in `DATA_DIR`.
    File,
    /// Redis (`REDIS_URL`), answering.
    Redis,
    /// Redis does not answer: everything but environment keys answers 503.
    Unavailable,
}

/// What `/api/health` asks about the store: nothing for the file store
/// (the process is the store), a `PING` for Redis.
#[derive(Debug, Clone)]
pub struct StoreProbe(Option<Redis>);

impl StoreProbe {
    pub fn files() -> Self {
        Self(None)
    }

    pub fn redis(redis: Redis) -> Self {
        Self(Some(redis))
    }

    pub async fn state(&self) -> StoreState {
        match &self.0 {
            None => StoreState::File,
            Some(redis) => match redis.ping().await {
                Ok(()) => StoreState::Redis,
                Err(err) => {
                    tracing::warn!(error = format!("{err:#}"), "health: Redis does not answer");
                    StoreState::Unavailable
                }
            },
        }
    }
}

/// Liveness and the store: answers without credentials.
#[utoipa::path(get, path = "/api/health", tag = "meta",
    responses(
        (status = 200, description = "The server is up and its store answers", body = super::schemas::Health),
        (status = 503, description = "Redis does not answer (`store` is `unavailable`): \
            take this instance out of the balancer", body = super::schemas::Health),
    ))]
pub(crate) async fn health(probe: web::Data<StoreProbe>) -> HttpResponse {
    let store = probe.state().await;
    let ok = store != StoreState::Unavailable;
    let mut response = if ok {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    response.json(json!({
        "ok": ok,
        "timestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        "store": store,
    }))
}

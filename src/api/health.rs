//! `GET /api/health`: open to anyone, for load balancers and container
//! checks. It says which store holds the state and whether it answers; with
//! Redis unreachable it answers 503, so a balancer drains the instance.

use actix_web::{web, HttpResponse};
use chrono::{SecondsFormat, Utc};
use serde_json::json;

use crate::store::{StoreProbe, StoreState};

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

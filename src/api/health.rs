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
            take this instance out of the balancer; `diverged` (with a `reason`): Redis lost \
            its data and holds other shared secrets than this instance uses, restart it", body = super::schemas::Health),
    ))]
pub(crate) async fn health(probe: web::Data<StoreProbe>) -> HttpResponse {
    let store = probe.state().await;
    let ok = matches!(store, StoreState::File | StoreState::Redis);
    let mut response = if ok {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    let mut body = json!({
        "ok": ok,
        "timestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        "store": store,
    });
    if store == StoreState::Diverged {
        body["reason"] = probe.reason().into();
    }
    response.json(body)
}

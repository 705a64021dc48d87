//! `GET /metrics`: the Prometheus text format, for loopback clients or
//! with `Authorization: Bearer $METRICS_TOKEN` (outside `/api`, so not
//! behind the API gate).

use actix_web::{web, HttpRequest, HttpResponse};

use crate::http::metrics_access::MetricsAccess;
use crate::jobs::JobStore;

pub async fn scrape(
    req: HttpRequest,
    access: web::Data<MetricsAccess>,
    queue: web::Data<dyn JobStore>,
) -> HttpResponse {
    if let Some(refusal) = access.refusal(&req) {
        return refusal;
    }
    let counts = match queue.counts(&|_| true).await {
        Ok(counts) => counts,
        Err(err) => {
            tracing::error!(
                error = format!("{err:#}"),
                "cannot count the jobs for /metrics"
            );
            return HttpResponse::ServiceUnavailable().finish();
        }
    };
    for (status, count) in [
        ("pending", counts.pending),
        ("processing", counts.processing),
        ("completed", counts.completed),
        ("failed", counts.failed),
    ] {
        crate::metrics::jobs_in_queue(status, count);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(crate::metrics::render())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/metrics")
            .route(web::get().to(scrape))
            .default_service(web::to(HttpResponse::MethodNotAllowed)),
    );
}

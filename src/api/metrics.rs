//! `GET /metrics`: the Prometheus text format, for loopback clients or
//! with `Authorization: Bearer $METRICS_TOKEN` (outside `/api`, so not
//! behind the API gate).

use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::{web, HttpRequest, HttpResponse};

use crate::http::metrics_access::MetricsAccess;
use crate::jobs::JobStore;

/// Whether the last scrape could not count the jobs (to log once).
static QUEUE_FAILING: AtomicBool = AtomicBool::new(false);

pub async fn scrape(
    req: HttpRequest,
    access: web::Data<MetricsAccess>,
    queue: web::Data<dyn JobStore>,
) -> HttpResponse {
    if let Some(refusal) = access.refusal(&req) {
        return refusal;
    }
    // Without the queue (Redis down) every other metric is still served,
    // `portico_store_errors_total` above all: an outage is when they matter.
    // The job gauges keep their last values; the error is logged once per
    // outage, not once per scrape.
    match queue.counts(&|_| true).await {
        Ok(counts) => {
            if QUEUE_FAILING.swap(false, Ordering::Relaxed) {
                tracing::info!("/metrics counts the jobs again");
            }
            for (status, count) in [
                ("pending", counts.pending),
                ("processing", counts.processing),
                ("completed", counts.completed),
                ("failed", counts.failed),
            ] {
                crate::metrics::jobs_in_queue(status, count);
            }
        }
        Err(err) => {
            if !QUEUE_FAILING.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    error = format!("{err:#}"),
                    "cannot count the jobs for /metrics; the job gauges keep their last \
                     values until the store answers"
                );
            }
        }
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

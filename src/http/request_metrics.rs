//! Counts every request by route pattern and status (never by path: the
//! label set stays small); wraps the whole application.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

pub async fn track_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let response = next.call(req).await?;
    let pattern = response.request().match_pattern();
    crate::metrics::request(
        pattern.as_deref().unwrap_or("unmatched"),
        response.status().as_u16(),
    );
    Ok(response)
}

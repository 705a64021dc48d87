//! Counts every request by route pattern and status (never by path: the
//! label set stays small); wraps the whole application.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::HttpMessage;

/// The whole route pattern of the resource a router of ours matched
/// (`api::routes`), put on the request so that counting it does not match
/// the path against the resource map again (`match_pattern`, which is
/// what a route routed by actix is counted by, reading the resource
/// actix's router noted).
#[derive(Debug, Clone)]
pub struct MatchedPattern(pub std::rc::Rc<str>);

pub async fn track_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let response = next.call(req).await?;
    count(&response);
    Ok(response)
}

fn count<B>(response: &ServiceResponse<B>) {
    let status = response.status().as_u16();
    let request = response.request();
    if let Some(MatchedPattern(pattern)) = request.extensions().get() {
        return crate::metrics::request(pattern, status);
    }
    let pattern = request.match_pattern();
    crate::metrics::request(pattern.as_deref().unwrap_or("unmatched"), status);
}

//! Where a request came from, as far as the browser tells: `Sec-Fetch-Site`,
//! `Origin` and `Referer` against `PUBLIC_URL`. The API gate refuses a
//! session's cross-site write with it; dashboard forms require a same origin.

use actix_web::dev::ServiceRequest;
use actix_web::http::header::HeaderMap;

use crate::config::PublicUrl;

/// A state-changing request that a browser marks as coming from another
/// site, or whose `Origin` is not `PUBLIC_URL`.
pub fn is_cross_site_write(req: &ServiceRequest, public_url: &PublicUrl) -> bool {
    let safe = matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS");
    !safe && !is_same_origin(req.headers(), public_url, true)
}

/// Whether `Origin` (or, failing that, `Referer`) is one `PUBLIC_URL` accepts.
/// Without either header the answer is `allow_missing`; `Sec-Fetch-Site:
/// cross-site` is never same-origin.
pub fn is_same_origin(headers: &HeaderMap, public_url: &PublicUrl, allow_missing: bool) -> bool {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if header("sec-fetch-site").is_some_and(|site| site == "cross-site") {
        return false;
    }
    if let Some(origin) = header("origin") {
        return public_url.accepts_origin(origin);
    }
    match header("referer").and_then(|referer| url::Url::parse(referer).ok()) {
        Some(referer) => public_url.accepts_origin(&referer.origin().ascii_serialization()),
        None => allow_missing,
    }
}

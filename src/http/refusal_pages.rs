//! The pages of the guards' refusals: an address outside `ALLOWED_IPS`, a
//! form from another origin, a form whose CSRF token is stale.

use actix_web::http::header::HeaderMap;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;

use super::html::{error_page, error_page_with_link};
use crate::config::PublicUrl;

/// The 403 page for an address outside `ALLOWED_IPS`.
pub fn ip_not_allowed_page() -> HttpResponse {
    error_page_with_link(
        StatusCode::FORBIDDEN,
        "Access denied from this IP address",
        "This Portico only answers the addresses in its ALLOWED_IPS setting, \
         and yours is not one of them. Connect from an allowed network, or \
         ask its administrator to add your address.",
        "/",
        "Try again",
    )
}

/// The 403 page for a form from another origin: says where the form came
/// from and which addresses Portico accepts, logs the refusal, and links to
/// the address to use.
pub fn foreign_origin_page(public_url: &PublicUrl, headers: &HeaderMap) -> HttpResponse {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let why = if header("sec-fetch-site") == Some("cross-site") {
        "your browser reports that it was sent from another site".to_owned()
    } else if let Some(origin) = header("origin") {
        format!("it was sent from a page at {origin}")
    } else if let Some(referer) = header("referer") {
        format!("it was sent from the page {referer}")
    } else {
        "it carried neither an Origin nor a Referer header (a privacy extension may remove \
         them), so Portico cannot tell where it came from"
            .to_owned()
    };
    tracing::warn!(
        reason = %why.escape_debug(),
        accepted = %public_url.describe(),
        "refused a form from another origin"
    );
    error_page_with_link(
        StatusCode::FORBIDDEN,
        "Form refused: wrong address",
        &format!(
            "Portico refused this form because {why}. It accepts forms only from {}. \
             Open Portico at {} and send the form again; if you reach Portico through \
             another address, set PUBLIC_URL to it.",
            public_url.describe(),
            public_url.origin()
        ),
        public_url.origin(),
        &format!("Open {}", public_url.origin()),
    )
}

/// The 403 page for a logged-in form whose CSRF token is missing or stale.
pub fn stale_form_page() -> HttpResponse {
    error_page(
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form's security token is missing or belongs to an earlier login (the page \
         was opened before you logged in again). Nothing was changed: reload the page and \
         send the form again.",
    )
}

//! HTML answers of the dashboard: rendering a template uncached, the error
//! page (with the nav bar when logged in), redirects, and `DashboardError`,
//! the one error type dashboard handlers return.

use actix_web::http::header::{self, CacheDirective};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

/// The navigation bar of a logged-in page.
#[derive(Debug, Clone)]
pub struct Nav {
    pub username: String,
    pub csrf_token: String,
    pub active: &'static str,
}

tokio::task_local! {
    /// The nav bar of the logged-in request being handled, if any.
    pub static CURRENT_NAV: Nav;
}

/// A one-time message at the top of a page.
#[derive(Debug, Clone)]
pub struct Flash {
    pub kind: &'static str,
    pub message: String,
}

impl Flash {
    pub fn error(message: impl Into<String>) -> Option<Self> {
        Some(Self {
            kind: "error",
            message: message.into(),
        })
    }

    pub fn success(message: impl Into<String>) -> Option<Self> {
        Some(Self {
            kind: "success",
            message: message.into(),
        })
    }
}

/// Renders a page with `status`; pages are never cached, since some carry
/// a CSRF token or a key shown once.
pub fn render(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(html) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header(header::CacheControl(vec![CacheDirective::NoStore]))
            .body(html),
        Err(err) => {
            tracing::error!(error = %err, "a page failed to render");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("Internal server error")
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    nav: Option<Nav>,
    flash: Option<Flash>,
    title: &'a str,
    message: &'a str,
    back_href: &'a str,
    back_label: &'a str,
}

/// A page that says what went wrong and where to go next.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    error_page_with_link(
        status,
        title,
        message,
        "/dashboard",
        "Back to the dashboard",
    )
}

/// An error page whose link leads somewhere other than the dashboard.
pub fn error_page_with_link(
    status: StatusCode,
    title: &str,
    message: &str,
    back_href: &str,
    back_label: &str,
) -> HttpResponse {
    render(
        status,
        &ErrorPage {
            nav: CURRENT_NAV.try_with(Nav::clone).ok(),
            flash: None,
            title,
            message,
            back_href,
            back_label,
        },
    )
}

/// What a dashboard handler could not do; answered with the error page.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// The store (data directory or Redis) could not be used: nothing
    /// was changed.
    #[error("{what} failed: {detail}")]
    Storage {
        what: &'static str,
        detail: String,
        redis: bool,
    },
    /// Anything else that failed on the server; nothing was changed.
    #[error("{what} failed: {detail}")]
    Unexpected { what: &'static str, detail: String },
    /// A dashboard session could not be started.
    #[error("starting a session failed: {0}")]
    Session(String),
    /// The thing a page is about does not exist.
    #[error("{title}")]
    NotFound {
        title: &'static str,
        message: &'static str,
    },
}

impl DashboardError {
    /// `what` (e.g. "revoking a key") failed to read or write.
    pub fn storage(what: &'static str, err: &anyhow::Error) -> Self {
        Self::Storage {
            what,
            detail: format!("{err:#}"),
            redis: crate::store::from_redis(err),
        }
    }

    /// A session could not be started (or moved to the second step).
    pub fn session(err: &anyhow::Error) -> Self {
        Self::Session(format!("{err:#}"))
    }

    /// `what` failed on the server for a reason the user cannot fix.
    pub fn unexpected(what: &'static str, err: &dyn std::fmt::Display) -> Self {
        Self::Unexpected {
            what,
            detail: err.to_string(),
        }
    }
}

impl ResponseError for DashboardError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Storage { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unexpected { .. } | Self::Session(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
        }
    }

    /// The page says what to do; the cause goes to the log only.
    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Storage {
                what,
                detail,
                redis,
            } => {
                tracing::error!(error = %detail, "{what} failed");
                let mut page = if *redis {
                    error_page(
                        self.status_code(),
                        "Store unavailable",
                        "Portico cannot reach its Redis store right now, so nothing was read \
                         or changed. Try again in a moment; if it persists, ask the operator \
                         to check that Redis is running.",
                    )
                } else {
                    error_page(
                        self.status_code(),
                        "Not saved",
                        "Portico could not write to its data directory, so nothing was changed. \
                         Check that it is writable and not full, then try again.",
                    )
                };
                page.headers_mut().insert(
                    header::RETRY_AFTER,
                    header::HeaderValue::from(crate::http::error::STORE_RETRY_AFTER_SECS),
                );
                page
            }
            Self::Unexpected { what, detail } => {
                tracing::error!(error = %detail, "{what} failed");
                error_page(
                    self.status_code(),
                    "Internal server error",
                    "Portico could not complete this on the server; nothing was changed. \
                     Try again; if it persists, check the server log.",
                )
            }
            Self::Session(detail) => {
                tracing::error!(error = %detail, "starting a session failed");
                error_page(
                    self.status_code(),
                    "Internal server error",
                    "The session could not be started. Try again.",
                )
            }
            Self::NotFound { title, message } => error_page(self.status_code(), title, message),
        }
    }
}

/// The storage page for a handler that answers with a page either way.
pub fn storage_failure(what: &'static str, err: &anyhow::Error) -> HttpResponse {
    DashboardError::storage(what, err).error_response()
}

pub fn redirect(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header(header::CacheControl(vec![CacheDirective::NoStore]))
        .finish()
}

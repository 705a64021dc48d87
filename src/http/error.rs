//! The one error shape of the JSON API (SPEC §4): `{"error", "code"}`, plus
//! `details` for invalid input. Every failure an API client can see, from
//! the gate, an extractor or a handler, becomes an `ApiError`.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Value};

use crate::auth::gate::Refusal;
use crate::auth::principal::Denied;
use crate::auth::rate_limit::Quota;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("API key is required")]
    MissingKey,
    #[error("Invalid API key")]
    InvalidKey,
    #[error("Invalid API key")]
    ExpiredKey,
    #[error("Access denied from this IP address")]
    IpNotAllowed,
    #[error("Rate limit exceeded")]
    RateLimited(Quota),
    #[error("Too many failed attempts")]
    AuthThrottled { retry_after_secs: u64 },
    #[error(
        "You already have {0} questions waiting or being answered; wait for one to finish, \
         or cancel one, before asking another"
    )]
    TooManyJobs(usize),
    #[error("This action needs an admin key or a dashboard login")]
    AdminRequired,
    #[error("This key lacks the '{}' permission; ask an admin to add it to the key's scope", .0.as_str())]
    InsufficientScope(crate::auth::Permission),
    /// `workspaces:write` held, but by a key limited to some workspaces.
    #[error(
        "This key is limited to particular workspaces, so it cannot register new ones; \
         use a key that reaches every workspace, or the dashboard"
    )]
    HeldToWorkspaces,
    #[error("Cross-site request refused")]
    CrossSite,
    #[error("This server does not answer to the host name '{0}'; use the address in PUBLIC_URL")]
    UnknownHost(String),
    #[error("Not found")]
    NotFound,
    #[error("{0} not found")]
    Missing(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("Method not allowed")]
    MethodNotAllowed,
    #[error("Request body is larger than 1 MiB")]
    PayloadTooLarge,
    #[error("The request body was not received within 10 seconds; send it again over a faster connection")]
    BodyTimeout,
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    #[error("{message}")]
    BadRequest { message: String, details: Value },
    #[error("{0}")]
    Unavailable(String),
    /// The store (data directory or Redis) could not be used.
    #[error("{0}")]
    StoreUnavailable(&'static str),
    #[error("Internal server error")]
    Unexpected(anyhow::Error),
}

/// The `Retry-After` of a 503 for a store that could not be used.
pub const STORE_RETRY_AFTER_SECS: u64 = 5;

/// What a user is told when Redis cannot be reached.
pub const REDIS_UNAVAILABLE: &str =
    "Portico cannot reach its Redis store right now, so nothing was read or changed. \
     Try again in a moment; if it persists, the operator should check that Redis \
     (REDIS_URL) is running and reachable.";
/// What a user is told when the data directory cannot be written.
pub const FILES_UNAVAILABLE: &str =
    "Portico could not save to its data directory (read-only or full?); \
     nothing was changed. Try again when it is writable.";

/// A store that cannot be read or written: 503, nothing changed.
impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> Self {
        Self::storage(err.into())
    }
}

/// Anything unexpected is a 500, except a store that could not be used
/// somewhere below (a queue read from Redis, say), which is a 503.
impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        if crate::store::is_unavailable(&err) {
            Self::storage(err)
        } else {
            Self::Unexpected(err)
        }
    }
}

impl ApiError {
    /// The store could not be read or written: nothing changed, try later.
    pub fn storage(err: anyhow::Error) -> Self {
        let redis = crate::store::from_redis(&err);
        tracing::error!(
            error = format!("{err:#}"),
            store = if redis { "redis" } else { "file" },
            "the store could not be used"
        );
        Self::StoreUnavailable(if redis {
            REDIS_UNAVAILABLE
        } else {
            FILES_UNAVAILABLE
        })
    }

    /// One invalid field, named in `details`.
    pub fn invalid_field(field: &str, problem: impl Into<String>) -> Self {
        let problem = problem.into();
        Self::bad_request(
            format!("Invalid field '{field}': {problem}"),
            serde_json::json!({ field: problem }),
        )
    }

    pub fn bad_request(message: impl Into<String>, details: Value) -> Self {
        Self::BadRequest {
            message: message.into(),
            details,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingKey => "missing-api-key",
            Self::InvalidKey => "invalid-api-key",
            Self::ExpiredKey => "expired-api-key",
            Self::IpNotAllowed => "ip-not-allowed",
            Self::RateLimited(_) => "rate-limited",
            Self::AuthThrottled { .. } => "auth-throttled",
            Self::TooManyJobs(_) => "too-many-jobs",
            Self::AdminRequired => "admin-required",
            Self::InsufficientScope(_) | Self::HeldToWorkspaces => "insufficient-scope",
            Self::CrossSite => "cross-site-request",
            Self::UnknownHost(_) => "unknown-host",
            Self::NotFound | Self::Missing(_) => "not-found",
            Self::Conflict(_) => "conflict",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::PayloadTooLarge => "payload-too-large",
            Self::BodyTimeout => "request-timeout",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::BadRequest { .. } => "invalid-request",
            Self::Unavailable(_) => "service-unavailable",
            Self::StoreUnavailable(_) => "store-unavailable",
            Self::Unexpected(_) => "internal-error",
        }
    }
}

impl From<Denied> for ApiError {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::AdminRequired => Self::AdminRequired,
            Denied::InsufficientScope(permission) => Self::InsufficientScope(permission),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::IpNotAllowed => Self::IpNotAllowed,
            Refusal::CrossSite => Self::CrossSite,
            Refusal::MissingKey => Self::MissingKey,
            Refusal::InvalidKey => Self::InvalidKey,
            Refusal::ExpiredKey => Self::ExpiredKey,
            Refusal::AuthThrottled { retry_after_secs } => Self::AuthThrottled { retry_after_secs },
            Refusal::RateLimited(quota) => Self::RateLimited(quota),
            Refusal::Storage(err) => Self::from(err),
            Refusal::Unexpected(err) => Self::from(err),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::MissingKey | Self::InvalidKey | Self::ExpiredKey => StatusCode::UNAUTHORIZED,
            Self::IpNotAllowed
            | Self::AdminRequired
            | Self::InsufficientScope(_)
            | Self::HeldToWorkspaces
            | Self::CrossSite => StatusCode::FORBIDDEN,
            Self::RateLimited(_) | Self::AuthThrottled { .. } | Self::TooManyJobs(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::UnknownHost(_) => StatusCode::MISDIRECTED_REQUEST,
            Self::NotFound | Self::Missing(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unavailable(_) | Self::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Unexpected(cause) = self {
            tracing::error!(error = format!("{cause:#}"), "request failed unexpectedly");
        }
        let mut body = json!({ "error": self.to_string(), "code": self.code() });
        if let Self::BadRequest { details, .. } = self {
            body["details"] = details.clone();
        }
        if let Self::InsufficientScope(permission) = self {
            body["details"] = json!({ "permission": permission.as_str() });
        }
        if let Self::HeldToWorkspaces = self {
            body["details"] = json!({
                "permission": crate::auth::Permission::WorkspacesWrite.as_str(),
                "workspaces": "limited",
            });
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header(header::CacheControl(vec![header::CacheDirective::NoStore]));
        match self {
            Self::MissingKey | Self::InvalidKey | Self::ExpiredKey => {
                response
                    .insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            Self::RateLimited(quota) => {
                for (name, value) in quota.headers() {
                    response.insert_header((name, value));
                }
                response.insert_header((header::RETRY_AFTER, quota.reset_secs.max(1)));
            }
            Self::AuthThrottled { retry_after_secs } => {
                response.insert_header((header::RETRY_AFTER, (*retry_after_secs).max(1)));
            }
            Self::StoreUnavailable(_) => {
                response.insert_header((header::RETRY_AFTER, STORE_RETRY_AFTER_SECS));
            }
            _ => {}
        }
        response.json(body)
    }
}

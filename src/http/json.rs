//! JSON request bodies: `ApiJson<T>` accepts only `application/json` up to
//! 1 MiB and reports any problem in the API's error shape, with `details`
//! naming the bad fields. The same limits apply to actix's own extractors.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::http::ApiError;

/// The largest request body Portico reads (SPEC §4).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub struct ApiJson<T>(pub T);

/// Like `ApiJson`, but an empty body (no content at all) is `T::default()`:
/// for endpoints whose every field is optional.
pub struct ApiJsonOrEmpty<T>(pub T);

type BodyFuture<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

/// Reads the body up to the limit; `None` content type check is left to
/// the caller, which knows whether an empty body is acceptable.
fn read_body(req: &HttpRequest, payload: &mut Payload) -> (bool, BodyFuture<web::BytesMut>) {
    let is_json = req.mime_type().ok().flatten().is_some_and(|mime| {
        mime.essence_str() == "application/json" || mime.suffix().is_some_and(|s| s == "json")
    });
    let declared_len = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    let mut payload = payload.take();
    let body = Box::pin(async move {
        if declared_len.is_some_and(|len| len > MAX_BODY_BYTES) {
            return Err(ApiError::PayloadTooLarge);
        }
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|_| {
                ApiError::bad_request("The request body could not be read", json!({}))
            })?;
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(ApiError::PayloadTooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    });
    (is_json, body)
}

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = BodyFuture<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let (is_json, body) = read_body(req, payload);
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::UnsupportedMediaType);
            }
            parse_body(&body.await?).map(ApiJson)
        })
    }
}

impl<T: DeserializeOwned + Default + 'static> FromRequest for ApiJsonOrEmpty<T> {
    type Error = ApiError;
    type Future = BodyFuture<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let (is_json, body) = read_body(req, payload);
        Box::pin(async move {
            let body = body.await?;
            if body.is_empty() {
                return Ok(ApiJsonOrEmpty(T::default()));
            }
            if !is_json {
                return Err(ApiError::UnsupportedMediaType);
            }
            parse_body(&body).map(ApiJsonOrEmpty)
        })
    }
}

/// Parses a JSON body into `T`, naming the first bad field on failure.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|err| {
        ApiError::bad_request(
            "The request body is not valid JSON",
            json!({ "body": err.to_string() }),
        )
    })?;
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let message = err.inner().to_string();
        let field = missing_field(&message)
            .map(|name| match path.as_str() {
                "." => name.to_owned(),
                parent => format!("{parent}.{name}"),
            })
            .unwrap_or(path);
        ApiError::bad_request(
            "The request body has invalid fields",
            json!({ field: message }),
        )
    })
}

/// serde reports a missing field at its parent's path; the name is in the message.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// actix's own JSON, path and query extractors answer in the same shape.
pub fn extractor_configs(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(MAX_BODY_BYTES)
            .error_handler(|err, _| json_error(err).into()),
    )
    .app_data(web::PayloadConfig::default().limit(MAX_BODY_BYTES))
    .app_data(web::PathConfig::default().error_handler(|err, _| path_error(err).into()))
    .app_data(web::QueryConfig::default().error_handler(|err, _| query_error(err).into()));
}

fn json_error(err: JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            ApiError::PayloadTooLarge
        }
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
        other => ApiError::bad_request(
            "The request body is not valid JSON",
            json!({ "body": other.to_string() }),
        ),
    }
}

fn path_error(err: PathError) -> ApiError {
    ApiError::bad_request(
        "The URL path is not valid",
        json!({ "path": err.to_string() }),
    )
}

fn query_error(err: QueryPayloadError) -> ApiError {
    ApiError::bad_request(
        "The query string is not valid",
        json!({ "query": err.to_string() }),
    )
}

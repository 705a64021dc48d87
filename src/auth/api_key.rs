//! Reading an API key from a request: `x-api-key`, or else
//! `Authorization: Bearer`. Anything ambiguous or malformed is rejected here,
//! before any lookup or hashing.

use actix_web::http::header::{HeaderMap, HeaderName, AUTHORIZATION};
use secrecy::{ExposeSecret, SecretString};

/// Parsed once, not on every look-up.
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// Longer values are not keys Portico ever issues or accepts.
pub const MAX_KEY_LEN: usize = 512;

/// A presented key: 1 to 512 visible ASCII characters.
#[derive(Debug, Clone)]
pub struct ApiKey(SecretString);

/// A key header was sent but cannot hold a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedKey;

impl ApiKey {
    pub fn parse(text: &str) -> Result<Self, MalformedKey> {
        let text = text.trim();
        let well_formed = !text.is_empty()
            && text.len() <= MAX_KEY_LEN
            && text.bytes().all(|b| b.is_ascii_graphic());
        if well_formed {
            Ok(Self(SecretString::from(text)))
        } else {
            Err(MalformedKey)
        }
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn secret(&self) -> &SecretString {
        &self.0
    }

    /// The key of a request: `Ok(None)` when none was offered (no key header,
    /// or an `Authorization` scheme other than Bearer); `Err` when a key
    /// header is present but repeated, empty, too long or not ASCII.
    /// `x-api-key` wins over `Authorization` when both are sent.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, MalformedKey> {
        if let Some(value) = single(headers, &X_API_KEY)? {
            return value
                .to_str()
                .map_err(|_| MalformedKey)
                .and_then(Self::parse)
                .map(Some);
        }
        let Some(value) = single(headers, &AUTHORIZATION)? else {
            return Ok(None);
        };
        let value = value.to_str().map_err(|_| MalformedKey)?.trim();
        let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Ok(None);
        }
        Self::parse(token).map(Some)
    }
}

fn single<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'a actix_web::http::header::HeaderValue>, MalformedKey> {
    let mut values = headers.get_all(name);
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) => Ok(Some(value)),
        (Some(_), Some(_)) => Err(MalformedKey),
    }
}

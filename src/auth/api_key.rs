//! Reading an API key from a request: `x-api-key`, or else
//! `Authorization: Bearer`. Anything ambiguous or malformed is rejected here,
//! before any lookup or hashing.

use actix_web::http::header::{HeaderMap, HeaderName, AUTHORIZATION};
use siphasher::sip128::SipHasher13;
use subtle::ConstantTimeEq;

/// Parsed once, not on every look-up.
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// Longer values are not keys Portico ever issues or accepts.
pub const MAX_KEY_LEN: usize = 512;

/// A presented key: 1 to 512 visible ASCII characters, borrowed from the
/// request's header (the request holds it anyway; a copy per request
/// would only cost an allocation). `Debug` never shows it.
#[derive(Clone, Copy)]
pub struct ApiKey<'a>(&'a str);

impl std::fmt::Debug for ApiKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

/// A key header was sent but cannot hold a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedKey;

impl<'a> ApiKey<'a> {
    pub fn parse(text: &'a str) -> Result<Self, MalformedKey> {
        let text = text.trim();
        let well_formed = !text.is_empty()
            && text.len() <= MAX_KEY_LEN
            && text.bytes().all(|b| b.is_ascii_graphic());
        if well_formed {
            Ok(Self(text))
        } else {
            Err(MalformedKey)
        }
    }

    /// `parse` of a header's bytes in one pass: spaces and tabs around
    /// the key are dropped, and what is left must be 1 to 512 visible ASCII
    /// characters (so a byte that is not valid in a header's text, or not
    /// ASCII, is refused as before).
    fn from_header_bytes(bytes: &'a [u8]) -> Result<Self, MalformedKey> {
        let blank = |b: &u8| *b == b' ' || *b == b'\t';
        let start = bytes.iter().position(|b| !blank(b)).unwrap_or(bytes.len());
        let end = bytes
            .iter()
            .rposition(|b| !blank(b))
            .map_or(start, |at| at + 1);
        let key = &bytes[start..end];
        // Branch-free, so the compiler checks many bytes at a time.
        let visible = key
            .iter()
            .fold(true, |ok, b| ok & (b.wrapping_sub(0x21) < 0x5e));
        if key.is_empty() || key.len() > MAX_KEY_LEN || !visible {
            return Err(MalformedKey);
        }
        // SAFETY: every byte of `key` was just checked to be in 0x21..=0x7e,
        // visible ASCII, and ASCII is valid UTF-8. (`from_utf8` would check
        // it all again: about 170 instructions on every request.)
        let text = unsafe { std::str::from_utf8_unchecked(key) };
        Ok(Self(text))
    }

    pub fn expose(&self) -> &'a str {
        self.0
    }

    /// The key of a request: `Ok(None)` when none was offered (no key header,
    /// or an `Authorization` scheme other than Bearer); `Err` when a key
    /// header is present but repeated, empty, too long or not ASCII.
    /// `x-api-key` wins over `Authorization` when both are sent.
    pub fn from_headers(headers: &'a HeaderMap) -> Result<Option<Self>, MalformedKey> {
        if let Some(value) = single(headers, &X_API_KEY)? {
            return Self::from_header_bytes(value.as_bytes()).map(Some);
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

/// A keyed 128-bit digest of presented secrets, under a key drawn at
/// random for the process: SipHash-1-3 with a 128-bit output, so a digest
/// says nothing outside the process and two secrets share one only by a
/// 2^-128 chance nobody can steer (no digest is ever shown). Several
/// times cheaper than keyed BLAKE3 on a key's few dozen bytes, which
/// matters because the gate takes one on every request.
#[derive(Clone)]
pub struct SecretDigester(SipHasher13);

impl SecretDigester {
    pub fn random() -> Self {
        Self(SipHasher13::new_with_keys(rand::random(), rand::random()))
    }

    pub fn digest(&self, secret: &str) -> u128 {
        self.0.hash(secret.as_bytes()).as_u128()
    }
}

impl std::fmt::Debug for SecretDigester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretDigester([redacted])")
    }
}

/// Equality of two digests of secrets in constant time.
pub fn same_digest(a: u128, b: u128) -> bool {
    bool::from(a.ct_eq(&b))
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

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderMap, HeaderValue};
    use proptest::prelude::*;

    use super::{same_digest, ApiKey, MalformedKey, SecretDigester, X_API_KEY};

    /// What `from_headers` answered before its one-pass reading: the
    /// header's text, then `parse`.
    fn reference(bytes: &[u8]) -> Result<String, MalformedKey> {
        let value = HeaderValue::from_bytes(bytes).map_err(|_| MalformedKey)?;
        let text = value.to_str().map_err(|_| MalformedKey)?;
        ApiKey::parse(text).map(|key| key.expose().to_owned())
    }

    fn read(bytes: &[u8]) -> Result<String, MalformedKey> {
        let mut headers = HeaderMap::new();
        headers.insert(
            X_API_KEY,
            HeaderValue::from_bytes(bytes).map_err(|_| MalformedKey)?,
        );
        let key = ApiKey::from_headers(&headers)?.expect("a key header was sent");
        Ok(key.expose().to_owned())
    }

    #[test]
    fn the_key_header_is_read_as_before_at_the_edges() {
        for bytes in [
            &b" \tptk_abc_def \t"[..],
            b"key\x0c",
            b"\x0bkey",
            b"ke y",
            b"caf\xc3\xa9",
            b"\x7fkey",
            b"~!",
            b" ",
            &[b'k'; 512],
            &[b'k'; 513],
        ] {
            assert_eq!(read(bytes), reference(bytes), "{bytes:?}");
        }
    }

    #[test]
    fn digests_tell_secrets_apart_and_depend_on_the_process_key() {
        let digester = SecretDigester::random();
        let key = "ptk_abcdefgh1234_0123456789abcdefghijABCDEFGHIJ0123456789";
        let digest = digester.digest(key);
        assert!(same_digest(digest, digester.digest(key)));
        for at in 0..key.len() {
            let mut other = key.as_bytes().to_vec();
            other[at] ^= 1;
            let other = String::from_utf8(other).unwrap();
            assert!(!same_digest(digest, digester.digest(&other)), "byte {at}");
        }
        assert!(!same_digest(digest, SecretDigester::random().digest(key)));
        for bit in [0, 63, 64, 127] {
            assert!(!same_digest(digest, digest ^ (1 << bit)), "bit {bit}");
        }
        assert_eq!(format!("{digester:?}"), "SecretDigester([redacted])");
    }

    proptest! {
        #[test]
        fn any_key_header_is_read_as_before(bytes in proptest::collection::vec(
            prop_oneof![Just(b' '), Just(b'\t'), 0x21u8..0x7f, 0x80u8..=0xff],
            0..40,
        )) {
            prop_assert_eq!(read(&bytes), reference(&bytes));
        }
    }
}

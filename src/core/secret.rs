//! Comparing secrets without leaking, through timing, how much matched.

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

/// Compares two secrets in constant time (of their digests, so that the
/// lengths do not show either).
pub fn secrets_match(presented: &str, expected: &SecretString) -> bool {
    let presented = blake3::hash(presented.as_bytes());
    let expected = blake3::hash(expected.expose_secret().as_bytes());
    presented.as_bytes().ct_eq(expected.as_bytes()).into()
}

//! Random identifiers and secrets from the operating system's CSPRNG.

use rand::rngs::OsRng;
use rand::{Rng, TryRngCore};

fn random_from(alphabet: &[u8], len: usize) -> String {
    let mut rng = OsRng.unwrap_err();
    (0..len)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

/// `len` characters of `[a-z0-9]` from the operating system's CSPRNG.
pub fn random_token(len: usize) -> String {
    random_from(b"abcdefghijklmnopqrstuvwxyz0123456789", len)
}

/// `len` characters of `[A-Za-z0-9]` from the operating system's CSPRNG.
pub fn random_alphanumeric(len: usize) -> String {
    random_from(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        len,
    )
}

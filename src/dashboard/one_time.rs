//! Keys waiting for their one display: the form that generates a key
//! redirects to a page that takes it from here (post/redirect/get), so a
//! refresh shows nothing and creates nothing. Bound to the session that
//! generated them, gone after one view or a few minutes.
//!
//! In file mode they wait in this instance's memory. In Redis mode the
//! redirect may be served by another instance, so they wait in Redis —
//! never in clear: the key is sealed (AES-256-GCM, as TOTP secrets are)
//! under a key derived from the ticket, which only the browser's redirect
//! carries, and stored under a digest of the ticket and the session's CSRF
//! token. `GETDEL` hands it out once even when two instances race.

use aes_gcm::aead::{Aead, Generate, Key, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::core::random_alphanumeric;
use crate::core::secrets_match;
use crate::store::redis::{unavailable, Redis};

/// A key not viewed within this time is dropped (it still works; it is
/// only not shown).
const HOLD_FOR: Duration = Duration::from_secs(5 * 60);
/// At most this many keys wait at once in memory; the oldest go first.
const MAX_WAITING: usize = 256;
/// 32 alphanumerics: about 190 random bits.
const TICKET_LENGTH: usize = 32;
const NONCE_BYTES: usize = 12;
const SEAL_CONTEXT: &str = "Portico 2026-11 one-time key display encryption v1";
const SLOT_CONTEXT: &str = "Portico 2026-11 one-time key display slot v1";

/// Where keys wait: this instance's memory, or Redis (sealed).
pub enum OneTimeKeys {
    Memory(MemoryKeys),
    Redis(Redis),
}

impl Default for OneTimeKeys {
    fn default() -> Self {
        Self::Memory(MemoryKeys::default())
    }
}

impl std::fmt::Debug for OneTimeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OneTimeKeys([redacted])")
    }
}

impl OneTimeKeys {
    /// Keys wait in Redis when there is one, else in memory.
    pub fn new(redis: Option<Redis>) -> Self {
        match redis {
            Some(redis) => Self::Redis(redis),
            None => Self::default(),
        }
    }

    /// Holds a key for the session whose CSRF token is `session_csrf`;
    /// returns the ticket the redirect carries.
    pub async fn hold(
        &self,
        session_csrf: &str,
        name: &str,
        plaintext: SecretString,
    ) -> anyhow::Result<String> {
        let ticket = random_alphanumeric(TICKET_LENGTH);
        match self {
            Self::Memory(keys) => keys.hold(&ticket, session_csrf, name, plaintext),
            Self::Redis(redis) => {
                let sealed = seal(&ticket, session_csrf, name, &plaintext)?;
                redis.writable()?;
                redis::cmd("SET")
                    .arg(slot(redis, &ticket, session_csrf))
                    .arg(sealed)
                    .arg("EX")
                    .arg(HOLD_FOR.as_secs())
                    .query_async::<()>(&mut redis.conn())
                    .await
                    .map_err(unavailable(
                        "cannot hold a new key for its display in Redis",
                    ))?;
            }
        }
        Ok(ticket)
    }

    /// The key behind `ticket`, once, and only for the session that made it.
    pub async fn take(
        &self,
        ticket: &str,
        session_csrf: &str,
    ) -> anyhow::Result<Option<(String, SecretString)>> {
        match self {
            Self::Memory(keys) => Ok(keys.take(ticket, session_csrf)),
            Self::Redis(redis) => {
                let sealed: Option<Vec<u8>> = redis::cmd("GETDEL")
                    .arg(slot(redis, ticket, session_csrf))
                    .query_async(&mut redis.conn())
                    .await
                    .map_err(unavailable(
                        "cannot take a new key for its display from Redis",
                    ))?;
                Ok(sealed.and_then(|sealed| open(ticket, session_csrf, &sealed)))
            }
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    name: String,
    plaintext: String,
}

/// The Redis key of a ticket's slot: a digest of the ticket and the
/// session, so the slot names neither and another session finds nothing.
fn slot(redis: &Redis, ticket: &str, session_csrf: &str) -> String {
    let mut hasher = blake3::Hasher::new_derive_key(SLOT_CONTEXT);
    hasher.update(ticket.as_bytes());
    hasher.update(b"\0");
    hasher.update(session_csrf.as_bytes());
    redis.key(&format!("one-time-key:{}", hasher.finalize().to_hex()))
}

fn cipher(ticket: &str) -> Aes256Gcm {
    let key = Zeroizing::new(blake3::derive_key(SEAL_CONTEXT, ticket.as_bytes()));
    Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key))
}

/// `nonce ‖ ciphertext ‖ tag` of the name and key, bound to the session.
fn seal(
    ticket: &str,
    session_csrf: &str,
    name: &str,
    plaintext: &SecretString,
) -> anyhow::Result<Vec<u8>> {
    let clear = Zeroizing::new(serde_json::to_vec(&Sealed {
        name: name.to_owned(),
        plaintext: plaintext.expose_secret().to_owned(),
    })?);
    let nonce = Nonce::generate();
    let sealed = cipher(ticket)
        .encrypt(
            &nonce,
            Payload {
                msg: &clear,
                aad: session_csrf.as_bytes(),
            },
        )
        .map_err(|_| anyhow::anyhow!("sealing a new key for its display failed"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(out)
}

fn open(ticket: &str, session_csrf: &str, sealed: &[u8]) -> Option<(String, SecretString)> {
    if sealed.len() <= NONCE_BYTES {
        return None;
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
    let nonce = Nonce::try_from(nonce).ok()?;
    let clear = Zeroizing::new(
        cipher(ticket)
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: session_csrf.as_bytes(),
                },
            )
            .ok()?,
    );
    let opened: Sealed = serde_json::from_slice(&clear).ok()?;
    Some((opened.name, SecretString::from(opened.plaintext)))
}

struct Waiting {
    session_csrf: SecretString,
    name: String,
    plaintext: SecretString,
    since: Instant,
}

/// Keys waiting in this instance's memory (file mode).
#[derive(Default)]
pub struct MemoryKeys(Mutex<HashMap<String, Waiting>>);

impl MemoryKeys {
    fn hold(&self, ticket: &str, session_csrf: &str, name: &str, plaintext: SecretString) {
        let mut waiting = self.0.lock();
        waiting.retain(|_, key| key.since.elapsed() < HOLD_FOR);
        while waiting.len() >= MAX_WAITING {
            let oldest = waiting
                .iter()
                .min_by_key(|(_, key)| key.since)
                .map(|(ticket, _)| ticket.clone());
            match oldest {
                Some(ticket) => waiting.remove(&ticket),
                None => break,
            };
        }
        waiting.insert(
            ticket.to_owned(),
            Waiting {
                session_csrf: SecretString::from(session_csrf.to_owned()),
                name: name.to_owned(),
                plaintext,
                since: Instant::now(),
            },
        );
    }

    fn take(&self, ticket: &str, session_csrf: &str) -> Option<(String, SecretString)> {
        let mut waiting = self.0.lock();
        let key = waiting.get(ticket)?;
        if !secrets_match(session_csrf, &key.session_csrf) || key.since.elapsed() >= HOLD_FOR {
            return None;
        }
        waiting.remove(ticket).map(|key| (key.name, key.plaintext))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_held_key_is_given_once_and_only_to_its_session() {
        let keys = OneTimeKeys::default();
        let ticket = keys
            .hold("session-a", "ci", SecretString::from("ptk_x_y"))
            .await
            .unwrap();
        assert!(keys.take(&ticket, "session-b").await.unwrap().is_none());
        assert_eq!(
            keys.take(&ticket, "session-a").await.unwrap().unwrap().0,
            "ci"
        );
        assert!(keys.take(&ticket, "session-a").await.unwrap().is_none());
    }

    #[test]
    fn waiting_keys_are_bounded() {
        let keys = MemoryKeys::default();
        for n in 0..MAX_WAITING + 10 {
            keys.hold(&n.to_string(), "s", &n.to_string(), SecretString::from("k"));
        }
        assert_eq!(keys.0.lock().len(), MAX_WAITING);
    }

    #[test]
    fn a_sealed_key_opens_only_with_its_ticket_and_session_and_hides_the_key() {
        let sealed = seal(
            "ticket-a",
            "session-a",
            "ci",
            &SecretString::from("ptk_x_secret"),
        )
        .unwrap();
        assert!(!String::from_utf8_lossy(&sealed).contains("ptk_x_secret"));
        let (name, key) = open("ticket-a", "session-a", &sealed).unwrap();
        assert_eq!((name.as_str(), key.expose_secret()), ("ci", "ptk_x_secret"));
        assert!(open("ticket-b", "session-a", &sealed).is_none());
        assert!(open("ticket-a", "session-b", &sealed).is_none());
    }
}

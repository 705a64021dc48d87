//! Keys waiting for their one display: the form that generates a key
//! redirects to a page that takes it from here (post/redirect/get), so a
//! refresh shows nothing and creates nothing. Held in memory only, bound to
//! the session that generated them, gone after one view or a few minutes.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use secrecy::SecretString;

use crate::core::random_alphanumeric;
use crate::core::secrets_match;

/// A key not viewed within this time is dropped (it still works; it is
/// only not shown).
const HOLD_FOR: Duration = Duration::from_secs(5 * 60);
/// At most this many keys wait at once; the oldest go first.
const MAX_WAITING: usize = 256;

struct Waiting {
    session_csrf: SecretString,
    name: String,
    plaintext: SecretString,
    since: Instant,
}

#[derive(Default)]
pub struct OneTimeKeys(Mutex<HashMap<String, Waiting>>);

impl std::fmt::Debug for OneTimeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OneTimeKeys([redacted])")
    }
}

impl OneTimeKeys {
    /// Holds a key for the session whose CSRF token is `session_csrf`;
    /// returns the ticket the redirect carries.
    pub fn hold(&self, session_csrf: &str, name: &str, plaintext: SecretString) -> String {
        let ticket = random_alphanumeric(32);
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
            ticket.clone(),
            Waiting {
                session_csrf: SecretString::from(session_csrf.to_owned()),
                name: name.to_owned(),
                plaintext,
                since: Instant::now(),
            },
        );
        ticket
    }

    /// The key behind `ticket`, once, and only for the session that made it.
    pub fn take(&self, ticket: &str, session_csrf: &str) -> Option<(String, SecretString)> {
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

    #[test]
    fn a_held_key_is_given_once_and_only_to_its_session() {
        let keys = OneTimeKeys::default();
        let ticket = keys.hold("session-a", "ci", SecretString::from("ptk_x_y"));
        assert!(keys.take(&ticket, "session-b").is_none());
        assert_eq!(keys.take(&ticket, "session-a").unwrap().0, "ci");
        assert!(keys.take(&ticket, "session-a").is_none());
    }

    #[test]
    fn waiting_keys_are_bounded() {
        let keys = OneTimeKeys::default();
        for n in 0..MAX_WAITING + 10 {
            keys.hold("s", &n.to_string(), SecretString::from("k"));
        }
        assert_eq!(keys.0.lock().len(), MAX_WAITING);
    }
}

//! How long a dashboard session lives (SPEC §6): the settings part; the
//! middleware enforcing it is `auth::session::identity_middleware`.

use std::time::Duration;

/// A session unused this long is over.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// A session older than this is over, however busy.
pub const ABSOLUTE_TIMEOUT: Duration = Duration::from_secs(12 * 3600);

/// How long a session lives: idle (visit) and absolute (login) deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    pub idle: Duration,
    pub absolute: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            idle: IDLE_TIMEOUT,
            absolute: ABSOLUTE_TIMEOUT,
        }
    }
}

impl SessionLimits {
    /// How long the store keeps an unused session: a minute past the
    /// idle limit, so that the visit deadline (exact, enforced by the
    /// identity middleware) ends sessions and the store only forgets them.
    pub fn store_ttl(&self) -> Duration {
        self.idle + Duration::from_secs(60)
    }
}

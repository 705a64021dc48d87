//! Dashboard login sessions on top of actix-session: what a session holds,
//! when it is still valid (user exists, same password epoch, under the idle
//! and absolute limits), and its CSRF token.

use std::time::Duration;

use actix_session::Session;
use chrono::Utc;

use super::principal::{Principal, PrincipalKind, Role};
use super::random_alphanumeric;
use super::users::{UserRecord, UserStore};

/// A session unused this long is over (enforced by the store's TTL).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// A session older than this is over, however busy.
pub const ABSOLUTE_TIMEOUT: Duration = Duration::from_secs(12 * 3600);

const USER_ID: &str = "user_id";
const EPOCH: &str = "epoch";
const LOGIN_AT: &str = "login_at";
const CSRF: &str = "csrf";
const FLASH: &str = "flash";

/// The user behind a valid session, and the session's CSRF token.
#[derive(Debug, Clone)]
pub struct LoggedIn {
    pub user: UserRecord,
    pub csrf_token: String,
}

impl LoggedIn {
    pub fn principal(&self) -> Principal {
        Principal {
            id: self.user.id.as_str().into(),
            kind: PrincipalKind::Session,
            name: self.user.username.as_str().into(),
            role: Role::Admin,
            scope: Principal::admin_scope(),
        }
    }
}

/// Starts a fresh session for `user`: a new session key (the old one is
/// gone), the user's password epoch and a new CSRF token.
pub fn begin(session: &Session, user: &UserRecord) -> anyhow::Result<()> {
    session.renew();
    session.clear();
    session.insert(USER_ID, &user.id)?;
    session.insert(EPOCH, user.session_epoch)?;
    session.insert(LOGIN_AT, Utc::now().timestamp())?;
    session.insert(CSRF, random_alphanumeric(43))?;
    Ok(())
}

/// Ends the session for good: the store forgets it.
pub fn end(session: &Session) {
    session.purge();
}

/// The logged-in user, if the session is still valid; an invalid session
/// is ended on the spot.
pub fn current(session: &Session, users: &UserStore) -> Option<LoggedIn> {
    let user_id = session.get::<String>(USER_ID).ok().flatten()?;
    let valid = (|| {
        let user = users.get(&user_id)?;
        let epoch = session.get::<u64>(EPOCH).ok().flatten()?;
        let login_at = session.get::<i64>(LOGIN_AT).ok().flatten()?;
        let age = Utc::now().timestamp().saturating_sub(login_at);
        let fresh = u64::try_from(age).is_ok_and(|age| age < ABSOLUTE_TIMEOUT.as_secs());
        let csrf_token = session.get::<String>(CSRF).ok().flatten()?;
        (epoch == user.session_epoch && fresh).then_some(LoggedIn { user, csrf_token })
    })();
    if valid.is_none() {
        end(session);
    }
    valid
}

/// A one-time message for the next page.
pub fn set_flash(session: &Session, message: &str) {
    let _ = session.insert(FLASH, message);
}

pub fn take_flash(session: &Session) -> Option<String> {
    session.remove_as::<String>(FLASH).and_then(Result::ok)
}

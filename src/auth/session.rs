//! Dashboard login state on top of actix-session and actix-identity: who is
//! logged in (an `Identity`, whose visit and login deadlines the
//! `IdentityMiddleware` enforces), whether the session is still valid (user
//! exists, same password epoch), its CSRF token, and the half-way state of
//! a login that passed the password but not yet the second factor.

use std::time::Duration;

use actix_identity::config::LogoutBehavior;
use actix_identity::{Identity, IdentityExt, IdentityMiddleware};
use actix_session::{Session, SessionExt};
use actix_web::HttpMessage;
use chrono::Utc;

use super::principal::{Principal, PrincipalKind, Role};
use super::users::{UserRecord, Users};
pub use crate::config::SessionLimits;
use crate::core::random_alphanumeric;
use crate::store::StoreError;

/// A login that passed the password has this long to give the second factor.
const SECOND_STEP_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// The session entry holding the logged-in user's id (the identity).
pub const USER_ID: &str = "user_id";
/// The session entry with the time of the last request, which the identity
/// middleware rewrites on every request (the store batches its writes).
pub const LAST_VISIT: &str = "last_visit";
const EPOCH: &str = "epoch";
const CSRF: &str = "csrf";
const FLASH: &str = "flash";
/// The session entry naming the user half-way through logging in.
pub const PENDING_USER: &str = "pending_user";
const PENDING_EPOCH: &str = "pending_epoch";
const PENDING_AT: &str = "pending_at";

/// The middleware that ends a session past either deadline.
pub fn identity_middleware(limits: SessionLimits) -> IdentityMiddleware {
    IdentityMiddleware::builder()
        .id_key(USER_ID)
        .last_visit_unix_timestamp_key(LAST_VISIT)
        .visit_deadline(Some(limits.idle))
        .login_deadline(Some(limits.absolute))
        .logout_behavior(LogoutBehavior::PurgeSession)
        .build()
}

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

/// Logs `user` in on a fresh session: a new session key (the old one is
/// gone), the identity with its deadlines, the user's password epoch and a
/// new CSRF token. Anything the session held before (a half-way login) is
/// dropped.
pub fn begin(req: &impl HttpMessage, session: &Session, user: &UserRecord) -> anyhow::Result<()> {
    session.clear();
    Identity::login(&req.extensions(), user.id.clone())?;
    session.insert(EPOCH, user.session_epoch)?;
    session.insert(CSRF, random_alphanumeric(43))?;
    Ok(())
}

/// Logs out: the identity goes, and with it the whole session (the store
/// forgets it for good).
pub fn logout(identity: Identity) {
    identity.logout();
}

/// Ends the session for good, logged in or not: the store forgets it.
pub fn end(session: &Session) {
    session.purge();
}

/// The logged-in user, if the request carries a valid identity (the
/// middleware has already ended sessions past their deadlines) of a user
/// who still exists with the same password epoch. An invalid session is
/// ended on the spot. A store that cannot be read is an error, not a
/// logout.
pub async fn current(
    req: &(impl IdentityExt + SessionExt),
    users: &Users,
) -> Result<Option<LoggedIn>, StoreError> {
    let Ok(identity) = req.get_identity() else {
        return Ok(None);
    };
    let user = match identity.id() {
        Ok(id) => users.get(&id).await?,
        Err(_) => None,
    };
    let session = req.get_session();
    let valid = user.and_then(|user| {
        let epoch = session.get::<u64>(EPOCH).ok().flatten()?;
        let csrf_token = session.get::<String>(CSRF).ok().flatten()?;
        (epoch == user.session_epoch).then_some(LoggedIn { user, csrf_token })
    });
    if valid.is_none() {
        identity.logout();
    }
    Ok(valid)
}

/// Notes on a fresh session that `user` passed the password and still owes
/// the second factor. The session carries no identity: no page, no API.
pub fn begin_second_step(session: &Session, user: &UserRecord) -> anyhow::Result<()> {
    session.renew();
    session.clear();
    session.insert(PENDING_USER, &user.id)?;
    session.insert(PENDING_EPOCH, user.session_epoch)?;
    session.insert(PENDING_AT, Utc::now().timestamp())?;
    Ok(())
}

/// The user half-way through logging in on this session, if recent and
/// their password has not changed since.
pub async fn second_step_user(
    session: &Session,
    users: &Users,
) -> Result<Option<UserRecord>, StoreError> {
    let pending = (|| {
        let user_id = session.get::<String>(PENDING_USER).ok().flatten()?;
        let epoch = session.get::<u64>(PENDING_EPOCH).ok().flatten()?;
        let at = session.get::<i64>(PENDING_AT).ok().flatten()?;
        let age = Utc::now().timestamp().saturating_sub(at);
        let recent = u64::try_from(age).is_ok_and(|age| age < SECOND_STEP_TIMEOUT.as_secs());
        recent.then_some((user_id, epoch))
    })();
    let Some((user_id, epoch)) = pending else {
        return Ok(None);
    };
    let user = users.get(&user_id).await?;
    Ok(user.filter(|user| user.session_epoch == epoch))
}

/// A one-time message for the next page.
pub fn set_flash(session: &Session, message: &str) {
    let _ = session.insert(FLASH, message);
}

pub fn take_flash(session: &Session) -> Option<String> {
    session.remove_as::<String>(FLASH).and_then(Result::ok)
}

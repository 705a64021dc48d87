//! A user's second factor over time: enrolment, checking a code (each TOTP
//! step and each recovery code accepted once, even by concurrent
//! requests), regenerating recovery codes, disabling — and the offline way
//! back for a lost device (`portico user disable-2fa`).

use chrono::Utc;
use secrecy::SecretString;

use super::hashing::Hasher;
use super::session::{PENDING_USER, USER_ID};
use super::session_store::{FileSessionStore, SessionPurge};
use super::totp::{
    generate_recovery_code, normalize_recovery_code, SecretCipher, TotpSecret, RECOVERY_CODE_COUNT,
};
use super::users::{TwoFactor, UserError, Users};
use crate::store::DataDir;

/// What a code given at the second step turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    /// The TOTP code of a step not used before.
    Totp,
    /// An unused recovery code, now spent; this many remain.
    Recovery { remaining: usize },
    /// Wrong, already used, or the user has no second factor.
    Refused,
}

fn now_unix() -> u64 {
    u64::try_from(Utc::now().timestamp()).unwrap_or(0)
}

async fn new_recovery_codes(hasher: &Hasher) -> anyhow::Result<(Vec<SecretString>, Vec<String>)> {
    let mut codes = Vec::with_capacity(RECOVERY_CODE_COUNT);
    let mut hashes = Vec::with_capacity(RECOVERY_CODE_COUNT);
    for _ in 0..RECOVERY_CODE_COUNT {
        let code = generate_recovery_code();
        hashes.push(hasher.hash(&code).await?);
        codes.push(code);
    }
    Ok((codes, hashes))
}

/// Turns the second factor on with `secret` once `code` proves the user's
/// app has it; returns the recovery codes to show once, or `None` when the
/// code is wrong (or 2FA is already on).
pub async fn enable(
    users: &Users,
    cipher: &SecretCipher,
    user_id: &str,
    secret: &TotpSecret,
    code: &str,
) -> Result<Option<Vec<SecretString>>, UserError> {
    let Some(step) = secret.matching_step(code, now_unix()) else {
        return Ok(None);
    };
    let sealed_secret = cipher.seal(secret, user_id)?;
    let (codes, recovery_hashes) = new_recovery_codes(users.hasher()).await?;
    let enabled = users
        .update(user_id, |user| {
            if user.two_factor.is_some() {
                return Ok(false);
            }
            user.two_factor = Some(TwoFactor {
                sealed_secret: sealed_secret.clone(),
                last_used_step: step,
                recovery_hashes: recovery_hashes.clone(),
                enabled_at: Utc::now(),
            });
            Ok(true)
        })
        .await?;
    Ok(enabled.then_some(codes))
}

/// Checks a code given in place of the second factor: a 6-digit TOTP code
/// of a step later than the last one used, or an unused recovery code.
/// The step or the recovery code is spent by a compare-and-swap write, so
/// of two concurrent requests with the same code only one succeeds.
pub async fn check_code(
    users: &Users,
    cipher: &SecretCipher,
    user_id: &str,
    code: &str,
) -> Result<CodeCheck, UserError> {
    let Some(two_factor) = users.get(user_id).await?.and_then(|user| user.two_factor) else {
        return Ok(CodeCheck::Refused);
    };
    if let Some(recovery) = normalize_recovery_code(code) {
        return use_recovery_code(users, user_id, &two_factor, &recovery).await;
    }
    let secret = cipher.open(&two_factor.sealed_secret, user_id)?;
    let Some(step) = secret.matching_step(code, now_unix()) else {
        return Ok(CodeCheck::Refused);
    };
    let fresh = users
        .update(user_id, |user| match user.two_factor.as_mut() {
            Some(current)
                if current.sealed_secret == two_factor.sealed_secret
                    && step > current.last_used_step =>
            {
                current.last_used_step = step;
                Ok(true)
            }
            _ => Ok(false),
        })
        .await?;
    Ok(if fresh {
        CodeCheck::Totp
    } else {
        CodeCheck::Refused
    })
}

async fn use_recovery_code(
    users: &Users,
    user_id: &str,
    two_factor: &TwoFactor,
    code: &SecretString,
) -> Result<CodeCheck, UserError> {
    let mut matched = None;
    for hash in &two_factor.recovery_hashes {
        if users.hasher().verify(code, hash).await? {
            matched = Some(hash.clone());
            break;
        }
    }
    let Some(matched) = matched else {
        return Ok(CodeCheck::Refused);
    };
    users
        .update(user_id, |user| {
            let Some(current) = user.two_factor.as_mut() else {
                return Ok(CodeCheck::Refused);
            };
            let before = current.recovery_hashes.len();
            current.recovery_hashes.retain(|hash| *hash != matched);
            Ok(if current.recovery_hashes.len() < before {
                CodeCheck::Recovery {
                    remaining: current.recovery_hashes.len(),
                }
            } else {
                CodeCheck::Refused
            })
        })
        .await
}

/// A new set of recovery codes; the old set stops working.
pub async fn regenerate_recovery_codes(
    users: &Users,
    user_id: &str,
) -> Result<Option<Vec<SecretString>>, UserError> {
    let (codes, hashes) = new_recovery_codes(users.hasher()).await?;
    let replaced = users
        .update(user_id, |user| match user.two_factor.as_mut() {
            Some(current) => {
                current.recovery_hashes.clone_from(&hashes);
                Ok(true)
            }
            None => Ok(false),
        })
        .await?;
    Ok(replaced.then_some(codes))
}

/// Turns the second factor off; returns whether it was on.
pub async fn disable(users: &Users, user_id: &str) -> Result<bool, UserError> {
    users
        .update(user_id, |user| Ok(user.two_factor.take().is_some()))
        .await
}

/// What `portico user disable-2fa` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfflineDisable {
    pub was_enabled: bool,
    pub sessions_ended: usize,
}

/// The way back for a lost device: turns off `username`'s second factor
/// in the data directory and ends every session of that user (their epoch
/// rises, and the stored sessions go). Holding the `DataDir` proves that no
/// server is using it meanwhile.
pub async fn disable_offline(
    data_dir: &DataDir,
    username: &str,
) -> Result<OfflineDisable, UserError> {
    let data_dir = data_dir.path();
    let users = Users::load(data_dir, Hasher::new(1))?;
    let sessions = FileSessionStore::load(data_dir)?;
    disable_on(&users, &sessions, username).await
}

/// `disable_offline` on given stores (Redis, where no lock is needed).
pub async fn disable_on(
    users: &Users,
    sessions: &dyn SessionPurge,
    username: &str,
) -> Result<OfflineDisable, UserError> {
    let user = users
        .find_by_name(username)
        .await?
        .ok_or(UserError::NoSuchUser)?;
    let was_enabled = users
        .update(&user.id, |user| {
            user.session_epoch += 1;
            Ok(user.two_factor.take().is_some())
        })
        .await?;
    let sessions_ended = sessions.purge_where(USER_ID, &user.id).await?;
    let pending = sessions.purge_where(PENDING_USER, &user.id).await?;
    Ok(OfflineDisable {
        was_enabled,
        sessions_ended: sessions_ended + pending,
    })
}

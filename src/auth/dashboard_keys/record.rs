//! A stored key record, the key format and the expiry choices.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use crate::auth::principal::{Principal, PrincipalKind, Role};
use crate::auth::scope::Scope;

pub(super) const KEY_PREFIX: &str = "ptk_";

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRecord {
    pub id: String,
    pub name: String,
    pub user_id: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<DateTime<Utc>>,
    pub key_hash: String,
    /// After a roll, the replaced secret's hash and when it stops working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<PreviousSecret>,
    /// Permissions, workspaces, allowlist and hourly limit. Absent in
    /// records written before scopes existed: then the role's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
}

/// A rolled key's old secret, valid until `valid_until` (SPEC §5, roll).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviousSecret {
    pub key_hash: String,
    pub valid_until: DateTime<Utc>,
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl KeyRecord {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|expiry| expiry <= now)
    }

    /// The old secret's hash while its grace period lasts.
    pub fn previous_hash(&self, now: DateTime<Utc>) -> Option<&str> {
        self.previous
            .as_ref()
            .filter(|previous| previous.valid_until > now)
            .map(|previous| previous.key_hash.as_str())
    }

    /// What may be shown of the key after its one-time display.
    pub fn display_prefix(&self) -> String {
        format!("{KEY_PREFIX}{}_…", self.id)
    }

    pub(super) fn principal(&self) -> Principal {
        Principal {
            id: self.id.as_str().into(),
            kind: PrincipalKind::DashboardKey,
            name: self.name.as_str().into(),
            role: self.role,
            scope: Arc::new(self.effective_scope()),
        }
    }

    /// The stored scope, or the role's default for an older record.
    pub fn effective_scope(&self) -> Scope {
        self.scope
            .clone()
            .unwrap_or_else(|| Scope::for_role(self.role))
    }
}

/// The parts of a presented key in the dashboard-key format.
pub(super) struct KeyParts<'a> {
    pub(super) id: &'a str,
}

pub(super) fn split_key(key: &str) -> Option<KeyParts<'_>> {
    let (id, secret) = key.strip_prefix(KEY_PREFIX)?.split_once('_')?;
    // Branch-free folds: checked many bytes at a time, on every request.
    let id_ok = (8..=16).contains(&id.len())
        && id.bytes().fold(true, |ok, b| {
            ok & (b.is_ascii_lowercase() | b.is_ascii_digit())
        });
    let secret_ok = secret.len() >= 40
        && secret
            .bytes()
            .fold(true, |ok, b| ok & b.is_ascii_alphanumeric());
    (id_ok && secret_ok).then_some(KeyParts { id })
}

/// How long a new key lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Never,
    Days(u16),
}

impl Expiry {
    /// The choices as a number of days, for the JSON API and the CLI.
    pub fn from_days(days: Option<u32>) -> Option<Self> {
        match days {
            None => Some(Self::Never),
            Some(30 | 90 | 365) => days.and_then(|d| u16::try_from(d).ok()).map(Self::Days),
            Some(_) => None,
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "never" | "" => Some(Self::Never),
            "30" => Some(Self::Days(30)),
            "90" => Some(Self::Days(90)),
            "365" => Some(Self::Days(365)),
            _ => None,
        }
    }

    pub(super) fn from(self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Never => None,
            Self::Days(days) => Some(now + Duration::days(i64::from(days))),
        }
    }
}

//! A stored key record, the key format and the expiry choices.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::principal::{Principal, PrincipalKind, Role};

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
        }
    }
}

/// The parts of a presented key in the dashboard-key format.
pub(super) struct KeyParts<'a> {
    pub(super) id: &'a str,
}

pub(super) fn split_key(key: &str) -> Option<KeyParts<'_>> {
    let (id, secret) = key.strip_prefix(KEY_PREFIX)?.split_once('_')?;
    let id_ok = (8..=16).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let secret_ok = secret.len() >= 40 && secret.bytes().all(|b| b.is_ascii_alphanumeric());
    (id_ok && secret_ok).then_some(KeyParts { id })
}

/// How long a new key lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Never,
    Days(u16),
}

impl Expiry {
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

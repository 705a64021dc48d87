//! The rows of the activity trail and how many of each are kept: what
//! `activity.rs` records and every `ActivityStore` keeps.

use std::collections::VecDeque;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The newest account events kept.
pub const ACCOUNT_EVENTS_KEPT: usize = 200;
/// The newest (code, address, hour) rows of anonymous failures kept.
pub const FAILURE_ROWS_KEPT: usize = 200;
/// What happened to an account. `portico::auth::activity::AccountAction`
/// is the whole vocabulary; new kinds (2FA) are added here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccountAction {
    Setup,
    Login,
    Logout,
    SecondFactorFailed,
    PasswordChanged,
    TwoFactorEnabled,
    TwoFactorDisabled,
    RecoveryCodesRegenerated,
    KeyCreated,
    KeyRevoked,
    KeyRolled,
    KeyEdited,
    WorkspaceAdded,
    WorkspaceRemoved,
}

impl AccountAction {
    /// How the Account Security page names it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Setup => "Dashboard user created",
            Self::Login => "Logged in",
            Self::Logout => "Logged out",
            Self::SecondFactorFailed => "Wrong second-factor code",
            Self::PasswordChanged => "Password changed",
            Self::TwoFactorEnabled => "Two-factor login enabled",
            Self::TwoFactorDisabled => "Two-factor login disabled",
            Self::RecoveryCodesRegenerated => "Recovery codes regenerated",
            Self::KeyCreated => "API key created",
            Self::KeyRevoked => "API key revoked",
            Self::KeyRolled => "API key rolled",
            Self::KeyEdited => "API key scope edited",
            Self::WorkspaceAdded => "Workspace added",
            Self::WorkspaceRemoved => "Workspace removed",
        }
    }

    /// Failures are shown as such.
    pub fn is_failure(self) -> bool {
        matches!(self, Self::SecondFactorFailed)
    }
}

/// One thing done by (or to) a named account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountEvent {
    pub at: DateTime<Utc>,
    pub action: AccountAction,
    /// The user name or key name that acted, never an opaque id.
    pub actor: String,
    pub client: IpAddr,
    /// What it acted on: a key's or workspace's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Anonymous failures with one code from one address within one hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureRow {
    pub code: String,
    pub client: IpAddr,
    /// The start of the hour.
    pub hour: DateTime<Utc>,
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    pub count: u64,
}

/// Counts one anonymous failure in `failures`, newest first: a repeat of
/// the same code from the same client in the same hour adds to its row
/// (moved to the front), anything else starts one; the oldest rows past
/// `FAILURE_ROWS_KEPT` fall off. Every activity back end keeps its rows so.
pub fn count_failure_in(
    failures: &mut VecDeque<FailureRow>,
    code: &str,
    client: IpAddr,
    hour: DateTime<Utc>,
    at: DateTime<Utc>,
) {
    let same = failures
        .iter()
        .position(|row| row.client == client && row.hour == hour && row.code == code);
    let row = match same.and_then(|index| failures.remove(index)) {
        Some(mut row) => {
            row.last_at = at;
            row.count += 1;
            row
        }
        None => FailureRow {
            code: code.to_owned(),
            client,
            hour,
            first_at: at,
            last_at: at,
            count: 1,
        },
    };
    failures.push_front(row);
    failures.truncate(FAILURE_ROWS_KEPT);
}

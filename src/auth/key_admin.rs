//! Key management as one code path for the dashboard, the JSON API and the
//! command line: the same validation, the same store operations, the same
//! log lines and audit-trail entries, whoever asks.

use std::net::IpAddr;
use std::time::Duration;

use secrecy::SecretString;

use super::activity::{AccountAction, ActivityLog};
use super::dashboard_keys::{Expiry, KeyRecord, Keys};
use super::principal::Role;
use super::scope::{Scope, ScopeError};

pub const MAX_KEY_NAME_CHARS: usize = 64;
/// How long a rolled key's old secret keeps working unless told otherwise.
pub const DEFAULT_ROLL_GRACE: Duration = Duration::from_secs(86_400);
/// The longest grace period a roll accepts: 30 days.
pub const MAX_ROLL_GRACE_SECS: u64 = 30 * 86_400;

/// A field of a key request that cannot be accepted, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFieldError {
    pub field: &'static str,
    pub message: String,
}

impl KeyFieldError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// A validated request for a new key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    name: String,
    role: Role,
    expiry: Expiry,
    scope: Scope,
}

impl NewKey {
    /// `role` is `client` (also when absent or empty) or `admin`; `expiry`
    /// is `None` when the caller's choice was not one of the offered ones.
    pub fn parse(
        name: &str,
        role: Option<&str>,
        expiry: Option<Expiry>,
    ) -> Result<Self, KeyFieldError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_KEY_NAME_CHARS {
            return Err(KeyFieldError::new(
                "name",
                format!("A key needs a name of 1 to {MAX_KEY_NAME_CHARS} characters."),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(KeyFieldError::new(
                "name",
                "A key name cannot hold control characters.",
            ));
        }
        let role = match role.unwrap_or("") {
            "client" | "" => Role::Client,
            "admin" => Role::Admin,
            _ => {
                return Err(KeyFieldError::new(
                    "role",
                    "The role must be 'client' or 'admin'.",
                ))
            }
        };
        let expiry = expiry.ok_or_else(|| {
            KeyFieldError::new("expiry", "The expiry must be never, 30, 90 or 365 days.")
        })?;
        Ok(Self {
            name: name.to_owned(),
            role,
            expiry,
            scope: Scope::for_role(role),
        })
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// Narrows the key to `scope` (built with `Scope::parse` for this role).
    pub fn with_scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }
}

impl From<ScopeError> for KeyFieldError {
    fn from(err: ScopeError) -> Self {
        Self::new(err.field, err.message)
    }
}

/// A grace period in seconds, as the API and the CLI take it.
pub fn parse_grace(seconds: Option<u64>) -> Result<Duration, KeyFieldError> {
    match seconds {
        None => Ok(DEFAULT_ROLL_GRACE),
        Some(secs) if secs <= MAX_ROLL_GRACE_SECS => Ok(Duration::from_secs(secs)),
        Some(_) => Err(KeyFieldError::new(
            "graceSeconds",
            format!("The grace period is at most {MAX_ROLL_GRACE_SECS} seconds (30 days)."),
        )),
    }
}

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Client => "client",
    }
}

/// Who manages keys, for the log and the audit trail.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// The user or key id the new key belongs to.
    pub id: &'a str,
    /// A readable name: the user name, `ADMIN_API_KEY`, or a key's name.
    pub name: &'a str,
    pub client: IpAddr,
    /// The reach of a key manager using an API key; `None` for the
    /// dashboard session and the command line, which see every key.
    pub scope: Option<&'a Scope>,
}

impl Actor<'_> {
    /// Whether `record` exists for this actor: a key wider than the
    /// actor's own scope is absent to it, so that a key manager held to
    /// some workspaces or permissions can neither see nor touch (and so
    /// learn about) keys beyond them. An unrestricted scope sees all.
    pub fn sees(&self, record: &KeyRecord) -> bool {
        self.scope
            .is_none_or(|own| record.effective_scope().exceeds(own).is_none())
    }
}

/// The store and the trail the operations write to.
#[derive(Clone, Copy)]
pub struct KeyAdmin<'a> {
    pub keys: &'a Keys,
    pub activity: &'a ActivityLog,
}

impl KeyAdmin<'_> {
    fn audit(&self, actor: &Actor<'_>, what: &'static str, record: &KeyRecord) {
        tracing::info!(
            key = %record.id,
            role = role_name(record.role),
            by = actor.name,
            "an API key was {what}"
        );
        let action = match what {
            "generated" => AccountAction::KeyCreated,
            "revoked" => AccountAction::KeyRevoked,
            "edited" => AccountAction::KeyEdited,
            _ => AccountAction::KeyRolled,
        };
        let detail = format!("{} (id {})", record.name, record.id);
        self.activity
            .account(action, actor.name, actor.client, Some(&detail));
    }

    /// The keys `actor` sees (`Actor::sees`), newest first.
    pub async fn list(&self, actor: &Actor<'_>) -> anyhow::Result<Vec<KeyRecord>> {
        let mut keys = self.keys.list().await?;
        keys.retain(|record| actor.sees(record));
        Ok(keys)
    }

    /// The key `id`, or `None` when there is none or `actor` does not see it.
    pub async fn find(&self, actor: &Actor<'_>, id: &str) -> anyhow::Result<Option<KeyRecord>> {
        Ok(self.keys.get(id).await?.filter(|record| actor.sees(record)))
    }

    /// Generates a key; its plaintext is returned once and exists nowhere else.
    pub async fn create(
        &self,
        actor: &Actor<'_>,
        new: &NewKey,
    ) -> anyhow::Result<(SecretString, KeyRecord)> {
        let (plaintext, record) = self
            .keys
            .generate(&new.name, actor.id, new.role, new.expiry, new.scope.clone())
            .await?;
        self.audit(actor, "generated", &record);
        Ok((plaintext, record))
    }

    /// Revokes a key: the record, or `None` when there was no such key.
    pub async fn revoke(&self, actor: &Actor<'_>, id: &str) -> anyhow::Result<Option<KeyRecord>> {
        if self.find(actor, id).await?.is_none() {
            return Ok(None);
        }
        let revoked = self.keys.revoke(id).await?;
        if let Some(record) = &revoked {
            self.audit(actor, "revoked", record);
        }
        Ok(revoked)
    }

    /// Changes what a key may reach, keeping its secret.
    pub async fn edit(
        &self,
        actor: &Actor<'_>,
        id: &str,
        scope: Scope,
    ) -> anyhow::Result<Option<KeyRecord>> {
        if self.find(actor, id).await?.is_none() {
            return Ok(None);
        }
        let Some((before, after)) = self.keys.set_scope(id, scope).await? else {
            return Ok(None);
        };
        tracing::info!(
            key = %after.id,
            by = actor.name,
            before = %serde_json::to_string(&before.effective_scope()).unwrap_or_default(),
            after = %serde_json::to_string(&after.effective_scope()).unwrap_or_default(),
            "an API key's scope was edited"
        );
        let scope = after.effective_scope();
        // The key's id (not its user-chosen name) and the whole new scope:
        // structured ASCII the trail keeps whole (`account_structured`).
        let detail = format!(
            "id {}: {}; workspaces {}; allowlist {}; hourly limit {}",
            after.id,
            scope
                .permissions
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            scope
                .workspaces
                .as_ref()
                .map_or_else(|| "all".to_owned(), |ids| ids.join(", ")),
            if scope.allowed_ips.is_empty() {
                "any address".to_owned()
            } else {
                scope
                    .allowed_ips
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            scope
                .hourly_limit
                .map_or_else(|| "API_RATE_LIMIT".to_owned(), |n| n.to_string()),
        );
        self.activity.account_structured(
            AccountAction::KeyEdited,
            actor.name,
            actor.client,
            &detail,
        );
        Ok(Some(after))
    }

    /// Gives a key a new secret; the old one works for `grace` more.
    pub async fn roll(
        &self,
        actor: &Actor<'_>,
        id: &str,
        grace: Duration,
    ) -> anyhow::Result<Option<(SecretString, KeyRecord)>> {
        if self.find(actor, id).await?.is_none() {
            return Ok(None);
        }
        let rolled = self.keys.roll(id, grace).await?;
        if let Some((_, record)) = &rolled {
            self.audit(actor, "rolled", record);
        }
        Ok(rolled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_request_is_checked_field_by_field() {
        let ok = NewKey::parse("  CI  ", None, Some(Expiry::Never)).unwrap();
        assert_eq!(ok.name, "CI");
        assert_eq!(ok.role, Role::Client);
        assert_eq!(
            NewKey::parse("", None, Some(Expiry::Never))
                .unwrap_err()
                .field,
            "name"
        );
        assert_eq!(
            NewKey::parse(&"x".repeat(65), None, Some(Expiry::Never))
                .unwrap_err()
                .field,
            "name"
        );
        assert_eq!(
            NewKey::parse("a\u{7}b", None, Some(Expiry::Never))
                .unwrap_err()
                .field,
            "name"
        );
        assert_eq!(
            NewKey::parse("CI", Some("root"), Some(Expiry::Never))
                .unwrap_err()
                .field,
            "role"
        );
        assert_eq!(
            NewKey::parse("CI", Some("admin"), None).unwrap_err().field,
            "expiry"
        );
    }

    #[test]
    fn a_grace_period_defaults_to_a_day_and_is_bounded() {
        assert_eq!(parse_grace(None).unwrap(), DEFAULT_ROLL_GRACE);
        assert_eq!(parse_grace(Some(0)).unwrap(), Duration::ZERO);
        assert!(parse_grace(Some(MAX_ROLL_GRACE_SECS + 1)).is_err());
    }
}

//! What a key may do (issue 17): permissions, the workspaces it reaches,
//! the addresses it may come from and its own hourly limit. Handlers ask
//! the principal (`principal.require(Permission::Ask)?`), never compare strings.

use std::net::IpAddr;
use std::num::NonZeroU32;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

/// What a principal is: an admin reaches everything, a client its scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Client,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum Permission {
    /// Submit questions and cancel one's own pending jobs.
    #[serde(rename = "ask")]
    Ask,
    /// Read one's own jobs and the queue.
    #[serde(rename = "jobs:read")]
    JobsRead,
    #[serde(rename = "workspaces:read")]
    WorkspacesRead,
    /// Add and remove workspaces (admin keys only).
    #[serde(rename = "workspaces:write")]
    WorkspacesWrite,
    /// Create, edit, roll and revoke keys (admin keys only).
    #[serde(rename = "keys:manage")]
    KeysManage,
}

impl Permission {
    pub const ALL: [Self; 5] = [
        Self::Ask,
        Self::JobsRead,
        Self::WorkspacesRead,
        Self::WorkspacesWrite,
        Self::KeysManage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ask => "ask",
            Self::JobsRead => "jobs:read",
            Self::WorkspacesRead => "workspaces:read",
            Self::WorkspacesWrite => "workspaces:write",
            Self::KeysManage => "keys:manage",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == text.trim())
    }

    pub fn admin_only(self) -> bool {
        matches!(self, Self::WorkspacesWrite | Self::KeysManage)
    }
}

/// The reach of a principal. Records written before scopes existed have
/// none stored and get `Scope::for_role`, which is exactly their old reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Scope {
    /// Sorted, without duplicates.
    pub permissions: Vec<Permission>,
    /// Workspace ids; `None` is every workspace, present and future.
    #[serde(default)]
    pub workspaces: Option<Vec<String>>,
    /// Networks the key may be used from (after `ALLOWED_IPS`); empty is any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<String>)]
    pub allowed_ips: Vec<IpNetwork>,
    /// Requests per hour, instead of `API_RATE_LIMIT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<u32>)]
    pub hourly_limit: Option<NonZeroU32>,
}

/// A scope field that cannot be accepted, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeError {
    pub field: &'static str,
    pub message: String,
}

impl Scope {
    /// Admin: everything. Client: ask, jobs:read, workspaces:read. All workspaces.
    pub fn for_role(role: Role) -> Self {
        let permissions = match role {
            Role::Admin => Permission::ALL.to_vec(),
            Role::Client => vec![
                Permission::Ask,
                Permission::JobsRead,
                Permission::WorkspacesRead,
            ],
        };
        Self {
            permissions,
            workspaces: None,
            allowed_ips: Vec::new(),
            hourly_limit: None,
        }
    }

    pub fn allows(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }

    pub fn reaches_workspace(&self, id: &str) -> bool {
        self.workspaces
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|w| w == id))
    }

    pub fn allows_address(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        self.allowed_ips.is_empty() || self.allowed_ips.iter().any(|net| net.contains(addr))
    }

    /// This scope with `changes` applied, checked for a key of `role`.
    pub fn apply(mut self, role: Role, changes: &ScopeChanges) -> Result<Self, ScopeError> {
        if let Some(names) = &changes.permissions {
            let mut parsed = Vec::with_capacity(names.len());
            for name in names.iter().filter(|n| !n.trim().is_empty()) {
                let permission = Permission::parse(name).ok_or_else(|| ScopeError {
                    field: "permissions",
                    message: format!(
                        "'{}' is not a permission; use ask, jobs:read, workspaces:read, \
                         workspaces:write or keys:manage",
                        name.trim()
                    ),
                })?;
                if permission.admin_only() && role != Role::Admin {
                    return Err(ScopeError {
                        field: "permissions",
                        message: format!("'{}' is for admin keys only", permission.as_str()),
                    });
                }
                parsed.push(permission);
            }
            parsed.sort();
            parsed.dedup();
            self.permissions = parsed;
        }
        if let Some(workspaces) = &changes.workspaces {
            self.workspaces = workspaces.as_ref().map(|ids| {
                let mut ids: Vec<String> = ids
                    .iter()
                    .map(|id| id.trim().to_owned())
                    .filter(|id| !id.is_empty())
                    .collect();
                ids.sort();
                ids.dedup();
                ids
            });
        }
        if let Some(entries) = &changes.allowed_ips {
            let mut networks = Vec::with_capacity(entries.len());
            for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
                let network: IpNetwork = entry.parse().map_err(|_| ScopeError {
                    field: "allowedIps",
                    message: format!(
                        "'{entry}' is not an address or CIDR network such as 203.0.113.0/24"
                    ),
                })?;
                networks.push(network);
            }
            self.allowed_ips = networks;
        }
        if let Some(limit) = changes.hourly_limit {
            self.hourly_limit = match limit {
                None => None,
                Some(limit) => {
                    Some(
                        NonZeroU32::new(limit).ok_or_else(|| ScopeError {
                            field: "hourlyLimit",
                            message: "The hourly limit is at least 1; use null for API_RATE_LIMIT"
                                .to_owned(),
                        })?,
                    )
                }
            };
        }
        Ok(self)
    }

    /// The first thing `self` grants that `holder` does not have: a key
    /// manager cannot hand out more than it holds itself.
    pub fn exceeds(&self, holder: &Self) -> Option<Permission> {
        if let Some(missing) = self.permissions.iter().find(|p| !holder.allows(**p)) {
            return Some(*missing);
        }
        let wider = match (&self.workspaces, &holder.workspaces) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(mine), Some(theirs)) => mine.iter().any(|w| !theirs.contains(w)),
        };
        wider.then_some(Permission::KeysManage)
    }
}

/// Changes to a scope as the API, the form and the command line give them:
/// an absent field keeps what is there; `null` workspaces means all of
/// them, a `null` hourly limit means `API_RATE_LIMIT`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScopeChanges {
    /// Replaces the permissions: ask, jobs:read, workspaces:read,
    /// workspaces:write, keys:manage (the last two for admin keys only).
    #[serde(default)]
    pub permissions: Option<Vec<String>>,
    /// Workspace ids the key is held to; `null` for every workspace.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub workspaces: Option<Option<Vec<String>>>,
    /// Addresses or CIDR networks; an empty list allows any address.
    #[serde(default)]
    pub allowed_ips: Option<Vec<String>>,
    /// Requests per hour for this key; `null` for `API_RATE_LIMIT`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>)]
    pub hourly_limit: Option<Option<u32>>,
}

/// A field that is present, even as `null`, is `Some`.
fn present<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(json: &str) -> ScopeChanges {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_client_scope_cannot_hold_admin_permissions() {
        let base = Scope::for_role(Role::Client);
        let err = base
            .clone()
            .apply(Role::Client, &changes(r#"{"permissions":["keys:manage"]}"#))
            .unwrap_err();
        assert_eq!(err.field, "permissions");
        assert!(Scope::for_role(Role::Admin)
            .apply(Role::Admin, &changes(r#"{"permissions":["keys:manage"]}"#))
            .is_ok());
    }

    #[test]
    fn defaults_follow_the_role_and_absent_fields_keep_what_is_there() {
        let client = Scope::for_role(Role::Client);
        assert!(client.allows(Permission::Ask) && !client.allows(Permission::WorkspacesWrite));
        assert!(client.reaches_workspace("anything"));
        assert!(Permission::ALL
            .iter()
            .all(|p| Scope::for_role(Role::Admin).allows(*p)));
        let held = client
            .apply(
                Role::Client,
                &changes(r#"{"workspaces":["w1"],"hourlyLimit":10}"#),
            )
            .unwrap();
        assert!(held.reaches_workspace("w1") && !held.reaches_workspace("w2"));
        let same = held.clone().apply(Role::Client, &changes("{}")).unwrap();
        assert_eq!(same, held);
        let all = held
            .apply(
                Role::Client,
                &changes(r#"{"workspaces":null,"hourlyLimit":null}"#),
            )
            .unwrap();
        assert_eq!(all, Scope::for_role(Role::Client));
    }

    #[test]
    fn an_allowlist_accepts_only_its_networks() {
        let scope = Scope::for_role(Role::Client)
            .apply(
                Role::Client,
                &changes(r#"{"allowedIps":["10.1.0.0/16","::1"]}"#),
            )
            .unwrap();
        assert!(scope.allows_address("10.1.2.3".parse().unwrap()));
        assert!(!scope.allows_address("10.2.0.1".parse().unwrap()));
        assert!(scope.allows_address("::ffff:10.1.0.9".parse().unwrap()));
        assert!(Scope::for_role(Role::Client)
            .apply(Role::Client, &changes(r#"{"allowedIps":["nope"]}"#))
            .is_err());
    }

    #[test]
    fn a_key_manager_cannot_grant_more_than_it_holds() {
        let held = Scope::for_role(Role::Admin)
            .apply(Role::Admin, &changes(r#"{"workspaces":["w1"]}"#))
            .unwrap();
        let wider = Scope::for_role(Role::Client);
        assert!(wider.exceeds(&held).is_some());
        let narrower = wider
            .apply(Role::Client, &changes(r#"{"workspaces":["w1"]}"#))
            .unwrap();
        assert_eq!(narrower.exceeds(&held), None);
    }
}

//! Who is calling: the principal the gate puts into every `/api` request.

mod json;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use super::scope::Role;
use super::scope::{Permission, Scope};

/// What the principal lacks for an action (403 in the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("This action needs an admin key or a dashboard login")]
    AdminRequired,
    #[error("This key lacks the '{}' permission; ask an admin to add it to the key's scope", .0.as_str())]
    InsufficientScope(Permission),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PrincipalKind {
    Session,
    DashboardKey,
    AdminKey,
    ClientKey,
}

/// Cheap to clone: the gate hands one to every request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Principal {
    #[schema(value_type = String)]
    pub id: Arc<str>,
    pub kind: PrincipalKind,
    #[schema(value_type = String)]
    pub name: Arc<str>,
    pub role: Role,
    /// What it may reach: a dashboard key's stored scope; for the
    /// environment keys and sessions, their role's whole reach.
    #[serde(rename = "scopes")]
    #[schema(value_type = Scope)]
    pub scope: Arc<Scope>,
}

impl Principal {
    /// Everything on every workspace: the reach of sessions and the admin key.
    pub fn admin_scope() -> Arc<Scope> {
        static FULL: std::sync::LazyLock<Arc<Scope>> =
            std::sync::LazyLock::new(|| Arc::new(Scope::for_role(Role::Admin)));
        Arc::clone(&FULL)
    }

    pub fn admin_key() -> Self {
        Self {
            id: "admin-key".into(),
            kind: PrincipalKind::AdminKey,
            name: "ADMIN_API_KEY".into(),
            role: Role::Admin,
            scope: Self::admin_scope(),
        }
    }

    /// A `VALID_API_KEYS` entry is a client of its own, named by the
    /// shortened digest of the key (never by its position in the list).
    pub fn client_key(digest: &str) -> Self {
        Self {
            id: format!("client-key-{digest}").into(),
            kind: PrincipalKind::ClientKey,
            name: format!("VALID_API_KEYS key {digest}").into(),
            role: Role::Client,
            scope: Arc::new(Scope::for_role(Role::Client)),
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    pub fn require_admin(&self) -> Result<(), Denied> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(Denied::AdminRequired)
        }
    }

    /// `Ok` when the principal's scope holds `permission`, else 403
    /// `insufficient-scope`; admin-only permissions asked of a client are
    /// 403 `admin-required`, as before scopes.
    pub fn require(&self, permission: Permission) -> Result<(), Denied> {
        if permission.admin_only() && !self.is_admin() {
            // No client scope can hold it: the role is what is missing.
            Err(Denied::AdminRequired)
        } else if self.scope.allows(permission) {
            Ok(())
        } else {
            Err(Denied::InsufficientScope(permission))
        }
    }

    /// Whether the workspace `id` is inside the scope; outside it, a
    /// workspace is answered as if it did not exist.
    pub fn reaches_workspace(&self, id: &str) -> bool {
        self.scope.reaches_workspace(id)
    }

    /// API clients have an hourly quota; logged-in dashboard users do not.
    pub fn is_rate_limited(&self) -> bool {
        self.kind != PrincipalKind::Session
    }
}

//! Who is calling: the principal the gate puts into every `/api` request.

use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::{dev::Payload, FromRequest, HttpMessage, HttpRequest};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PrincipalKind {
    Session,
    DashboardKey,
    AdminKey,
    ClientKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Client,
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
}

impl Principal {
    pub fn admin_key() -> Self {
        Self {
            id: "admin-key".into(),
            kind: PrincipalKind::AdminKey,
            name: "ADMIN_API_KEY".into(),
            role: Role::Admin,
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
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::AdminRequired)
        }
    }

    /// API clients have an hourly quota; logged-in dashboard users do not.
    pub fn is_rate_limited(&self) -> bool {
        self.kind != PrincipalKind::Session
    }
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let principal = req.extensions().get::<Principal>().cloned();
        ready(principal.ok_or_else(|| {
            ApiError::Unexpected(anyhow::anyhow!(
                "no principal on {}: the route is outside the gated scope",
                req.path()
            ))
        }))
    }
}

//! Key management for admin principals: `POST/GET /api/keys`,
//! `DELETE /api/keys/{id}` and `POST /api/keys/{id}/roll`, on the same code
//! path as Account Security (`auth::key_admin`).

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::resource;
use super::schemas::ErrorBody;
use crate::auth::activity::ActivityLog;
use crate::auth::dashboard_keys::{DuplicateKeyName, Expiry, KeyRecord, Keys};
use crate::auth::key_admin::{parse_grace, Actor, KeyAdmin, KeyFieldError, NewKey};
use crate::auth::{Gate, Permission, Principal, Role, Scope, ScopeChanges};
use crate::core::address::client_address;
use crate::http::json::{ApiJson, ApiJsonOrEmpty};
use crate::http::ApiError;

pub fn api_routes(cfg: &mut super::GatedRoutes) {
    cfg.service(resource("/keys").get(list).post(create))
        .service(resource("/keys/{id}").patch(edit).delete(revoke))
        .service(resource("/keys/{id}/roll").post(roll));
}

/// A key record as the API shows it: never the secret nor its hash.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyView {
    /// The public `<id>` of `ptk_<id>_<secret>`.
    pub id: String,
    pub name: String,
    /// The user or key that created it.
    pub user_id: String,
    pub role: Role,
    /// What may be shown of the key: `ptk_<id>_…`.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<DateTime<Utc>>,
    /// After a roll: until when the old secret still works.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_valid_until: Option<DateTime<Utc>>,
    /// Permissions, workspaces, address allowlist and hourly limit.
    pub scopes: Scope,
}

impl From<KeyRecord> for KeyView {
    fn from(record: KeyRecord) -> Self {
        let now = Utc::now();
        Self {
            prefix: record.display_prefix(),
            scopes: record.effective_scope(),
            previous_valid_until: record
                .previous
                .as_ref()
                .map(|previous| previous.valid_until)
                .filter(|until| *until > now),
            id: record.id,
            name: record.name,
            user_id: record.user_id,
            role: record.role,
            created_at: record.created_at,
            expires_at: record.expires_at,
            last_used_at: record.last_used_at,
        }
    }
}

/// A new or rolled key: the plaintext, shown this once, and its record.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuedKey {
    /// `ptk_<id>_<secret>`; store it now, it is never shown again.
    pub key: String,
    pub record: KeyView,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateKeyBody {
    /// 1 to 64 characters, no control characters.
    pub name: String,
    /// `client` (default) or `admin`.
    pub role: Option<String>,
    /// 30, 90 or 365; leave it out for a key that never expires.
    pub expires_in_days: Option<u32>,
    /// Default: ask, jobs:read, workspaces:read for a client key; every
    /// permission for an admin key.
    pub permissions: Option<Vec<String>>,
    /// Workspace ids the key is held to; leave it out for all of them.
    pub workspaces: Option<Vec<String>>,
    /// Addresses or CIDR networks the key may be used from; default any.
    pub allowed_ips: Option<Vec<String>>,
    /// Requests per hour for this key instead of `API_RATE_LIMIT`.
    pub hourly_limit: Option<u32>,
}

impl CreateKeyBody {
    fn scope_changes(&self) -> ScopeChanges {
        ScopeChanges {
            permissions: self.permissions.clone(),
            workspaces: self.workspaces.clone().map(Some),
            allowed_ips: self.allowed_ips.clone(),
            hourly_limit: self.hourly_limit.map(Some),
        }
    }
}

/// A key manager may not hand out more than its own scope holds.
fn within_own_scope(principal: &Principal, scope: &Scope) -> Result<(), ApiError> {
    match scope.exceeds(&principal.scope) {
        None => Ok(()),
        Some(permission) => Err(ApiError::invalid_field(
            if permission == Permission::KeysManage && principal.scope.allows(permission) {
                "workspaces"
            } else {
                "permissions"
            },
            format!(
                "goes beyond this key's own scope ('{}' or its workspaces); a key cannot \
                 grant what it does not hold",
                permission.as_str()
            ),
        )),
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RollKeyBody {
    /// How long the old secret keeps working: default 86400, 0 = not at all,
    /// at most 2592000 (30 days).
    pub grace_seconds: Option<u64>,
}

impl From<KeyFieldError> for ApiError {
    fn from(err: KeyFieldError) -> Self {
        let field = match err.field {
            "expiry" => "expiresInDays",
            other => other,
        };
        ApiError::invalid_field(field, err.message)
    }
}

/// What every key-management handler needs: the calling principal, its
/// address (for the audit trail) and the stores, taken from the request in
/// one extractor so each handler names only its own inputs.
pub struct KeyManager {
    pub(super) principal: Principal,
    client: std::net::IpAddr,
    keys: web::Data<Keys>,
    activity: web::Data<ActivityLog>,
}

impl KeyManager {
    /// The caller may manage keys only with `keys:manage` (403 otherwise).
    pub(super) fn require(&self) -> Result<(), ApiError> {
        Ok(self.principal.require(Permission::KeysManage)?)
    }

    pub(super) fn admin(&self) -> KeyAdmin<'_> {
        KeyAdmin {
            keys: &self.keys,
            activity: &self.activity,
        }
    }

    pub(super) fn actor(&self) -> Actor<'_> {
        Actor {
            id: &self.principal.id,
            name: &self.principal.name,
            client: self.client,
            scope: Some(&self.principal.scope),
        }
    }
}

impl FromRequest for KeyManager {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let principal = Principal::from_request(req, payload).into_inner();
        let app_data = || -> Option<_> {
            let gate = req.app_data::<web::Data<Gate>>()?;
            Some((
                client_address(req.peer_addr(), req.headers(), gate.trusted_proxies()),
                req.app_data::<web::Data<Keys>>()?.clone(),
                req.app_data::<web::Data<ActivityLog>>()?.clone(),
            ))
        };
        let parts = app_data().ok_or_else(|| {
            ApiError::Unexpected(anyhow::anyhow!("the key stores are not registered"))
        });
        ready(parts.and_then(|(client, keys, activity)| {
            Ok(Self {
                principal: principal?,
                client,
                keys,
                activity,
            })
        }))
    }
}

/// Every dashboard key, newest first.
#[utoipa::path(get, path = "/api/keys", tag = "keys",
    responses(
        (status = 200, description = "The key records", body = Vec<KeyView>),
        (status = 401, description = "No or a bad key", body = ErrorBody),
        (status = 403, description = "The caller's scope lacks keys:manage", body = ErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = [])))]
pub async fn list(manager: KeyManager) -> Result<HttpResponse, ApiError> {
    manager.require()?;
    let keys = manager
        .admin()
        .list(&manager.actor())
        .await
        .map_err(ApiError::storage)?;
    let keys: Vec<KeyView> = keys.into_iter().map(KeyView::from).collect();
    Ok(HttpResponse::Ok().json(keys))
}

/// Generates a key; the response is the only place its plaintext appears.
#[utoipa::path(post, path = "/api/keys", tag = "keys", request_body = CreateKeyBody,
    responses(
        (status = 201, description = "The new key, shown once", body = IssuedKey),
        (status = 400, description = "An invalid field, named in details", body = ErrorBody),
        (status = 401, description = "No or a bad key", body = ErrorBody),
        (status = 403, description = "The caller's scope lacks keys:manage", body = ErrorBody),
        (status = 409, description = "The creator has a key with this name already", body = ErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = [])))]
pub async fn create(
    manager: KeyManager,
    ApiJson(body): ApiJson<CreateKeyBody>,
) -> Result<HttpResponse, ApiError> {
    manager.require()?;
    let new = NewKey::parse(
        &body.name,
        Some(body.role.as_deref().unwrap_or("client")),
        Expiry::from_days(body.expires_in_days),
    )?;
    let scope = Scope::for_role(new.role())
        .apply(new.role(), &body.scope_changes())
        .map_err(KeyFieldError::from)?;
    within_own_scope(&manager.principal, &scope)?;
    let new = new.with_scope(scope);
    let (plaintext, record) = manager
        .admin()
        .create(&manager.actor(), &new)
        .await
        .map_err(|err| {
            if err.is::<DuplicateKeyName>() {
                ApiError::Conflict(format!(
                    "A key named '{}' exists already for this creator; choose another name \
                     or revoke the old key first",
                    body.name.trim()
                ))
            } else {
                ApiError::storage(err)
            }
        })?;
    Ok(no_store(HttpResponse::Created()).json(IssuedKey {
        key: plaintext.expose_secret().to_owned(),
        record: record.into(),
    }))
}

/// Changes a key's permissions, workspaces, allowlist or hourly limit,
/// keeping its secret; absent fields stay as they are.
#[utoipa::path(patch, path = "/api/keys/{id}", tag = "keys", request_body = ScopeChanges,
    params(("id" = String, Path, description = "The key's public id")),
    responses(
        (status = 200, description = "The edited key", body = KeyView),
        (status = 400, description = "An invalid field, named in details", body = ErrorBody),
        (status = 401, description = "No or a bad key", body = ErrorBody),
        (status = 403, description = "The caller's scope lacks keys:manage", body = ErrorBody),
        (status = 404, description = "No such key", body = ErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = [])))]
pub async fn edit(
    manager: KeyManager,
    id: web::Path<String>,
    ApiJson(changes): ApiJson<ScopeChanges>,
) -> Result<HttpResponse, ApiError> {
    manager.require()?;
    let admin = manager.admin();
    let actor = manager.actor();
    let record = admin
        .find(&actor, &id)
        .await
        .map_err(ApiError::storage)?
        .ok_or(ApiError::Missing("Key"))?;
    let scope = record
        .effective_scope()
        .apply(record.role, &changes)
        .map_err(KeyFieldError::from)?;
    within_own_scope(&manager.principal, &scope)?;
    let edited = admin
        .edit(&actor, &id, scope)
        .await
        .map_err(ApiError::storage)?
        .ok_or(ApiError::Missing("Key"))?;
    Ok(HttpResponse::Ok().json(KeyView::from(edited)))
}

/// Revokes a key: its next request gets 401.
#[utoipa::path(delete, path = "/api/keys/{id}", tag = "keys",
    params(("id" = String, Path, description = "The key's public id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No or a bad key", body = ErrorBody),
        (status = 403, description = "The caller's scope lacks keys:manage", body = ErrorBody),
        (status = 404, description = "No such key", body = ErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = [])))]
pub async fn revoke(manager: KeyManager, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    manager.require()?;
    match manager
        .admin()
        .revoke(&manager.actor(), &id)
        .await
        .map_err(ApiError::storage)?
    {
        Some(_) => Ok(HttpResponse::NoContent().finish()),
        None => Err(ApiError::Missing("Key")),
    }
}

/// Issues a new secret for the same record; the old one keeps working for
/// `graceSeconds` (default 86400), then gets 401.
#[utoipa::path(post, path = "/api/keys/{id}/roll", tag = "keys",
    params(("id" = String, Path, description = "The key's public id")),
    request_body(content = Option<RollKeyBody>, description = "Optional; an empty body means the default grace"),
    responses(
        (status = 200, description = "The new secret, shown once", body = IssuedKey),
        (status = 400, description = "An invalid field, named in details", body = ErrorBody),
        (status = 401, description = "No or a bad key", body = ErrorBody),
        (status = 403, description = "The caller's scope lacks keys:manage", body = ErrorBody),
        (status = 404, description = "No such key", body = ErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = [])))]
pub async fn roll(
    manager: KeyManager,
    id: web::Path<String>,
    ApiJsonOrEmpty(body): ApiJsonOrEmpty<RollKeyBody>,
) -> Result<HttpResponse, ApiError> {
    manager.require()?;
    let grace = parse_grace(body.grace_seconds)?;
    // A new secret hands out the key's whole scope: a key manager held to
    // less may not roll (and so obtain) a wider key.
    // A wider key is absent to it (`Actor::sees`), as for every verb.
    let (plaintext, record) = manager
        .admin()
        .roll(&manager.actor(), &id, grace)
        .await
        .map_err(ApiError::storage)?
        .ok_or(ApiError::Missing("Key"))?;
    Ok(no_store(HttpResponse::Ok()).json(IssuedKey {
        key: plaintext.expose_secret().to_owned(),
        record: record.into(),
    }))
}

/// A response carrying a plaintext key must not be kept by any cache.
fn no_store(mut builder: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    builder.insert_header((
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    ));
    builder
}

//! Account Security: edit what a key may reach (permissions, workspaces,
//! address allowlist, hourly limit) without changing its secret.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::pages::nav;
use super::security::{actor, key_admin, no_such_key};
use super::{redirect, render, DashboardError, Flash, KeyPages, Nav};
use crate::auth::dashboard_keys::KeyRecord;
use crate::auth::key_admin::role_name;
use crate::auth::session::{self, LoggedIn};
use crate::auth::{Permission, Role, ScopeChanges};

struct PermissionBox {
    name: &'static str,
    field: &'static str,
    checked: bool,
}

#[derive(Template)]
#[template(path = "key_scope.html")]
struct KeyScopePage {
    nav: Option<Nav>,
    flash: Option<Flash>,
    csrf_token: String,
    id: String,
    name: String,
    prefix: String,
    role: &'static str,
    permissions: Vec<PermissionBox>,
    workspaces: String,
    allowed_ips: String,
    hourly_limit: String,
}

fn field_of(permission: Permission) -> &'static str {
    match permission {
        Permission::Ask => "perm_ask",
        Permission::JobsRead => "perm_jobs_read",
        Permission::WorkspacesRead => "perm_workspaces_read",
        Permission::WorkspacesWrite => "perm_workspaces_write",
        Permission::KeysManage => "perm_keys_manage",
    }
}

fn page_for(logged_in: &LoggedIn, record: &KeyRecord, flash: Option<Flash>) -> KeyScopePage {
    let scope = record.effective_scope();
    KeyScopePage {
        nav: Some(nav(logged_in, "security")),
        flash,
        csrf_token: logged_in.csrf_token.clone(),
        id: record.id.clone(),
        name: record.name.clone(),
        prefix: record.display_prefix(),
        role: role_name(record.role),
        permissions: Permission::ALL
            .into_iter()
            .filter(|p| record.role == Role::Admin || !p.admin_only())
            .map(|p| PermissionBox {
                name: p.as_str(),
                field: field_of(p),
                checked: scope.allows(p),
            })
            .collect(),
        workspaces: scope
            .workspaces
            .map(|ids| ids.join(", "))
            .unwrap_or_default(),
        allowed_ips: scope
            .allowed_ips
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        hourly_limit: scope
            .hourly_limit
            .map(|n| n.to_string())
            .unwrap_or_default(),
    }
}

/// `GET …/keys/{id}/scope`: the form, filled with the key's scope.
pub async fn form(
    logged_in: LoggedIn,
    state: web::Data<KeyPages>,
    path: web::Path<String>,
) -> Result<HttpResponse, DashboardError> {
    match state.keys.get(&path).await {
        Ok(Some(record)) => Ok(render(StatusCode::OK, &page_for(&logged_in, &record, None))),
        Ok(None) => Err(no_such_key()),
        Err(err) => Err(DashboardError::storage("reading the keys", &err.into())),
    }
}

#[derive(Deserialize)]
pub struct ScopeForm {
    perm_ask: Option<String>,
    perm_jobs_read: Option<String>,
    perm_workspaces_read: Option<String>,
    perm_workspaces_write: Option<String>,
    perm_keys_manage: Option<String>,
    /// Comma-separated ids; empty for every workspace.
    #[serde(default)]
    workspaces: String,
    /// Comma-separated addresses or networks; empty for any address.
    #[serde(default)]
    allowed_ips: String,
    /// Empty for `API_RATE_LIMIT`.
    #[serde(default)]
    hourly_limit: String,
}

fn list(text: &str) -> Vec<String> {
    text.split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl ScopeForm {
    fn changes(&self) -> Result<ScopeChanges, String> {
        let checked = [
            (Permission::Ask, &self.perm_ask),
            (Permission::JobsRead, &self.perm_jobs_read),
            (Permission::WorkspacesRead, &self.perm_workspaces_read),
            (Permission::WorkspacesWrite, &self.perm_workspaces_write),
            (Permission::KeysManage, &self.perm_keys_manage),
        ];
        let permissions = checked
            .into_iter()
            .filter(|(_, value)| value.is_some())
            .map(|(p, _)| p.as_str().to_owned())
            .collect();
        let workspaces = list(&self.workspaces);
        let hourly_limit = match self.hourly_limit.trim() {
            "" => None,
            text => Some(text.parse::<u32>().map_err(|_| {
                "The hourly limit is a whole number of requests; leave it empty for \
                 API_RATE_LIMIT."
                    .to_owned()
            })?),
        };
        Ok(ScopeChanges {
            permissions: Some(permissions),
            workspaces: Some((!workspaces.is_empty()).then_some(workspaces)),
            allowed_ips: Some(list(&self.allowed_ips)),
            hourly_limit: Some(hourly_limit),
        })
    }
}

/// `POST …/keys/{id}/scope`: saves the scope; the key keeps its secret.
pub async fn save(
    req: HttpRequest,
    logged_in: LoggedIn,
    session: Session,
    state: web::Data<KeyPages>,
    path: web::Path<String>,
    form: web::Form<ScopeForm>,
) -> Result<HttpResponse, DashboardError> {
    let record = match state.keys.get(&path).await {
        Ok(Some(record)) => record,
        Ok(None) => return Err(no_such_key()),
        Err(err) => return Err(DashboardError::storage("reading the keys", &err.into())),
    };
    let refused = |message: String| {
        let mut page = page_for(&logged_in, &record, Flash::error(message));
        page.workspaces = form.workspaces.clone();
        page.allowed_ips = form.allowed_ips.clone();
        page.hourly_limit = form.hourly_limit.clone();
        render(StatusCode::BAD_REQUEST, &page)
    };
    let scope = match form.changes().and_then(|changes| {
        record
            .effective_scope()
            .apply(record.role, &changes)
            .map_err(|err| err.message)
    }) {
        Ok(scope) => scope,
        Err(message) => return Ok(refused(message)),
    };
    let actor = actor(&logged_in, &state, &req);
    match key_admin(&state).edit(&actor, &record.id, scope).await {
        Ok(Some(edited)) => {
            session::set_flash(
                &session,
                &format!(
                    "The scope of “{}” was saved; it applies from the key's next request.",
                    edited.name
                ),
            );
            Ok(redirect("/dashboard/security"))
        }
        Ok(None) => Err(no_such_key()),
        Err(err) => Err(DashboardError::storage("editing a key", &err)),
    }
}

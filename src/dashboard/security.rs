//! Account Security: generate a key (shown once), list and revoke keys,
//! change the password, see the environment keys and recent activity.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::confirm::{confirm_page, Confirm};
use super::login::{throttled, user_failures_key, wait_text};
use super::pages::nav;
use super::usage_chart::Chart;
use super::{redirect, render, DashboardError, Flash, KeyPages, Nav};
use crate::auth::activity::{
    AccountAction, AccountEvent, FailureRow, ACCOUNT_EVENTS_KEPT, FAILURE_ROWS_KEPT,
};
use crate::auth::dashboard_keys::{DuplicateKeyName, Expiry, KeyRecord};
use crate::auth::failure_counter::Refused;
use crate::auth::key_admin::{role_name, Actor, KeyAdmin, NewKey as NewKeyRequest};
use crate::auth::session::{self, LoggedIn};
use crate::auth::usage::UsageCounter;
use crate::auth::users::{Password, UserError, MIN_PASSWORD_CHARS};
use crate::core::address::client_address;
use crate::store::StoreError;

struct KeyRow {
    id: String,
    name: String,
    prefix: String,
    role: &'static str,
    created: String,
    last_used: String,
    expires: String,
    /// Requests per hour over seven days; filled by the page handler.
    chart: Option<Chart>,
}

fn when(time: Option<DateTime<Utc>>, none: &str) -> String {
    time.map_or_else(
        || none.to_owned(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

impl From<KeyRecord> for KeyRow {
    fn from(record: KeyRecord) -> Self {
        let expired = record.is_expired(Utc::now());
        Self {
            prefix: record.display_prefix(),
            role: role_name(record.role),
            created: when(Some(record.created_at), ""),
            last_used: when(record.last_used_at, "never"),
            expires: if expired {
                format!("expired {}", when(record.expires_at, ""))
            } else {
                when(record.expires_at, "never")
            },
            id: record.id,
            name: record.name,
            chart: None,
        }
    }
}

/// Each key's chart of the last seven days (counts flushed once first).
async fn with_usage(mut page: SecurityPage, counter: &UsageCounter) -> SecurityPage {
    let ids: Vec<String> = page.keys.iter().map(|key| key.id.clone()).collect();
    match counter.series_of(&ids).await {
        Ok(all) => {
            for (key, series) in page.keys.iter_mut().zip(all) {
                key.chart = Some(Chart::new(&series, 24));
            }
        }
        Err(err) => tracing::warn!(error = format!("{err:#}"), "reading key usage failed"),
    }
    page
}

struct NewKey {
    name: String,
    plaintext: String,
}

/// What the generate form showed, kept when it is refused.
#[derive(Default)]
struct KeyForm {
    name: String,
    role: String,
    expiry: String,
}

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage {
    nav: Option<Nav>,
    flash: Option<Flash>,
    csrf_token: String,
    new_key: Option<NewKey>,
    key_form: KeyForm,
    keys: Vec<KeyRow>,
    admin_key_configured: bool,
    client_key_count: usize,
    account_events: Vec<AccountEvent>,
    failure_rows: Vec<FailureRow>,
    account_events_kept: usize,
    failure_rows_kept: usize,
    min_password: usize,
    /// `Some(unused recovery codes)` when two-factor login is on.
    two_factor_recovery_left: Option<usize>,
}

async fn security_page(
    state: &KeyPages,
    logged_in: &LoggedIn,
    mut flash: Option<Flash>,
    new_key: Option<NewKey>,
) -> SecurityPage {
    let keys = state.keys.list().await.unwrap_or_else(|err| {
        tracing::error!(error = format!("{err:#}"), "reading the keys failed");
        flash =
            Flash::error("The keys could not be read, so none are listed. Reload the page later.");
        Vec::new()
    });
    let trail = async {
        let events = state.activity.account_events().await?;
        Ok::<_, StoreError>((events, state.activity.failure_rows().await?))
    };
    let (account_events, failure_rows) = trail.await.unwrap_or_else(|err| {
        tracing::error!(error = format!("{err:#}"), "reading the activity failed");
        flash = Flash::error(
            "The activity could not be read, so none is listed. Reload the page later.",
        );
        (Vec::new(), Vec::new())
    });
    SecurityPage {
        nav: Some(nav(logged_in, "security")),
        flash,
        csrf_token: logged_in.csrf_token.clone(),
        new_key,
        key_form: KeyForm::default(),
        keys: keys.into_iter().map(KeyRow::from).collect(),
        admin_key_configured: state.admin_key_configured,
        client_key_count: state.client_key_count,
        account_events,
        failure_rows,
        account_events_kept: ACCOUNT_EVENTS_KEPT,
        failure_rows_kept: FAILURE_ROWS_KEPT,
        min_password: MIN_PASSWORD_CHARS,
        two_factor_recovery_left: logged_in
            .user
            .two_factor
            .as_ref()
            .map(|two_factor| two_factor.recovery_hashes.len()),
    }
}

#[derive(Deserialize)]
pub struct PageQuery {
    /// The ticket of a key waiting for its one display.
    new: Option<String>,
}

pub async fn page(
    logged_in: LoggedIn,
    session: Session,
    state: web::Data<KeyPages>,
    counter: web::Data<UsageCounter>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, DashboardError> {
    let mut flash = session::take_flash(&session).and_then(Flash::success);
    let new_key = match query.into_inner().new {
        Some(ticket) => {
            let held = state
                .one_time_keys
                .take(&ticket, &logged_in.csrf_token)
                .await
                .map_err(|err| DashboardError::storage("showing a new key", &err))?;
            if held.is_none() {
                flash = Flash::error(
                    "That key was shown once already and is not shown again; nothing new was \
                     created. If you did not copy it, revoke it below and generate another.",
                );
            }
            held.map(|(name, plaintext)| NewKey {
                name,
                plaintext: plaintext.expose_secret().to_owned(),
            })
        }
        None => None,
    };
    let page = security_page(&state, &logged_in, flash, new_key).await;
    Ok(render(StatusCode::OK, &with_usage(page, &counter).await))
}

#[derive(Deserialize)]
pub struct GenerateForm {
    name: String,
    role: String,
    expiry: String,
}

pub(super) fn key_admin(state: &KeyPages) -> KeyAdmin<'_> {
    KeyAdmin {
        keys: &state.keys,
        activity: &state.activity,
    }
}

pub(super) fn actor<'a>(logged_in: &'a LoggedIn, state: &KeyPages, req: &HttpRequest) -> Actor<'a> {
    Actor {
        id: &logged_in.user.id,
        name: &logged_in.user.username,
        client: client_address(req.peer_addr(), req.headers(), &state.trusted_proxies),
        scope: None,
    }
}

pub async fn generate(
    req: HttpRequest,
    logged_in: LoggedIn,
    state: web::Data<KeyPages>,
    form: web::Form<GenerateForm>,
) -> Result<HttpResponse, DashboardError> {
    let new = match NewKeyRequest::parse(
        &form.name,
        Some(form.role.as_str()),
        Expiry::parse(&form.expiry),
    ) {
        Ok(new) => new,
        Err(problem) => {
            return Ok(refused_form(&state, &logged_in, &form, problem.message).await);
        }
    };
    let actor = actor(&logged_in, &state, &req);
    Ok(match key_admin(&state).create(&actor, &new).await {
        Ok((plaintext, record)) => {
            let ticket = state
                .one_time_keys
                .hold(&logged_in.csrf_token, &record.name, plaintext)
                .await
                .map_err(|err| {
                    DashboardError::storage("holding a new key for its display", &err)
                })?;
            redirect(&format!("/dashboard/security?new={ticket}"))
        }
        Err(err) if err.is::<DuplicateKeyName>() => {
            refused_form(
                &state,
                &logged_in,
                &form,
                format!(
                    "A key named “{}” exists already. Choose another name, or revoke the old \
                 key first.",
                    form.name.trim()
                ),
            )
            .await
        }
        Err(err) => return Err(DashboardError::storage("generating a key", &err)),
    })
}

/// The generate form again, with what was typed and why it was refused.
async fn refused_form(
    state: &KeyPages,
    logged_in: &LoggedIn,
    form: &GenerateForm,
    message: String,
) -> HttpResponse {
    let mut page = security_page(state, logged_in, Flash::error(message), None).await;
    page.key_form = KeyForm {
        name: form.name.clone(),
        role: form.role.clone(),
        expiry: form.expiry.clone(),
    };
    render(StatusCode::BAD_REQUEST, &page)
}

pub(super) fn no_such_key() -> DashboardError {
    DashboardError::NotFound {
        title: "No such key",
        message: "That key does not exist; it may have been revoked already.",
    }
}

/// `GET …/revoke`: asks before revoking, naming the key.
pub async fn confirm_revoke(
    logged_in: LoggedIn,
    state: web::Data<KeyPages>,
    path: web::Path<String>,
) -> Result<HttpResponse, DashboardError> {
    let id = path.into_inner();
    let key = match state.keys.get(&id).await {
        Ok(Some(key)) => key,
        Ok(None) => return Err(no_such_key()),
        Err(err) => return Err(DashboardError::storage("reading the keys", &err.into())),
    };
    let message = format!(
        "Revoke the key “{}” ({})? Every program using it is refused at once, and it cannot \
         be restored.",
        key.name,
        key.display_prefix()
    );
    Ok(confirm_page(
        &logged_in,
        Confirm {
            active: "security",
            title: "Revoke this key?",
            message: &message,
            action: &format!("/dashboard/security/keys/{id}/revoke"),
            button: &format!("Revoke “{}”", key.name),
            cancel_href: "/dashboard/security",
        },
    ))
}

pub async fn revoke(
    req: HttpRequest,
    logged_in: LoggedIn,
    session: Session,
    state: web::Data<KeyPages>,
    path: web::Path<String>,
) -> Result<HttpResponse, DashboardError> {
    let actor = actor(&logged_in, &state, &req);
    match key_admin(&state).revoke(&actor, &path).await {
        Ok(Some(record)) => {
            session::set_flash(
                &session,
                &format!("The key “{}” was revoked; it no longer works.", record.name),
            );
            Ok(redirect("/dashboard/security"))
        }
        Ok(None) => Err(no_such_key()),
        Err(err) => Err(DashboardError::storage("revoking a key", &err)),
    }
}

#[derive(Template)]
#[template(path = "roll.html")]
struct RollPage<'a> {
    nav: Option<Nav>,
    flash: Option<Flash>,
    csrf_token: &'a str,
    id: &'a str,
    name: &'a str,
    prefix: &'a str,
}

/// `GET …/roll`: names the key and asks how long the old secret may live.
pub async fn confirm_roll(
    logged_in: LoggedIn,
    state: web::Data<KeyPages>,
    path: web::Path<String>,
) -> Result<HttpResponse, DashboardError> {
    let key = match state.keys.get(&path).await {
        Ok(Some(key)) => key,
        Ok(None) => return Err(no_such_key()),
        Err(err) => return Err(DashboardError::storage("reading the keys", &err.into())),
    };
    Ok(render(
        StatusCode::OK,
        &RollPage {
            nav: Some(nav(&logged_in, "security")),
            flash: None,
            csrf_token: &logged_in.csrf_token,
            id: &key.id,
            name: &key.name,
            prefix: &key.display_prefix(),
        },
    ))
}

#[derive(Deserialize)]
pub struct RollForm {
    /// Hours the old secret keeps working: 0, 1, 24 (default) or 168.
    #[serde(default)]
    grace_hours: String,
}

/// Gives a key a new secret, shown once; the old one works for the
/// chosen grace period, so clients can be switched without downtime.
pub async fn roll(
    req: HttpRequest,
    logged_in: LoggedIn,
    session: Session,
    state: web::Data<KeyPages>,
    path: web::Path<String>,
    form: web::Form<RollForm>,
) -> Result<HttpResponse, DashboardError> {
    let hours: u64 = match form.grace_hours.as_str() {
        "" | "24" => 24,
        "0" => 0,
        "1" => 1,
        "168" => 168,
        _ => {
            return Ok(render(
                StatusCode::BAD_REQUEST,
                &security_page(
                    &state,
                    &logged_in,
                    Flash::error("Choose how long the old secret keeps working from the list."),
                    None,
                )
                .await,
            ))
        }
    };
    let actor = actor(&logged_in, &state, &req);
    let grace = std::time::Duration::from_secs(hours * 3600);
    match key_admin(&state).roll(&actor, &path, grace).await {
        Ok(Some((plaintext, record))) => {
            let notice = if hours == 0 {
                format!(
                    "The key “{}” was rolled; the old secret no longer works.",
                    record.name
                )
            } else {
                format!(
                    "The key “{}” was rolled; the old secret works for {hours} more hour(s).",
                    record.name
                )
            };
            session::set_flash(&session, &notice);
            let ticket = state
                .one_time_keys
                .hold(&logged_in.csrf_token, &record.name, plaintext)
                .await
                .map_err(|err| {
                    DashboardError::storage("holding a new key for its display", &err)
                })?;
            Ok(redirect(&format!("/dashboard/security?new={ticket}")))
        }
        Ok(None) => Err(no_such_key()),
        Err(err) => Err(DashboardError::storage("rolling a key", &err)),
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current: String,
    new: String,
    confirm: String,
}

pub async fn change_password(
    req: HttpRequest,
    logged_in: LoggedIn,
    session: Session,
    state: web::Data<KeyPages>,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, DashboardError> {
    let retry = |message: String| async {
        render(
            StatusCode::BAD_REQUEST,
            &security_page(&state, &logged_in, Flash::error(message), None).await,
        )
    };
    let new = match Password::parse(&form.new) {
        Ok(new) => new,
        Err(message) => return Ok(retry(message).await),
    };
    if form.new != form.confirm {
        return Ok(retry("The two new passwords differ.".into()).await);
    }
    // Wrong current passwords count as failed logins of the user, so a
    // stolen session cannot be used to guess the password.
    // The slot is taken before the password is checked (SPEC §4).
    let failures_key = user_failures_key(&logged_in.user.username);
    let attempt = match state.login_failures.reserve(&failures_key).await {
        Ok(attempt) => attempt,
        Err(Refused::Unavailable(err)) => {
            return Err(DashboardError::storage(
                "counting a password attempt",
                &err.into(),
            ))
        }
        Err(Refused::Exhausted(exhausted)) => {
            let page = render(
                StatusCode::TOO_MANY_REQUESTS,
                &security_page(
                    &state,
                    &logged_in,
                    Flash::error(format!(
                        "Too many wrong passwords. {}",
                        wait_text(exhausted.reset_secs)
                    )),
                    None,
                )
                .await,
            );
            return Ok(throttled(page, exhausted.reset_secs));
        }
    };
    let current = SecretString::from(form.current.clone());
    let changed = state
        .users
        .change_password(&logged_in.user.id, &current, &new)
        .await;
    match &changed {
        Err(UserError::WrongPassword) => attempt.keep(),
        _ => attempt.refund().await,
    }
    match changed {
        Ok(user) => {
            if let Err(err) = state.sessions.purge_where(session::USER_ID, &user.id).await {
                tracing::error!(error = format!("{err:#}"), "ending old sessions failed");
            }
            session::end(&session);
            tracing::info!(user = %user.username, "the password was changed; every session ended");
            let addr = client_address(req.peer_addr(), req.headers(), &state.trusted_proxies);
            state
                .activity
                .account(AccountAction::PasswordChanged, &user.username, addr, None);
            Ok(redirect("/login?notice=password-changed"))
        }
        Err(UserError::WrongPassword) => Ok(retry("The current password is wrong.".into()).await),
        Err(UserError::Storage(err)) => Err(DashboardError::storage("changing the password", &err)),
        Err(err @ (UserError::NoSuchUser | UserError::AlreadySetUp)) => Err(
            DashboardError::storage("changing the password", &anyhow::Error::new(err)),
        ),
    }
}

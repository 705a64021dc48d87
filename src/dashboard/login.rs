//! `/login` and `POST /logout`. Failed logins are throttled per user name
//! and per address; an unknown user and a wrong password get the same page
//! after the same work.

use actix_identity::Identity;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use askama::Template;
use serde::Deserialize;

use super::{
    error_page, foreign_origin_page, redirect, render, Accounts, DashboardError, Flash, Nav,
};
use crate::auth::activity::AccountAction;
use crate::auth::failure_counter::Refused;
use crate::auth::rate_limit::address_key;
use crate::auth::session::{self, LoggedIn};
use crate::core::address::client_address;
use crate::http::origin::is_same_origin;

/// The failed-login counter of a user name (case-insensitive).
pub fn user_failures_key(username: &str) -> Vec<u8> {
    let mut key = b"user:".to_vec();
    key.extend_from_slice(username.trim().to_lowercase().as_bytes());
    key
}

/// The failed-login counter of a client address (IPv6: its /64), shared
/// by logins and setup tokens.
pub fn address_failures_key(addr: std::net::IpAddr) -> Vec<u8> {
    let mut key = b"addr:".to_vec();
    key.extend_from_slice(&address_key(addr));
    key
}

/// The page of a throttled attempt: 429 with the true wait in
/// `Retry-After`, and the wait in minutes for people.
pub fn throttled(mut page: HttpResponse, wait_secs: u64) -> HttpResponse {
    page.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        wait_secs.max(1).into(),
    );
    page
}

/// "Try again in N minute(s)." for a wait in seconds.
pub fn wait_text(wait_secs: u64) -> String {
    format!("Try again in {} minute(s).", wait_secs.div_ceil(60).max(1))
}

/// Failed logins allowed per user name, and per address, in the window.
pub const MAX_FAILED_LOGINS: u32 = 5;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    nav: Option<Nav>,
    flash: Option<Flash>,
    username: String,
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

fn notice_text(notice: &str) -> Option<Option<Flash>> {
    Some(match notice {
        "logged-out" => Flash::success("You are logged out."),
        "password-changed" => {
            Flash::success("Password changed. Every session has ended; log in again.")
        }
        _ => return None,
    })
}

pub async fn form(
    req: HttpRequest,
    state: web::Data<Accounts>,
    query: web::Query<NoticeQuery>,
) -> HttpResponse {
    match state.users.has_users().await {
        Ok(true) => {}
        Ok(false) => return redirect("/setup"),
        Err(err) => return super::storage_failure("reading the users", &err.into()),
    }
    match session::current(&req, &state.users).await {
        Ok(None) => {}
        Ok(Some(_)) => return redirect("/dashboard"),
        Err(err) => return super::storage_failure("reading the users", &err.into()),
    }
    let flash = query.notice.as_deref().and_then(notice_text).flatten();
    render(
        StatusCode::OK,
        &LoginPage {
            nav: None,
            flash,
            username: String::new(),
        },
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

pub async fn submit(
    req: HttpRequest,
    session: Session,
    state: web::Data<Accounts>,
    form: web::Form<LoginForm>,
) -> HttpResponse {
    if !is_same_origin(req.headers(), &state.public_url, false) {
        return foreign_origin_page(&state.public_url, req.headers());
    }
    let LoginForm { username, password } = form.into_inner();
    let addr = client_address(req.peer_addr(), req.headers(), &state.trusted_proxies);
    let (user_key, addr_key) = (user_failures_key(&username), address_failures_key(addr));
    // Both slots are taken before the password is checked, so simultaneous
    // guesses cannot all pass (SPEC §4); a success gives them back.
    let attempt = match state
        .login_failures
        .reserve_all(&[&user_key, &addr_key])
        .await
    {
        Ok(attempt) => attempt,
        Err(Refused::Unavailable(err)) => {
            return super::storage_failure("counting a login attempt", &err.into())
        }
        Err(Refused::Exhausted(exhausted)) => {
            state.activity.anonymous_failure("login-throttled", addr);
            let page = render(
                StatusCode::TOO_MANY_REQUESTS,
                &LoginPage {
                    nav: None,
                    flash: Flash::error(format!(
                        "Too many failed logins. {} Or, on the server, stop Portico and run \
                         portico user reset-password <name>.",
                        wait_text(exhausted.reset_secs)
                    )),
                    username,
                },
            );
            return throttled(page, exhausted.reset_secs);
        }
    };

    let secret = secrecy::SecretString::from(password);
    let user = match state.users.check_login(username.trim(), &secret).await {
        Ok(user) => user,
        Err(err) if crate::store::is_unavailable(&err) => {
            attempt.refund().await;
            return super::storage_failure("checking a login", &err);
        }
        Err(err) => {
            attempt.refund().await;
            tracing::error!(error = format!("{err:#}"), "login check failed");
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal server error",
                "Logging in failed on the server. Try again; if it persists, check the server log.",
            );
        }
    };
    let Some(user) = user else {
        attempt.keep();
        state.activity.anonymous_failure("invalid-login", addr);
        tracing::info!(target: "portico::auth", outcome = "denied", code = "invalid-login", client = %addr, "login attempt");
        return render(
            StatusCode::UNAUTHORIZED,
            &LoginPage {
                nav: None,
                flash: Flash::error("Wrong user name or password."),
                username,
            },
        );
    };
    attempt.refund().await;
    if user.two_factor.is_some() {
        return match session::begin_second_step(&session, &user) {
            Ok(()) => redirect("/login/code"),
            Err(err) => session_failure(&err),
        };
    }
    if let Err(err) = session::begin(&req, &session, &user) {
        return session_failure(&err);
    }
    state
        .activity
        .account(AccountAction::Login, &user.username, addr, None);
    tracing::info!(target: "portico::auth", outcome = "allowed", principal = %user.id, client = %addr, "login attempt");
    redirect("/dashboard")
}

/// The page for a session that could not be started.
pub fn session_failure(err: &anyhow::Error) -> HttpResponse {
    DashboardError::session(err).error_response()
}

pub async fn logout(
    req: HttpRequest,
    identity: Identity,
    logged_in: LoggedIn,
    state: web::Data<Accounts>,
) -> HttpResponse {
    session::logout(identity);
    let addr = client_address(req.peer_addr(), req.headers(), &state.trusted_proxies);
    state
        .activity
        .account(AccountAction::Logout, &logged_in.user.username, addr, None);
    redirect("/login?notice=logged-out")
}

//! `/setup`: creates the one dashboard user, once, with the setup token.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::login::{address_failures_key, throttled, wait_text};
use super::{error_page, foreign_origin_page, redirect, render, Accounts, Flash, Nav};
use crate::auth::activity::AccountAction;
use crate::auth::failure_counter::Refused;
use crate::auth::session;
use crate::auth::users::{Password, UserError, Username, MIN_PASSWORD_CHARS};
use crate::core::address::client_address;
use crate::core::secrets_match;
use crate::http::origin::is_same_origin;

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    nav: Option<Nav>,
    flash: Option<Flash>,
    token: String,
    username: String,
    min_password: usize,
    /// `/setup?token=…` while a token is known, so a reload keeps it.
    action: String,
}

fn setup_action(token: &str) -> String {
    if token.is_empty() {
        return "/setup".to_owned();
    }
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("token", token)
        .finish();
    format!("/setup?{query}")
}

fn gone() -> HttpResponse {
    error_page(
        StatusCode::NOT_FOUND,
        "Setup is complete",
        "The dashboard user exists already; log in instead.",
    )
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

pub async fn form(state: web::Data<Accounts>, query: web::Query<TokenQuery>) -> HttpResponse {
    match state.users.has_users().await {
        Ok(false) => {}
        Ok(true) => return gone(),
        Err(err) => return super::storage_failure("reading the users", &err.into()),
    }
    let token = query.into_inner().token.unwrap_or_default();
    render(
        StatusCode::OK,
        &SetupPage {
            nav: None,
            flash: None,
            action: setup_action(&token),
            token,
            username: String::new(),
            min_password: MIN_PASSWORD_CHARS,
        },
    )
}

#[derive(Deserialize)]
pub struct SetupForm {
    token: String,
    username: String,
    password: String,
    confirm: String,
}

pub async fn submit(
    req: HttpRequest,
    session: Session,
    state: web::Data<Accounts>,
    form: web::Form<SetupForm>,
) -> HttpResponse {
    match state.users.has_users().await {
        Ok(false) => {}
        Ok(true) => return gone(),
        Err(err) => return super::storage_failure("reading the users", &err.into()),
    }
    if !is_same_origin(req.headers(), &state.public_url, false) {
        return foreign_origin_page(&state.public_url, req.headers());
    }
    let form = form.into_inner();
    let retry = |status, message: String| {
        render(
            status,
            &SetupPage {
                nav: None,
                flash: Flash::error(message),
                token: form.token.clone(),
                action: setup_action(&form.token),
                username: form.username.clone(),
                min_password: MIN_PASSWORD_CHARS,
            },
        )
    };
    // Wrong tokens count as failed logins of the address; the slot is
    // taken before the token is compared (SPEC §4).
    let addr = client_address(req.peer_addr(), req.headers(), &state.trusted_proxies);
    let attempt = match state
        .login_failures
        .reserve(&address_failures_key(addr))
        .await
    {
        Ok(attempt) => attempt,
        Err(Refused::Unavailable(err)) => {
            return super::storage_failure("counting a setup attempt", &err.into())
        }
        Err(Refused::Exhausted(exhausted)) => {
            state.activity.anonymous_failure("setup-throttled", addr);
            let page = retry(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Too many wrong setup tokens from this address. {}",
                    wait_text(exhausted.reset_secs)
                ),
            );
            return throttled(page, exhausted.reset_secs);
        }
    };
    if !secrets_match(form.token.trim(), &state.setup_token) {
        attempt.keep();
        state
            .activity
            .anonymous_failure("invalid-setup-token", addr);
        return retry(
            StatusCode::FORBIDDEN,
            "The setup token is wrong. Open the full setup URL printed in the start-up log.".into(),
        );
    }
    attempt.refund().await;
    let username = match Username::parse(&form.username) {
        Ok(name) => name,
        Err(message) => return retry(StatusCode::BAD_REQUEST, message),
    };
    let password = match Password::parse(&form.password) {
        Ok(password) => password,
        Err(message) => return retry(StatusCode::BAD_REQUEST, message),
    };
    if form.password != form.confirm {
        return retry(StatusCode::BAD_REQUEST, "The two passwords differ.".into());
    }
    match state.users.create_first(&username, &password).await {
        Ok(user) => match session::begin(&req, &session, &user) {
            Ok(()) => {
                tracing::info!(user = %user.username, "the dashboard user was created");
                let addr = client_address(req.peer_addr(), req.headers(), &state.trusted_proxies);
                state
                    .activity
                    .account(AccountAction::Setup, &user.username, addr, None);
                redirect("/dashboard")
            }
            Err(_) => redirect("/login"),
        },
        Err(UserError::AlreadySetUp) => gone(),
        Err(err) => {
            tracing::error!(
                error = format!("{err:#}"),
                "creating the dashboard user failed"
            );
            retry(
                StatusCode::SERVICE_UNAVAILABLE,
                "The user could not be saved: the data directory is not writable. Fix it and try again.".into(),
            )
        }
    }
}

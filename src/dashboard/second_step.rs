//! The second login step at `/login/code` (SPEC §6.1): a session that
//! passed the password gives a TOTP or recovery code, and only then logs in.

use actix_session::Session;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::login::session_failure;
use super::two_factor::{note, user_failure, CodeForm};
use super::{foreign_origin_page, redirect, render, Accounts, Flash, Nav};
use crate::auth::activity::AccountAction;
use crate::auth::failure_counter::Refused;
use crate::auth::rate_limit::Quota;
use crate::auth::session;
use crate::auth::two_factor::{self, CodeCheck};
use crate::auth::users::UserRecord;
use crate::http::origin::is_same_origin;

/// Codes (right or wrong) allowed per user at the second step in the window.
pub const MAX_WRONG_CODES: u32 = 5;

#[derive(Template)]
#[template(path = "login_code.html")]
struct SecondStepPage {
    nav: Option<Nav>,
    flash: Option<Flash>,
}

fn second_step_page(status: StatusCode, flash: Option<Flash>) -> HttpResponse {
    render(status, &SecondStepPage { nav: None, flash })
}

/// The 429 answer when the user's second-step attempts are used up.
fn throttled_page(
    state: &Accounts,
    req: &HttpRequest,
    user: &UserRecord,
    quota: Quota,
) -> HttpResponse {
    note(
        state,
        req,
        AccountAction::SecondFactorFailed,
        &user.username,
        Some("locked: too many codes"),
    );
    let minutes = quota.reset_secs.div_ceil(60);
    let mut page = second_step_page(
        StatusCode::TOO_MANY_REQUESTS,
        Flash::error(format!(
            "Too many codes tried. Try again in {minutes} minute(s)."
        )),
    );
    page.headers_mut()
        .insert(header::RETRY_AFTER, quota.reset_secs.max(1).into());
    page
}

pub async fn second_step_form(session: Session, state: web::Data<Accounts>) -> HttpResponse {
    match session::second_step_user(&session, &state.users).await {
        Ok(Some(_)) => {}
        Ok(None) => return redirect("/login"),
        Err(err) => return super::storage_failure("reading the users", &err.into()),
    }
    second_step_page(StatusCode::OK, None)
}

pub async fn second_step_submit(
    req: HttpRequest,
    session: Session,
    state: web::Data<Accounts>,
    form: web::Form<CodeForm>,
) -> HttpResponse {
    if !is_same_origin(req.headers(), &state.public_url, false) {
        return foreign_origin_page(&state.public_url, req.headers());
    }
    let user = match session::second_step_user(&session, &state.users).await {
        Ok(Some(user)) => user,
        Ok(None) => return redirect("/login"),
        Err(err) => return super::storage_failure("reading the users", &err.into()),
    };
    // The attempt is reserved before any code is checked, so concurrent
    // guesses cannot overrun the limit; a right code gives it back.
    let attempt = match state.second_step_failures.reserve(user.id.as_bytes()).await {
        Ok(attempt) => attempt,
        Err(Refused::Exhausted(quota)) => return throttled_page(&state, &req, &user, quota),
        Err(Refused::Unavailable(err)) => {
            return super::storage_failure("counting a second-step code", &err.into())
        }
    };
    let check = match two_factor::check_code(&state.users, &state.totp_cipher, &user.id, &form.code)
        .await
    {
        Ok(check) => check,
        Err(err) => {
            attempt.refund().await;
            return user_failure("checking a second-step code", &err);
        }
    };
    // A right code gives its slot back: only wrong codes count.
    match check {
        CodeCheck::Refused => attempt.keep(),
        CodeCheck::Totp | CodeCheck::Recovery { .. } => attempt.refund().await,
    }
    let flash = match check {
        CodeCheck::Refused => {
            note(
                &state,
                &req,
                AccountAction::SecondFactorFailed,
                &user.username,
                None,
            );
            return second_step_page(
                StatusCode::UNAUTHORIZED,
                Flash::error(
                    "That code is wrong or was already used. Enter the current code \
                     from your authenticator app, or an unused recovery code.",
                ),
            );
        }
        CodeCheck::Totp => None,
        CodeCheck::Recovery { remaining } => {
            note(
                &state,
                &req,
                AccountAction::Login,
                &user.username,
                Some("with a recovery code"),
            );
            Some(format!(
                "You logged in with a recovery code; {remaining} remain. \
                 Make new ones on this page if you are running out."
            ))
        }
    };
    if let Err(err) = session::begin(&req, &session, &user) {
        return session_failure(&err);
    }
    if flash.is_none() {
        note(
            &state,
            &req,
            AccountAction::Login,
            &user.username,
            Some("with a two-factor code"),
        );
    }
    match flash {
        Some(message) => {
            session::set_flash(&session, &message);
            redirect("/dashboard/security")
        }
        None => redirect("/dashboard"),
    }
}

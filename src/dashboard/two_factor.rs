//! Two-factor login on Account Security (SPEC §6.1): enrolment (QR code,
//! secret, recovery codes), new recovery codes and disabling.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use askama::Template;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::login::user_failures_key;
use super::pages::nav;
use super::{redirect, render, Accounts, DashboardError, Flash, Nav};
use crate::auth::activity::AccountAction;
use crate::auth::failure_counter::Refused;
use crate::auth::session::{self, LoggedIn};
use crate::auth::totp::TotpSecret;
use crate::auth::two_factor::{self, CodeCheck};
use crate::auth::users::UserError;
use crate::core::address::client_address;

const ENROL_SECRET: &str = "enrol_secret";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/security/two-factor/start", web::post().to(start))
        .route("/security/two-factor/enable", web::post().to(enable))
        .route(
            "/security/two-factor/recovery-codes",
            web::post().to(regenerate),
        )
        .route("/security/two-factor/disable", web::post().to(disable));
}

#[derive(Template)]
#[template(path = "two_factor_enrol.html")]
struct EnrolPage {
    nav: Option<Nav>,
    flash: Option<Flash>,
    csrf_token: String,
    qr_svg: String,
    secret: String,
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
struct RecoveryCodesPage {
    nav: Option<Nav>,
    flash: Option<Flash>,
    codes: Vec<String>,
}

#[derive(Deserialize)]
pub struct CodeForm {
    pub(super) code: String,
}

/// A 503 page when the store could not be used, else a 500 page.
pub(super) fn failure(what: &'static str, err: &anyhow::Error) -> HttpResponse {
    if crate::store::is_unavailable(err) {
        return super::storage_failure(what, err);
    }
    DashboardError::unexpected(what, err).error_response()
}

/// `failure` for the errors of `Users`.
pub(super) fn user_failure(what: &'static str, err: &UserError) -> HttpResponse {
    match err {
        UserError::Storage(cause) => failure(what, cause),
        other => DashboardError::unexpected(what, other).error_response(),
    }
}

/// Records an account event of `actor` in the audit trail.
pub(super) fn note(
    state: &Accounts,
    req: &HttpRequest,
    action: AccountAction,
    actor: &str,
    detail: Option<&str>,
) {
    let addr = client_address(req.peer_addr(), req.headers(), &state.trusted_proxies);
    state.activity.account(action, actor, addr, detail);
}

fn enrol_page(
    logged_in: &LoggedIn,
    secret: &TotpSecret,
    flash: Option<Flash>,
) -> Result<EnrolPage, anyhow::Error> {
    Ok(EnrolPage {
        nav: Some(nav(logged_in, "security")),
        flash,
        csrf_token: logged_in.csrf_token.clone(),
        qr_svg: secret.qr_svg(&logged_in.user.username)?,
        secret: secret.base32(),
    })
}

/// Shows a new secret as a QR code; 2FA is on only once a code proves it.
pub async fn start(
    logged_in: LoggedIn,
    session: Session,
    state: web::Data<Accounts>,
) -> HttpResponse {
    if logged_in.user.two_factor.is_some() {
        session::set_flash(&session, "Two-factor login is already on.");
        return redirect("/dashboard/security");
    }
    let secret = TotpSecret::generate();
    let page = state
        .totp_cipher
        .seal(&secret, &logged_in.user.id)
        .and_then(|sealed| Ok(session.insert(ENROL_SECRET, sealed)?))
        .and_then(|()| enrol_page(&logged_in, &secret, None));
    match page {
        Ok(page) => render(StatusCode::OK, &page),
        Err(err) => failure("starting two-factor enrolment", &err),
    }
}

pub async fn enable(
    req: HttpRequest,
    logged_in: LoggedIn,
    session: Session,
    state: web::Data<Accounts>,
    form: web::Form<CodeForm>,
) -> HttpResponse {
    let sealed = session.get::<String>(ENROL_SECRET).ok().flatten();
    let Some(secret) = sealed.and_then(|s| state.totp_cipher.open(&s, &logged_in.user.id).ok())
    else {
        session::set_flash(&session, "Start again: press “Enable two-factor login”.");
        return redirect("/dashboard/security");
    };
    let user_id = &logged_in.user.id;
    match two_factor::enable(
        &state.users,
        &state.totp_cipher,
        user_id,
        &secret,
        &form.code,
    )
    .await
    {
        Ok(Some(codes)) => {
            session.remove(ENROL_SECRET);
            note(
                &state,
                &req,
                AccountAction::TwoFactorEnabled,
                &logged_in.user.username,
                None,
            );
            recovery_codes_page(&logged_in, codes, "Two-factor login is on.")
        }
        Ok(None) => match enrol_page(
            &logged_in,
            &secret,
            Flash::error(
                "That code is not the current one. Check the phone's clock and try the next code.",
            ),
        ) {
            Ok(page) => render(StatusCode::BAD_REQUEST, &page),
            Err(err) => failure("showing the enrolment page", &err),
        },
        Err(err) => user_failure("enabling two-factor login", &err),
    }
}

fn recovery_codes_page(
    logged_in: &LoggedIn,
    codes: Vec<SecretString>,
    message: &str,
) -> HttpResponse {
    render(
        StatusCode::OK,
        &RecoveryCodesPage {
            nav: Some(nav(logged_in, "security")),
            flash: Flash::success(message),
            codes: codes.iter().map(|c| c.expose_secret().to_owned()).collect(),
        },
    )
}

/// The password check in front of changing the second factor. Every try
/// takes one of the user's failed-login slots before the password is
/// checked, so a stolen session cannot be used to guess the password,
/// not even with concurrent requests.
async fn password_refusal(
    state: &Accounts,
    session: &Session,
    logged_in: &LoggedIn,
    password: &str,
) -> Option<HttpResponse> {
    let failures_key = user_failures_key(&logged_in.user.username);
    let attempt = match state.login_failures.reserve(&failures_key).await {
        Ok(attempt) => attempt,
        Err(Refused::Unavailable(err)) => {
            return Some(super::storage_failure(
                "counting a password attempt",
                &err.into(),
            ))
        }
        Err(Refused::Exhausted(_)) => {
            session::set_flash(
                session,
                "Too many wrong passwords. Try again in a few minutes.",
            );
            return Some(redirect("/dashboard/security"));
        }
    };
    let password = SecretString::from(password.to_owned());
    match state
        .users
        .verify_password(&logged_in.user.id, &password)
        .await
    {
        Ok(true) => {
            attempt.refund().await;
            None
        }
        Ok(false) => {
            attempt.keep();
            session::set_flash(session, "The password is wrong; nothing was changed.");
            Some(redirect("/dashboard/security"))
        }
        Err(err) => {
            attempt.refund().await;
            Some(user_failure("checking the password", &err))
        }
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    password: String,
}

pub async fn regenerate(
    req: HttpRequest,
    logged_in: LoggedIn,
    session: Session,
    state: web::Data<Accounts>,
    form: web::Form<PasswordForm>,
) -> HttpResponse {
    if let Some(refusal) = password_refusal(&state, &session, &logged_in, &form.password).await {
        return refusal;
    }
    match two_factor::regenerate_recovery_codes(&state.users, &logged_in.user.id).await {
        Ok(Some(codes)) => {
            note(
                &state,
                &req,
                AccountAction::RecoveryCodesRegenerated,
                &logged_in.user.username,
                None,
            );
            recovery_codes_page(
                &logged_in,
                codes,
                "New recovery codes; the old ones no longer work.",
            )
        }
        Ok(None) => {
            session::set_flash(
                &session,
                "Two-factor login is off; there are no recovery codes.",
            );
            redirect("/dashboard/security")
        }
        Err(err) => user_failure("making new recovery codes", &err),
    }
}

#[derive(Deserialize)]
pub struct DisableForm {
    password: String,
    code: String,
}

pub async fn disable(
    req: HttpRequest,
    logged_in: LoggedIn,
    session: Session,
    state: web::Data<Accounts>,
    form: web::Form<DisableForm>,
) -> HttpResponse {
    if let Some(refusal) = password_refusal(&state, &session, &logged_in, &form.password).await {
        return refusal;
    }
    let user_id = &logged_in.user.id;
    let attempt = match state.second_step_failures.reserve(user_id.as_bytes()).await {
        Ok(attempt) => attempt,
        Err(Refused::Unavailable(err)) => {
            return super::storage_failure("counting a second-step code", &err.into())
        }
        Err(Refused::Exhausted(_)) => {
            session::set_flash(
                &session,
                "Too many codes tried. Try again in a few minutes.",
            );
            return redirect("/dashboard/security");
        }
    };
    let check = two_factor::check_code(&state.users, &state.totp_cipher, user_id, &form.code).await;
    // Only a wrong code keeps its slot.
    match &check {
        Ok(CodeCheck::Refused) => attempt.keep(),
        _ => attempt.refund().await,
    }
    match check {
        Ok(CodeCheck::Refused) => {
            note(
                &state,
                &req,
                AccountAction::SecondFactorFailed,
                &logged_in.user.username,
                Some("while turning two-factor login off"),
            );
            session::set_flash(
                &session,
                "The code is wrong or was already used; two-factor login stays on.",
            );
            return redirect("/dashboard/security");
        }
        Ok(_) => {}
        Err(err) => return user_failure("checking a code", &err),
    }
    match two_factor::disable(&state.users, user_id).await {
        Ok(_) => {
            note(
                &state,
                &req,
                AccountAction::TwoFactorDisabled,
                &logged_in.user.username,
                None,
            );
            session::set_flash(&session, "Two-factor login is off.");
            redirect("/dashboard/security")
        }
        Err(err) => user_failure("disabling two-factor login", &err),
    }
}

//! The gate of the `/api` routes (`api::routes`): asks the gate who is
//! calling, logs and counts the attempt, puts the `Principal` into the
//! request (taken by handlers as an extractor) and adds the quota headers
//! to the response.

use std::future::{ready, Future, Ready};
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse};
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;
use pin_project_lite::pin_project;

use super::origin::is_cross_site_write;
use super::ApiError;
use crate::auth::gate::Refusal;
use crate::auth::rate_limit::Quota;
use crate::auth::usage::UsageCounter;
use crate::auth::{Gate, Principal, PrincipalKind};
use crate::core::address::client_address;
use crate::telemetry::{auth_attempt, AuthOutcome};

/// The gate in front of the gated routes (`api::routes`): asks the gate,
/// then hands the request with its principal to `S`.
pub struct RequirePrincipalService<S>(Rc<S>);

impl<S> RequirePrincipalService<S> {
    pub fn new(service: S) -> Self {
        Self(Rc::new(service))
    }
}

impl<S, B> Service<ServiceRequest> for RequirePrincipalService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Future = Gated<S::Future>;

    fn poll_ready(
        &self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), actix_web::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let Some(gate) = req.app_data::<web::Data<Gate>>() else {
            panic!("the gate is registered as app data");
        };
        let addr = client_address(req.peer_addr(), req.headers(), gate.trusted_proxies());
        match gate.decide_now(&req, addr) {
            Some(decision) => answer(decision, req, addr, &*self.0),
            None => Gated::Waiting {
                future: Box::pin(require_principal(req, self.0.clone(), addr)),
            },
        }
    }
}

pin_project! {
    /// The gate's future: the inner service's, when the gate decided without
    /// waiting (`Gate::decide_now`: no session, an environment key or a cached
    /// dashboard key), so the common request boxes and moves no future of the
    /// gate's; a refusal already answered; or the whole asynchronous check,
    /// boxed (a session, Redis, argon2, a failure to count).
    #[project = GatedProj]
    pub enum Gated<F> {
        Admitted { #[pin] inner: F, quota: Option<Quota>, counted: bool },
        Refused { response: Option<ServiceResponse<BoxBody>> },
        Waiting { future: LocalBoxFuture<'static, Result<ServiceResponse<BoxBody>, actix_web::Error>> },
    }
}

impl<F, B> Future for Gated<F>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
    B: MessageBody + 'static,
{
    type Output = Result<ServiceResponse<BoxBody>, actix_web::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            GatedProj::Admitted {
                inner,
                quota,
                counted,
            } => {
                let response = ready!(inner.poll(cx))?;
                Poll::Ready(Ok(finish(response, quota.take(), *counted)))
            }
            GatedProj::Refused { response } => {
                Poll::Ready(Ok(response.take().expect("polled after completion")))
            }
            GatedProj::Waiting { future } => future.as_mut().poll(cx),
        }
    }
}

/// Asks the gate, logs and counts the attempt, then calls `next` with the
/// principal in the request, or answers the refusal: the path of a
/// decision that waits (`Gate::authenticate`).
async fn require_principal<S, B>(
    req: ServiceRequest,
    next: Rc<S>,
    addr: IpAddr,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    let gate = req
        .app_data::<web::Data<Gate>>()
        .cloned()
        .expect("the gate is registered as app data");
    let cross_site_write = is_cross_site_write(&req, gate.public_url());
    let unanswered = Unanswered { req: &req, addr };
    let decision = gate.authenticate(&req, addr, cross_site_write).await;
    unanswered.answered();
    match answer(decision, req, addr, &*next) {
        Gated::Admitted {
            inner,
            quota,
            counted,
        } => Ok(finish(inner.await?, quota, counted)),
        Gated::Refused { response } => Ok(response.expect("a refusal's answer")),
        Gated::Waiting { .. } => unreachable!("an answer does not wait"),
    }
}

/// Logs and counts the gate's decision; lets the request in with its
/// principal, or answers the refusal.
fn answer<S, B>(
    decision: Result<(Principal, Option<Quota>), Refusal>,
    req: ServiceRequest,
    addr: IpAddr,
    next: &S,
) -> Gated<S::Future>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    match decision {
        Ok((principal, quota)) => {
            crate::metrics::auth_allowed();
            auth_attempt(
                AuthOutcome::Allowed {
                    principal: &principal.id,
                },
                addr,
                req.method().as_str(),
                req.path(),
            );
            // Only a dashboard key's requests are counted (`auth::usage`).
            let counted = principal.kind == PrincipalKind::DashboardKey;
            req.extensions_mut().insert(principal);
            Gated::Admitted {
                inner: next.call(req),
                quota,
                counted,
            }
        }
        Err(refusal) => {
            let err = ApiError::from(refusal);
            if let Some(gate) = req.app_data::<web::Data<Gate>>() {
                gate.activity().anonymous_failure(err.code(), addr);
            }
            crate::metrics::auth_attempt(err.code());
            auth_attempt(
                AuthOutcome::Denied { code: err.code() },
                addr,
                req.method().as_str(),
                req.path(),
            );
            let response = req.error_response(err);
            observe_usage(&response);
            Gated::Refused {
                response: Some(response),
            }
        }
    }
}

/// The answer of a request the gate let in: its quota headers, and its
/// count in the key's usage when `counted` (a dashboard key).
fn finish<B: MessageBody + 'static>(
    response: ServiceResponse<B>,
    quota: Option<Quota>,
    counted: bool,
) -> ServiceResponse<BoxBody> {
    let mut response = response.map_into_boxed_body();
    if let Some(quota) = quota {
        let headers = response.headers_mut();
        for (name, value) in quota.headers() {
            headers.insert(name, value);
        }
    }
    if counted {
        observe_usage(&response);
    }
    response
}

/// Logs an attempt whose client went away before the gate decided (the
/// request's future dropped mid-check): it may have taken a throttle slot
/// and an argon2 verification, so it gets its line too (SPEC §4: every
/// attempt is logged). `answered` disarms it at no cost.
struct Unanswered<'a> {
    req: &'a ServiceRequest,
    addr: std::net::IpAddr,
}

impl Unanswered<'_> {
    fn answered(self) {
        std::mem::forget(self);
    }
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        auth_attempt(
            AuthOutcome::Cancelled,
            self.addr,
            self.req.method().as_str(),
            self.req.path(),
        );
    }
}

/// Counts the finished request for the dashboard key that made it, by the
/// error code answered (`auth::usage`).
fn observe_usage<B>(response: &ServiceResponse<B>) {
    if let Some(counter) = response.request().app_data::<web::Data<UsageCounter>>() {
        let code = response
            .response()
            .error()
            .and_then(|err| err.as_error::<ApiError>())
            .map(ApiError::code);
        counter.observe(&response.request().extensions(), code);
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

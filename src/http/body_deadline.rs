//! A deadline for receiving a request body. The head must arrive within the
//! server's request timeout; without this, a body sent one byte every few
//! seconds would hold its connection (and a worker's attention) forever.
//! Past the deadline the request gets 408 `request-timeout` and the
//! connection is closed.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::HttpMessage;
use futures_util::Stream;
use tokio::time::{Instant, Sleep};

use crate::http::ApiError;

/// The whole body must arrive within this time after the head: 1 MiB (the
/// largest body accepted) needs about 100 KB/s.
pub const BODY_DEADLINE: Duration = Duration::from_secs(10);

/// The request's payload, cut off once the deadline passes.
struct Deadline {
    inner: Option<Payload>,
    finished: bool,
    deadline: Instant,
    timer: Option<Pin<Box<Sleep>>>,
    expired: Rc<Cell<bool>>,
    /// Where an unfinished payload goes when the handler drops it.
    unread: Rc<RefCell<Option<Payload>>>,
}

/// A request body the handler did not read to its end, kept alive with the
/// response body until that is sent: the server then closes the connection
/// instead of draining the rest of a chunked body, which a slow sender
/// would make last forever.
struct KeepUnread {
    body: BoxBody,
    _unread: Payload,
}

impl MessageBody for KeepUnread {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

fn keep_unread(
    response: ServiceResponse<BoxBody>,
    unread: Option<Payload>,
) -> ServiceResponse<BoxBody> {
    match unread {
        Some(unread) => response.map_body(|_, body| {
            BoxBody::new(KeepUnread {
                body,
                _unread: unread,
            })
        }),
        None => response,
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        if !self.finished {
            *self.unread.borrow_mut() = self.inner.take();
        }
    }
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if this.expired.get() {
            return Poll::Ready(Some(Err(timed_out())));
        }
        if let Poll::Ready(item) = Pin::new(inner).poll_next(cx) {
            this.finished = item.is_none();
            return Poll::Ready(item);
        }
        let deadline = this.deadline;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.expired.set(true);
                Poll::Ready(Some(Err(timed_out())))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

fn timed_out() -> PayloadError {
    PayloadError::Io(io::Error::new(
        io::ErrorKind::TimedOut,
        "the request body was not received in time",
    ))
}

/// Wrapped around the whole application. Requests without a body pass
/// untouched; for the others, a handler reading the body past the deadline
/// gets an error, and the response is replaced by a 408 that closes the
/// connection.
pub async fn bound_body_time(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let headers = req.headers();
    let has_body = headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get(CONTENT_LENGTH)
            .is_some_and(|length| length.as_bytes() != b"0");
    if !has_body {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let expired = Rc::new(Cell::new(false));
    let unread = Rc::new(RefCell::new(None));
    let bounded = Deadline {
        inner: Some(req.take_payload()),
        finished: false,
        deadline: Instant::now() + BODY_DEADLINE,
        timer: None,
        expired: expired.clone(),
        unread: unread.clone(),
    };
    let bounded: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(bounded);
    req.set_payload(Payload::from(bounded));
    let response = next.call(req).await?.map_into_boxed_body();
    let unread = unread.borrow_mut().take();
    if !expired.get() {
        return Ok(keep_unread(response, unread));
    }
    tracing::info!(
        path = response.request().path(),
        "a request body was not received within the deadline; connection closed"
    );
    let (request, _) = response.into_parts();
    let mut timeout = actix_web::ResponseError::error_response(&ApiError::BodyTimeout);
    timeout
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    Ok(keep_unread(ServiceResponse::new(request, timeout), unread))
}

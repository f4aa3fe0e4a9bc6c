//! The end of the shutdown grace: requests still running then are answered `503` with our
//! JSON error and `Connection: close`, instead of a TCP close with no answer at all.
//!
//! actix-server drops every connection when its shutdown timeout ends; a middleware cannot
//! answer from there. So the drain calls [`reach`] a little before that timeout ([`cut_after`]),
//! and [`AnswerAtGraceEnd`], wrapped around every route by [`crate::get_route`], answers each request
//! still in flight on its own event loop, dropping the handler (which ends a queued pool job,
//! an upstream call). A loop blocked in a handler cannot answer: its connections are closed by
//! actix when the grace ends, as before.
//!
//! Per route, not app-wide: the answer needs the request, and an app-wide middleware may not
//! hold a clone of it (actix's router mutates it in place, after the app-wide layers). The
//! state is process-wide, as is the drain: one app server per process.
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::EitherBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::ConnectionType;
use actix_web::{HttpRequest, ResponseError};
use pin_project_lite::pin_project;
use tokio::sync::{Notify, futures::Notified};

use crate::error::ApiError;

static REACHED: AtomicBool = AtomicBool::new(false);
static NOTIFY: Notify = Notify::const_new();

/// When to answer, `grace` after the drain starts: early enough that a live event loop
/// writes the 503 before actix closes the connections (a quarter of the grace, at most 1 s).
pub(crate) fn cut_after(grace: Duration) -> Duration {
    grace.saturating_sub((grace / 4).min(Duration::from_secs(1)))
}

/// Answers every request in flight, and every later one, with 503.
pub(crate) fn reach() {
    REACHED.store(true, Ordering::SeqCst);
    NOTIFY.notify_waiters();
}

/// The middleware: the handler's answer, or a 503 when the grace ends first.
pub(crate) struct AnswerAtGraceEnd;

impl<S, B> Transform<S, ServiceRequest> for AnswerAtGraceEnd
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = GraceEndMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(GraceEndMiddleware { service }))
    }
}

pub(crate) struct GraceEndMiddleware<S> {
    service: S,
}

impl<S, B> Service<ServiceRequest> for GraceEndMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = UntilGraceEnd<S::Future>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        // Created before the flag is read: a `notify_waiters` in between still wakes it.
        let notified = NOTIFY.notified();
        let reached = REACHED.load(Ordering::SeqCst);
        let request = req.request().clone();
        UntilGraceEnd {
            inner: self.service.call(req),
            notified,
            request: Some(request),
            reached,
        }
    }
}

pin_project! {
    /// The handler's answer, or a 503 when the grace ends first.
    pub struct UntilGraceEnd<F> {
        #[pin]
        inner: F,
        #[pin]
        notified: Notified<'static>,
        request: Option<HttpRequest>,
        reached: bool,
    }
}

impl<F, B> Future for UntilGraceEnd<F>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
{
    type Output = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if !*this.reached {
            if let Poll::Ready(result) = this.inner.poll(cx) {
                return Poll::Ready(result.map(ServiceResponse::map_into_left_body));
            }
            if this.notified.poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        let Some(request) = this.request.take() else {
            return Poll::Pending;
        };
        let mut response = ApiError::ShuttingDown.error_response();
        response
            .head_mut()
            .set_connection_type(ConnectionType::Close);
        Poll::Ready(Ok(
            ServiceResponse::new(request, response).map_into_right_body()
        ))
    }
}

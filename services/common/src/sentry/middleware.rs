//! Our Sentry middleware, in place of sentry-actix. sentry-actix builds a hub, a request
//! context (every header copied), a transaction name and a transaction on every request,
//! sampled or not, and binds the hub on every poll: ~18 µs of CPU per request in `make bench`.
//! Here an unsampled request pays for a sampling decision, two random ids and a task-local:
//! - one hub per thread (the SDK's), no scope pushed: events are built whole and captured;
//! - sampling is decided first (an incoming `sentry-trace` decision, else a random draw), and
//!   a transaction exists only when sampled; its name is set when it ends;
//! - the trace id exists either way, so outgoing calls carry `sentry-trace` and an error event
//!   of an unsampled request still names its trace;
//! - the request context, route and tags are built only when an event is captured;
//! - probes and `/metrics` are not traced.
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderName;
use futures_util::future::Either;
use sentry::protocol::{Event, Exception, Level, Mechanism, SpanStatus};

use super::context::{self, IncomingTrace, RequestTrace};
use super::event::{RequestSnapshot, kind, request_line, route, stack_at};
use super::transaction::Ending;
use crate::error::{NotReported, Raised};

static SENTRY_TRACE: HeaderName = HeaderName::from_static("sentry-trace");

/// Paths that are never traced: probes and the scrape hit every few seconds.
const UNTRACED: &[&str] = &["/healthz", "/readyz", "/metrics"];

pub(crate) struct SentryLayer {
    pub(crate) traces_sample_rate: f32,
}

impl<S, B> Transform<S, ServiceRequest> for SentryLayer
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = SentryMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SentryMiddleware {
            service: Rc::new(service),
            rate: self.traces_sample_rate,
        }))
    }
}

pub(crate) struct SentryMiddleware<S> {
    service: Rc<S>,
    rate: f32,
}

fn draw(rate: f32) -> bool {
    rate >= 1.0 || (rate > 0.0 && context::random::<f32>() < rate)
}

type Traced<R> = Pin<Box<dyn Future<Output = Result<R, actix_web::Error>>>>;

impl<S, B> Service<ServiceRequest> for SentryMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = Either<S::Future, Traced<ServiceResponse<B>>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        if UNTRACED.contains(&req.path()) {
            return Either::Left(self.service.call(req));
        }
        let incoming = req
            .headers()
            .get(&SENTRY_TRACE)
            .and_then(|v| v.to_str().ok())
            .and_then(IncomingTrace::parse);
        let (sampled, drawn_at) = match incoming.and_then(|t| t.sampled) {
            Some(decided) => (decided, None),
            None => (draw(self.rate), Some(self.rate)),
        };
        let trace = Rc::new(RequestTrace::start(incoming, sampled, drawn_at));
        let service = self.service.clone();
        Either::Right(Box::pin(context::scope(trace.clone(), async move {
            let result = service.call(req).await;
            if let Ok(res) = &result
                && res.status().is_server_error()
            {
                capture_error(res, &trace);
            }
            finish(&trace, result.as_ref().ok());
            result
        })))
    }
}

fn request_id<B>(res: &ServiceResponse<B>) -> Option<String> {
    res.headers()
        .get(&crate::request_tracking::X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The error event of a 5xx that carries an error (a panic is reported by the panic hook).
fn capture_error<B>(res: &ServiceResponse<B>, trace: &RequestTrace) {
    if res.response().extensions().get::<NotReported>().is_some() {
        return;
    }
    let raised = res.response().extensions().get::<Raised>().cloned();
    let (ty, value, at, upstream) = match raised {
        Some(Raised(s)) => (s.ty, s.value, s.at, s.upstream),
        None => match res.response().error() {
            Some(e) => ("HttpError", e.to_string(), None, None),
            None => return,
        },
    };
    let status = res.status();
    let mut event = Event {
        level: Level::Error,
        exception: vec![Exception {
            ty: ty.to_owned(),
            value: Some(value),
            stacktrace: at.map(stack_at),
            mechanism: Some(Mechanism {
                ty: "http_error".to_owned(),
                handled: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        }]
        .into(),
        ..Default::default()
    };
    let mut snapshot = RequestSnapshot::new(res.request(), request_id(res), Some(trace.into()))
        .with_tag("status", status.as_str());
    if let Some((name, outcome)) = upstream {
        snapshot = snapshot
            .with_tag("upstream", name)
            .with_tag("outcome", outcome);
    }
    snapshot.apply(&mut event);
    sentry::Hub::current().capture_event(event);
}

/// Ends the request's transaction, when sampled, with its route name and outcome: the tags
/// and request of an error event but no headers (a sampled transaction is 1 request in 10 by
/// default, and each one's cost counts).
fn finish<B>(trace: &RequestTrace, res: Option<&ServiceResponse<B>>) {
    let Some(transaction) = &trace.transaction else {
        return;
    };
    let ending = match res {
        Some(res) => {
            let status = res.status();
            let req = res.request();
            let route = route(req);
            let mut tags = Vec::with_capacity(5);
            if let Some(kind) = kind(req, &route) {
                tags.push(("kind", kind));
            }
            if let Some(id) = request_id(res) {
                tags.push(("request_id", id));
            }
            let route_name = format!("{} {route}", req.method());
            tags.push(("route", route));
            tags.push(("status", status.as_str().to_owned()));
            tags.push(("worker", crate::stall::current_worker_label()));
            Ending {
                route_name: Some(route_name),
                status: span_status(status),
                tags,
                request: Some(request_line(req)),
            }
        }
        None => Ending {
            route_name: None,
            status: SpanStatus::InternalError,
            tags: Vec::new(),
            request: None,
        },
    };
    transaction.finish(ending);
}

fn span_status(status: StatusCode) -> SpanStatus {
    match status.as_u16() {
        200..=399 => SpanStatus::Ok,
        404 => SpanStatus::NotFound,
        400..=499 => SpanStatus::InvalidArgument,
        503 => SpanStatus::Unavailable,
        504 => SpanStatus::DeadlineExceeded,
        _ => SpanStatus::InternalError,
    }
}

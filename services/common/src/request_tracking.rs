//! The innermost app-wide middleware: it gives each request an id (in error bodies, the
//! `x-request-id` header, the access log, Sentry events and calls to other services; an
//! incoming `x-request-id` is kept when it is printable ASCII of at most 64 characters), counts requests in flight, times every poll
//! of the handler (stall detection) and writes one access-log event per request. All but
//! the id are optional only so that `make bench` can measure what each costs.
//!
//! The access log is one line per request, not a span (tracing-actix-web: the span and its
//! closing JSON line cost 15 to 25 µs of CPU per request in `make bench`), and is written by
//! hand (access_log.rs).
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use crate::metrics::IntGauge;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use futures_util::future::Either;

use actix_web::http::header::{HeaderName, HeaderValue};

use crate::access_log::AccessLine;
use crate::request_id::RequestId;
use crate::route_pattern::{RoutePatterns, UNMATCHED};
use crate::stall::{ConnSocket, PollTimed, RequestContext, StallDetector};

pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: RequestId;
}

/// The caller's `x-request-id` when it is safe to log and forward, else a new one.
fn request_id_of(req: &ServiceRequest) -> RequestId {
    req.headers()
        .get(&X_REQUEST_ID)
        .and_then(|id| RequestId::from_client(id.as_bytes()))
        .unwrap_or_default()
}

/// The id of the request this task serves, if any.
pub(crate) fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.as_str().to_owned()).ok()
}

pub(crate) struct RequestTracking {
    /// `None`: polls are not timed (`--disable-layers stall`).
    pub(crate) detector: Option<Arc<StallDetector>>,
    /// `None`: requests in flight are not counted (`--disable-layers in-flight`).
    pub(crate) in_flight: Option<Arc<IntGauge>>,
    /// `false`: no access-log event (`--disable-layers access-log`).
    pub(crate) access_log: bool,
}

impl<S, B> Transform<S, ServiceRequest> for RequestTracking
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Transform = RequestTrackingMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequestTrackingMiddleware {
            service: Rc::new(service),
            routes: RoutePatterns::default(),
            detector: self.detector.clone(),
            in_flight: self.in_flight.clone(),
            access_log: self.access_log,
        }))
    }
}

pub(crate) struct RequestTrackingMiddleware<S> {
    service: Rc<S>,
    routes: RoutePatterns,
    detector: Option<Arc<StallDetector>>,
    in_flight: Option<Arc<IntGauge>>,
    access_log: bool,
}

type BoxedResponse =
    Pin<Box<dyn Future<Output = Result<ServiceResponse<BoxBody>, actix_web::Error>>>>;

impl<S, B> Service<ServiceRequest> for RequestTrackingMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Future = BoxedResponse;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let request_id = request_id_of(&req);
        let done = self.in_flight.clone().map(|in_flight| {
            in_flight.add(1);
            crate::defer::defer(move || in_flight.add(-1))
        });
        let log = (self.access_log && crate::access_log::enabled()).then(std::time::Instant::now);
        // The route pattern, for the stall detector and the log.
        let endpoint = (self.detector.is_some() || log.is_some()).then(|| self.routes.of(&req));
        let method = req.method().clone();
        let socket = req.conn_data::<ConnSocket>().copied();
        let service = self.service.clone();
        // `call` runs inside the timed future too: some services do work before returning it.
        let handled = async move { service.call(req).await };
        let timed = match (&self.detector, &endpoint) {
            (Some(detector), Some(endpoint)) => Either::Left(PollTimed::new(
                handled,
                RequestContext::new(&method, endpoint.clone(), request_id, socket.as_ref()),
                detector.clone(),
            )),
            _ => Either::Right(handled),
        };
        Box::pin(REQUEST_ID.scope(request_id, async move {
            let outcome = timed.await;
            let request_id = request_id.as_bytes();
            drop(done);
            let mut res = outcome?.map_into_boxed_body();
            if let Some(started) = log {
                let status = res.status().as_u16();
                let error = res.response().error().map(ToString::to_string);
                crate::sentry::with_trace_hex(|trace_id| {
                    AccessLine {
                        request_id,
                        trace_id,
                        method: method.as_str(),
                        route: endpoint.as_deref().unwrap_or(UNMATCHED),
                        path: res.request().path(),
                        status,
                        duration: started.elapsed(),
                        error: error.as_deref(),
                    }
                    .emit();
                });
            }
            if let Ok(value) = HeaderValue::from_bytes(request_id) {
                res.headers_mut().insert(X_REQUEST_ID.clone(), value);
            }
            Ok(res)
        }))
    }
}

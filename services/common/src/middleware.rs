//! The innermost app-wide middleware: it makes the request id available to error bodies,
//! counts requests in flight and times every poll of the handler (stall detection). The
//! last two are optional only so that `make bench` can measure what each costs.
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::HttpMessage;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use futures_util::future::Either;
use opentelemetry::metrics::UpDownCounter;
use tracing_actix_web::RequestId;

use crate::stall::{PollTimed, StallDetector};

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request this task serves, if any.
pub(crate) fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

pub(crate) struct Guard {
    /// `None`: polls are not timed (`--disable-layers stall`).
    pub(crate) detector: Option<Arc<StallDetector>>,
    /// `None`: requests in flight are not counted (`--disable-layers in-flight`).
    pub(crate) in_flight: Option<UpDownCounter<i64>>,
}

impl<S, B> Transform<S, ServiceRequest> for Guard
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Transform = GuardMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(GuardMiddleware {
            service: Rc::new(service),
            detector: self.detector.clone(),
            in_flight: self.in_flight.clone(),
        }))
    }
}

pub(crate) struct GuardMiddleware<S> {
    service: Rc<S>,
    detector: Option<Arc<StallDetector>>,
    in_flight: Option<UpDownCounter<i64>>,
}

type BoxedResponse =
    Pin<Box<dyn Future<Output = Result<ServiceResponse<BoxBody>, actix_web::Error>>>>;

impl<S, B> Service<ServiceRequest> for GuardMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Future = BoxedResponse;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        let done = self.in_flight.clone().map(|in_flight| {
            in_flight.add(1, &[]);
            crate::defer::defer(move || in_flight.add(-1, &[]))
        });
        let service = self.service.clone();
        let stall = self.detector.clone().map(|detector| {
            let endpoint = req
                .match_pattern()
                .unwrap_or_else(|| "UNMATCHED".to_owned());
            (detector, endpoint)
        });
        // `call` runs inside the timed future too: some services do work before returning it.
        let handled = async move { service.call(req).await };
        let timed = match stall {
            Some((detector, endpoint)) => Either::Left(PollTimed::new(handled, endpoint, detector)),
            None => Either::Right(handled),
        };
        Box::pin(REQUEST_ID.scope(request_id.clone(), async move {
            let outcome = timed.await;
            drop(done);
            outcome.map(ServiceResponse::map_into_boxed_body)
        }))
    }
}

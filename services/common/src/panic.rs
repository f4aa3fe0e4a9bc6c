//! A panicking handler answers 500 JSON and the worker keeps serving. actix does not catch
//! panics: the worker thread would die with every connection on it. The panic still reaches
//! Sentry, through our panic hook (sentry/panic.rs), which runs before unwinding, takes the
//! request's snapshot and leaves symbolication and sending to a background thread.
//!
//! This wraps each resource, not the app: a panic response needs the `HttpRequest`, and
//! holding a clone of it while the app router runs breaks routing (it needs the only copy).
use std::future::{Future, Ready, ready};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::Rc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use futures_util::FutureExt;

use crate::error::json_error;

/// Wraps one route (see route.rs): a panic in its handler becomes a 500 JSON.
pub(crate) struct CatchPanic;

impl<S, B> Transform<S, ServiceRequest> for CatchPanic
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Transform = CatchPanicMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(CatchPanicMiddleware {
            service: Rc::new(service),
        }))
    }
}

pub(crate) struct CatchPanicMiddleware<S> {
    service: Rc<S>,
}

type BoxedResponse =
    Pin<Box<dyn Future<Output = Result<ServiceResponse<BoxBody>, actix_web::Error>>>>;

impl<S, B> Service<ServiceRequest> for CatchPanicMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Future = BoxedResponse;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let request = req.request().clone();
        // Routed now: a panic's Sentry event can name the route and the request.
        crate::sentry::set_request(&request);
        let service = self.service.clone();
        let handled = AssertUnwindSafe(async move { service.call(req).await }).catch_unwind();
        Box::pin(async move {
            match handled.await {
                Ok(result) => result.map(ServiceResponse::map_into_boxed_body),
                Err(_) => {
                    let body = json_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal_error",
                        "the handler panicked; the panic was reported".to_owned(),
                        None,
                        None,
                    );
                    Ok(ServiceResponse::new(request, body))
                }
            }
        })
    }
}

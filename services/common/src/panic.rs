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
use actix_web::dev::{
    HttpServiceFactory, Service, ServiceRequest, ServiceResponse, Transform, forward_ready,
};
use actix_web::http::{Method, StatusCode};
use actix_web::{FromRequest, Handler, Responder, web};
use futures_util::FutureExt;

use crate::error::json_error;

/// What every route answers to: GET, HEAD (the same, without the body: HTTP says HEAD is a
/// GET whose body is not sent; actix drops it) and OPTIONS (what is allowed).
const ALLOWED: &str = "GET, HEAD, OPTIONS";

/// `GET path` (and HEAD, OPTIONS) served by `handler`, with panics caught. Use it for every
/// route of a service.
pub fn get<F, Args>(path: &str, handler: F) -> impl HttpServiceFactory + 'static
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    crate::stall::declare_route(path);
    web::resource(path)
        .route(web::get().to(handler.clone()))
        .route(web::head().to(handler))
        .route(web::method(Method::OPTIONS).to(options))
        .default_service(web::to(method_not_allowed))
        .wrap(crate::grace_end::AnswerAtGraceEnd)
        .wrap(CatchPanic)
}

/// `OPTIONS`: no body, the methods in `Allow`.
pub async fn options() -> actix_web::HttpResponse {
    actix_web::HttpResponse::NoContent()
        .insert_header((
            actix_web::http::header::ALLOW,
            actix_web::http::header::HeaderValue::from_static(ALLOWED),
        ))
        .finish()
}

async fn method_not_allowed(req: actix_web::HttpRequest) -> actix_web::HttpResponse {
    let mut res = json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} is not allowed on {}; use GET",
            crate::params::clip(req.method().as_str()),
            crate::params::clip(req.path())
        ),
        None,
        None,
    );
    res.headers_mut().insert(
        actix_web::http::header::ALLOW,
        actix_web::http::header::HeaderValue::from_static(ALLOWED),
    );
    res
}

pub struct CatchPanic;

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

pub struct CatchPanicMiddleware<S> {
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

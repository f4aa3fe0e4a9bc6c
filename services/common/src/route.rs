//! Every route a service serves, built one way: `GET path` answered by its handler, HEAD as
//! GET without the body, OPTIONS with `Allow`, any other method a 405 JSON naming GET; panics
//! caught (panic.rs); the route declared to the stall detector, so its metrics exist at 0 from
//! the start.
use actix_web::dev::HttpServiceFactory;
use actix_web::http::{Method, StatusCode};
use actix_web::{FromRequest, Handler, Responder, guard, web};

use crate::error::json_error;
use crate::panic::CatchPanic;

/// What every route answers to: GET, HEAD (the same, without the body: HTTP says HEAD is a
/// GET whose body is not sent; actix drops it) and OPTIONS (what is allowed).
const ALLOWED: &str = "GET, HEAD, OPTIONS";

/// `GET path` (and HEAD, OPTIONS) served by `handler`, with panics caught. Use it for every
/// route of a service.
pub fn get_route<F, Args>(path: &str, handler: F) -> impl HttpServiceFactory + 'static
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    crate::stall::declare_route(path);
    web::resource(path)
        .route(on(Method::GET).to(handler.clone()))
        .route(on(Method::HEAD).to(handler))
        .route(on(Method::OPTIONS).to(options))
        .default_service(web::to(method_not_allowed))
        .wrap(crate::grace_end::AnswerAtGraceEnd)
        .wrap(CatchPanic)
}

/// A route for one method. Not `web::get()` and its kin: their guard records each method it
/// is asked about in the request's extensions, for a 405 `Allow` that actix would build (a
/// `Vec` and a boxed extension: three allocations on every request). Our routes and probes
/// answer other methods with [`method_not_allowed`] and OPTIONS with [`options`], both of
/// which write `Allow` themselves.
pub(crate) fn on(method: Method) -> actix_web::Route {
    web::route().guard(guard::fn_guard(move |ctx| ctx.head().method == method))
}

/// `OPTIONS`: no body, the methods in `Allow`.
pub(crate) async fn options() -> actix_web::HttpResponse {
    actix_web::HttpResponse::NoContent()
        .insert_header((
            actix_web::http::header::ALLOW,
            actix_web::http::header::HeaderValue::from_static(ALLOWED),
        ))
        .finish()
}

pub(crate) async fn method_not_allowed(req: actix_web::HttpRequest) -> actix_web::HttpResponse {
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

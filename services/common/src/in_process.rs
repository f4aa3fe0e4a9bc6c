//! A service's app in-process, for its route tests (feature `in-process`, dev-dependencies
//! only): the probes, the service's routes, the JSON 404 and the request-id middleware, as
//! `run` assembles them (server.rs), without the stall detector, the HTTP metrics, Sentry, the
//! access log or an admin port. [`app`] is for `actix_web::test::init_service` (no port at
//! all); [`serve`] puts the same app on a loopback port, for a service that another service's
//! tests call over HTTP (a worker behind the gateway, the backend behind a worker).
use std::io;
use std::net::{SocketAddr, TcpListener};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServerHandle, Service, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::test::{TestRequest, call_service, read_body_json};
use actix_web::{App, HttpServer, web};
use serde_json::Value;

use crate::health::{self, Readiness};
use crate::request_tracking::RequestTracking;

/// The app `run` serves for `routes`, ready (`/readyz` answers 200).
pub fn app<C>(
    routes: C,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
>
where
    C: FnOnce(&mut web::ServiceConfig),
{
    let readiness = Readiness::default();
    readiness.set_ready(true);
    App::new()
        .app_data(web::Data::new(readiness))
        .configure(health::routes)
        .configure(routes)
        .default_service(web::to(crate::server::not_found))
        .wrap(RequestTracking {
            detector: None,
            in_flight: None,
            access_log: false,
        })
}

/// [`app`] served on a free loopback port by one actix worker, until dropped.
pub struct Served {
    addr: SocketAddr,
    handle: ServerHandle,
}

impl Served {
    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        // The command is sent now; nobody needs to wait for the workers to exit.
        drop(self.handle.stop(false));
    }
}

/// Serves [`app`]`(routes)`; call it inside an actix System (`#[actix_web::test]`), which
/// runs the server's own future.
pub fn serve<C>(routes: C) -> io::Result<Served>
where
    C: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
{
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    let addr = listener.local_addr()?;
    let server = HttpServer::new(move || app(routes.clone()))
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)?
        .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Ok(Served { addr, handle })
}

/// GET `uri` on an app from `actix_web::test::init_service`: the status and the JSON body.
pub async fn get_json<S, B, E>(app: &S, uri: &str) -> (StatusCode, Value)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = E>,
    B: MessageBody,
    E: std::fmt::Debug,
{
    let res = call_service(app, TestRequest::get().uri(uri).to_request()).await;
    let status = res.status();
    (status, read_body_json(res).await)
}

/// A JSON body read as its type of the contract; panics, showing the body, if it is not one.
pub fn typed<T: serde::de::DeserializeOwned>(body: &Value) -> T {
    T::deserialize(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

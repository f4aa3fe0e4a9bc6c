//! The app port's HTTP service: what actix-web's `HttpServer::listen` builds, with one change:
//! each TCP stream is wrapped in a [`WatchedStream`] before the dispatcher gets it, so the
//! answers actix-http gives by itself (400, 408, 431) are counted, logged and made JSON
//! (http_layer_answers.rs). `HttpServer` has no hook for the stream type, hence this file.
use std::any::Any;
use std::fmt;
use std::io;
use std::net::TcpListener;
use std::rc::Rc;
use std::time::Duration;

use actix_http::body::MessageBody;
use actix_http::{HttpService, KeepAlive, Protocol, Request, Response};
use actix_server::ServerBuilder;
use actix_service::{
    IntoServiceFactory, Service, ServiceFactory, ServiceFactoryExt, fn_service, map_config,
};
use actix_web::dev::{AppConfig, Extensions};
use actix_web::rt::net::TcpStream;

use crate::http_layer_answers::{AnswerSink, WatchedStream};

/// The HTTP settings of the app port (actix-web's defaults where we do not set one).
pub(crate) struct AppPort {
    pub(crate) client_request_timeout: Duration,
    /// The stall detector reads each connection's socket (`--disable-layers stall`: no).
    pub(crate) stall_on: bool,
    pub(crate) sink: AnswerSink,
}

impl AppPort {
    /// Adds the app listener to `builder`, serving what `factory` builds (once per worker).
    pub(crate) fn listen<F, I, S, B>(
        self,
        builder: ServerBuilder,
        listener: TcpListener,
        factory: F,
    ) -> io::Result<ServerBuilder>
    where
        F: Fn() -> I + Send + Clone + 'static,
        I: IntoServiceFactory<S, Request>,
        S: ServiceFactory<Request, Config = AppConfig> + 'static,
        S::Error: Into<actix_web::Error> + 'static,
        S::InitError: fmt::Debug,
        S::Response: Into<Response<B>> + 'static,
        <S::Service as Service<Request>>::Future: 'static,
        S::Service: 'static,
        B: MessageBody + 'static,
    {
        let addr = listener.local_addr()?;
        let host = addr.to_string();
        let drain = builder.graceful_shutdown_signal();
        let Self {
            client_request_timeout,
            stall_on,
            sink,
        } = self;
        builder.listen("loopscope-app", listener, move || {
            let drain = drain.clone();
            let host = host.clone();
            // Built on the worker's thread: one sink per worker, shared by its connections.
            let sink = Rc::new(sink.clone());
            let service = HttpService::build()
                // Keep-alive connections are closed after their current answer on a drain.
                .graceful_shutdown_signal(move || {
                    let drain = drain.clone();
                    async move { drain.notified().await }
                })
                .keep_alive(KeepAlive::default())
                .client_request_timeout(client_request_timeout)
                .client_disconnect_timeout(Duration::from_secs(1))
                // A client that closes its connection has given up: drop its handler (and so
                // its queued pool job, see blocking.rs) instead of finishing work nobody reads.
                .h1_allow_half_closed(false)
                .local_addr(addr)
                .on_connect_ext(move |io: &WatchedStream, ext: &mut Extensions| {
                    if stall_on {
                        crate::stall::on_connect(io.tcp() as &dyn Any, ext);
                    }
                })
                .finish(map_config(
                    factory()
                        .into_factory()
                        .map_err(|err| err.into().error_response()),
                    // `AppConfig::new` is crate-private; this is the constructor actix-test
                    // uses. Host and address feed URL generation and the Sentry request URL.
                    move |()| AppConfig::__priv_test_new(false, host.clone(), addr),
                ));
            fn_service(move |io: TcpStream| {
                let sink = sink.clone();
                async move {
                    let peer = io.peer_addr().ok();
                    Ok::<_, actix_http::error::DispatchError>((
                        WatchedStream::new(io, sink),
                        Protocol::Http1,
                        peer,
                    ))
                }
            })
            .and_then(service)
        })
    }
}

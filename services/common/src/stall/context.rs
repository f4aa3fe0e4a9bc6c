//! What a stall report says about the request that blocked: built once per request by the
//! guard middleware, owned by its [`super::PollTimed`], published in the worker's slot during
//! each poll.
use std::sync::Arc;

use sentry::Hub;

pub struct RequestContext {
    pub(crate) method: String,
    /// The route pattern, e.g. `/work/block`.
    pub(crate) route: String,
    /// Equal to the response's `x-request-id`.
    pub(crate) request_id: String,
    /// The request's Sentry hub (sentry-actix binds one per request): its scope holds the
    /// request's transaction, hence the trace id, and the request data for the event.
    pub(crate) hub: Arc<Hub>,
    /// Its connection's socket, to ask the kernel how long the request waited in it.
    pub(crate) socket: Option<std::os::fd::RawFd>,
}

/// The socket of a connection, put in its extensions by [`on_connect`].
#[derive(Clone, Copy)]
pub struct ConnSocket(std::os::fd::RawFd);

/// `HttpServer::on_connect`: remembers each TCP connection's socket (no syscall), so that a
/// request read right after a stall can tell how long it sat in the socket behind it.
pub fn on_connect(connection: &dyn std::any::Any, extensions: &mut actix_web::dev::Extensions) {
    use std::os::fd::AsRawFd;
    if let Some(stream) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
        extensions.insert(ConnSocket(stream.as_raw_fd()));
    }
}

impl RequestContext {
    /// Call inside the request's service call, where sentry-actix has bound its hub.
    pub fn new(
        method: &str,
        route: &str,
        request_id: &str,
        socket: Option<&ConnSocket>,
    ) -> Arc<Self> {
        Arc::new(Self {
            method: method.to_owned(),
            route: route.to_owned(),
            request_id: request_id.to_owned(),
            hub: Hub::current(),
            socket: socket.map(|s| s.0),
        })
    }

    /// The trace the request belongs to: its transaction's, or the scope's propagation
    /// context when it has no transaction (not sampled, or Sentry off). Call it while the
    /// request runs (sentry-actix removes the transaction from the scope at its end), and not
    /// while its thread is parked (it may hold the hub's lock).
    pub(crate) fn trace(&self) -> Option<sentry::protocol::TraceContext> {
        self.hub.configure_scope(|scope| {
            if let Some(span) = scope.get_span() {
                return Some(span.get_trace_context());
            }
            let (_, header) = scope.iter_trace_propagation_headers().next()?;
            let mut parts = header.split('-');
            let trace_id = parts.next()?.parse().ok()?;
            let span_id = parts.next()?.parse().ok()?;
            Some(sentry::protocol::TraceContext {
                trace_id,
                span_id,
                ..Default::default()
            })
        })
    }
}

//! What a stall report says about the request that blocked: built once per request by the
//! guard middleware, owned by its [`super::PollTimed`], published in the worker's slot during
//! each poll.
use std::sync::Arc;

use actix_web::http::Method;
use sentry::protocol::TraceContext;

use crate::request_id::RequestId;
use crate::sentry::TraceIds;

/// Built for every request (one allocation: the `Arc`), read only when a poll stalls.
pub(crate) struct RequestContext {
    pub(crate) method: Method,
    /// The route pattern, e.g. `/work/block`.
    pub(crate) route: Arc<str>,
    /// Equal to the response's `x-request-id`.
    pub(crate) request_id: RequestId,
    /// The request's trace ids, from our Sentry layer; `None` when Sentry is off.
    trace: Option<TraceIds>,
    /// Its connection's socket, to ask the kernel how long the request waited in it.
    pub(crate) socket: Option<std::os::fd::RawFd>,
}

/// The socket of a connection, put in its extensions by [`on_connect`].
#[derive(Clone, Copy)]
pub(crate) struct ConnSocket(std::os::fd::RawFd);

/// `HttpServer::on_connect`: remembers each TCP connection's socket (no syscall), so that a
/// request read right after a stall can tell how long it sat in the socket behind it.
pub(crate) fn on_connect(
    connection: &dyn std::any::Any,
    extensions: &mut actix_web::dev::Extensions,
) {
    use std::os::fd::AsRawFd;
    if let Some(stream) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
        extensions.insert(ConnSocket(stream.as_raw_fd()));
    }
}

impl RequestContext {
    /// Call inside the request's service call, within our Sentry layer's request scope.
    pub(crate) fn new(
        method: &Method,
        route: Arc<str>,
        request_id: RequestId,
        socket: Option<&ConnSocket>,
    ) -> Arc<Self> {
        Arc::new(Self {
            method: method.clone(),
            route,
            request_id,
            trace: crate::sentry::current_trace_ids(),
            socket: socket.map(|s| s.0),
        })
    }

    /// The trace the request belongs to (its ids were taken when the request started, so
    /// reading them needs no lock, even while its thread is parked).
    pub(crate) fn trace(&self) -> Option<TraceContext> {
        self.trace.map(TraceIds::context)
    }
}

//! Sentry, paid for only when something goes wrong: the client ([`init`]), our request
//! middleware (sampling first, nothing built unless captured), the request's trace in a
//! task-local (`context`), what an event says about its request (`event`), and a panic hook
//! that never holds the event loop (`panic`), sampled transactions recorded as plain data
//! (`transaction`) and written as envelopes on the sender's thread (`transaction_json`), and
//! a transport that backs off while Sentry is unreachable (`transport`) and pipelines
//! envelopes on one connection (`pipeline`).
mod breadcrumbs;
mod context;
mod event;
mod init;
mod middleware;
mod panic;
mod pipeline;
mod transaction;
mod transaction_constant;
mod transaction_json;
mod transport;

pub(crate) use breadcrumbs::Breadcrumbs;
pub use context::child_span;
pub(crate) use context::set_request;
pub(crate) use context::{current_trace_ids, propagation, with_trace_hex};
pub(crate) use event::TraceIds;
pub(crate) use init::init;
pub(crate) use middleware::SentryLayer;
pub(crate) use panic::take_pool_panic;
pub use transaction::Span;

//! The library every loopscope service links.
//!
//! A service describes itself ([`ServiceInfo`]), its flags ([`ServerArgs`] flattened into its
//! own clap struct) and its routes; [`run`] does the rest in the order production needs:
//! logs and Sentry before the actix System starts, one metrics registry for everything, the
//! middleware stack, exposition on an admin port or mounted, stall detection, and a drain on
//! SIGTERM that loses no accepted request.

mod access_log;
mod app_port;
pub mod blocking;
pub mod config;
mod defer;
pub mod error;
mod flood_trim;
mod grace_end;
mod health;
mod http_layer_answers;
#[cfg(feature = "in-process")]
pub mod in_process;
mod log_writer;
mod logging;
pub mod metrics;
mod panic;
pub mod params;
mod query_pairs;
mod recent;
mod request_id;
mod request_tracking;
mod route;
mod route_pattern;
mod run;
mod sentry;
mod server;
pub mod shed;
pub mod shutdown;
mod stall;
mod startup;
pub mod sys;
pub mod timestamp;
pub mod upstream;

pub use config::{MetricsExposition, ServerArgs};
pub use error::ApiError;
pub use metrics::Telemetry;
pub use params::Params;
pub use route::get_route;
pub use run::{Background, run, run_with_background};
pub use sentry::{Span as TraceSpan, child_span};
pub use stall::current_worker_label;

/// Who a process is: the `service` and `handling` labels on every metric and Sentry event.
#[derive(Clone, Debug)]
pub struct ServiceInfo {
    pub name: &'static str,
    /// `async` or `threadpool` for the worker; `None` for services with one way of handling.
    pub handling: Option<&'static str>,
    /// Ports used when the flags leave them unset.
    pub default_port: u16,
    pub default_admin_port: u16,
}

/// Crate version and git revision, as stamped by build.rs.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const REVISION: &str = env!("LOOPSCOPE_REVISION");

#[cfg(test)]
mod in_process_tests;

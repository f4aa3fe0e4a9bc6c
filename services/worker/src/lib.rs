//! The worker: the same work done on the blocking pool (`threadpool`) or on the event loop
//! (`async`), plus `block`, the blocking call in an async handler that every async codebase
//! ships sooner or later.
mod config;
mod cpu;
mod report;
pub mod routes;
mod work;

pub use config::{Cli, Handling};

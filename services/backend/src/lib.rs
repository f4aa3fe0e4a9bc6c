//! The backend: answers after a latency drawn from a distribution and fails at a set rate.
mod config;
mod latency;
pub mod routes;

pub use config::Cli;

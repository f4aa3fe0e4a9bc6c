//! The gateway: `compare` (one job on both modes at once), `fanout` (seed 003's sequential,
//! concurrent and pool-limited calls) and a proxy to either mode.
mod budget;
mod config;
mod fanout;
pub mod routes;

pub use config::Cli;

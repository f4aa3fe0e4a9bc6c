//! `worker`: does the work, in the handling mode it was started with.
use std::process::ExitCode;

use clap::Parser;
use worker::{Cli, routes};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let service = cli.service_info();
    common::run(service, cli.server.clone(), |telemetry| {
        routes::state(&cli, telemetry).map(routes::configure)
    })
}

//! `gateway`: the public entry; runs jobs on both handling modes and fans calls out.
use std::process::ExitCode;

use clap::Parser;
use gateway::{Cli, routes};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let service = common::ServiceInfo {
        name: "gateway",
        handling: None,
        default_port: 8080,
        default_admin_port: 9080,
    };
    common::run(service, cli.server.clone(), |telemetry| {
        routes::state(&cli, telemetry).map(routes::configure)
    })
}

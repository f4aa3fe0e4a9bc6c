//! `gateway`: the public entry; runs jobs on both handling modes and fans calls out.
use std::process::ExitCode;

use clap::Parser;
use gateway::{Cli, routes};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let service = common::ServiceInfo {
        name: "gateway",
        handling: None,
        default_port: ports::GATEWAY.app,
        default_admin_port: ports::GATEWAY.admin,
    };
    common::run(service, cli.server.clone(), |telemetry| {
        routes::state(&cli, telemetry).map(routes::configure)
    })
}

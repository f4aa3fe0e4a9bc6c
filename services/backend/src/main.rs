//! `backend`: the slow dependency (a database or an API) that `call` work requests.
use std::process::ExitCode;

use backend::{Cli, routes};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let service = common::ServiceInfo {
        name: "backend",
        handling: None,
        default_port: ports::BACKEND.app,
        default_admin_port: ports::BACKEND.admin,
    };
    common::run(service, cli.server.clone(), |_| {
        routes::state(&cli).map(routes::configure)
    })
}

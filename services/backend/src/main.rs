//! `backend`: the slow dependency (a database or an API) that `call` work requests.
use std::process::ExitCode;

use backend::{Cli, routes};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let service = common::ServiceInfo {
        name: "backend",
        handling: None,
        default_port: 8083,
        default_admin_port: 9083,
    };
    common::run(service, cli.server.clone(), |_| {
        routes::state(&cli).map(routes::configure)
    })
}

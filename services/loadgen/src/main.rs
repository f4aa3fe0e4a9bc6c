//! `loadgen`: load, the seeds' experiments, and in-cluster steady traffic.
use std::process::ExitCode;

use clap::Parser;
use loadgen::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => loadgen::load::main(args),
        Command::Serve(args) => loadgen::serve::main(*args),
        Command::Experiment(args) => loadgen::experiments::main(args),
    }
}

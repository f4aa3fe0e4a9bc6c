//! Being written: the experiments.
use std::process::ExitCode;

pub fn main(_args: crate::cli::ExperimentArgs) -> ExitCode {
    eprintln!("loadgen experiment: not built yet");
    ExitCode::FAILURE
}

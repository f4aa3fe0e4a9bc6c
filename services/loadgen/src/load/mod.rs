//! Being written: the load engine and `loadgen run`.
use std::process::ExitCode;

pub fn main(_args: crate::cli::RunArgs) -> ExitCode {
    eprintln!("loadgen run: not built yet");
    ExitCode::FAILURE
}

//! Being written: `loadgen serve`.
use std::process::ExitCode;

pub fn main(_args: crate::cli::ServeArgs) -> ExitCode {
    eprintln!("loadgen serve: not built yet");
    ExitCode::FAILURE
}

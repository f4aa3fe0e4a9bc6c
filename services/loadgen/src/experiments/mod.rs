//! `loadgen experiment`: each experiment runs against a running stack, prints what its seed
//! predicts beside what was measured, and passes or fails within a stated tolerance.
//! The seeds are the five notes loopscope grew from: docs/seeds.md says what each showed.
mod blocking;
mod caught;
mod check;
mod cpu;
mod exposition;
mod pool;
mod sequential;
mod stack;
mod sweep;
mod table;

use std::process::ExitCode;
use std::time::Duration;

use crate::cli::{ExperimentArgs, ExperimentName};
use crate::model::{ExperimentOutcome, RunReport};
pub(crate) use common::error::error_chain as cause;
pub(crate) use stack::Stack;

/// How long the experiments run: `quick` for tests and a first look.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pace {
    pub(crate) quick: bool,
}

const ORDER: [ExperimentName; 6] = [
    ExperimentName::Blocking,
    ExperimentName::Sequential,
    ExperimentName::Pool,
    ExperimentName::Exposition,
    ExperimentName::Cpu,
    ExperimentName::Sweep,
];

pub fn main(args: ExperimentArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

async fn run(args: ExperimentArgs) -> ExitCode {
    let stack = Stack::new(&args.stack, Duration::from_secs(60));
    if let Err(e) = stack.check().await {
        eprintln!("loadgen experiment: {e}");
        return ExitCode::from(2);
    }
    let pace = Pace { quick: args.quick };
    let names: Vec<ExperimentName> = match args.name {
        ExperimentName::All => ORDER.to_vec(),
        one => vec![one],
    };
    let mut outcomes = Vec::new();
    for name in names {
        if !args.json {
            eprintln!("running {} ...", cli_name(name));
        }
        let outcome = tokio::select! {
            outcome = run_one(name, &stack, pace) => outcome,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("interrupted; results so far follow");
                break;
            }
        };
        match outcome {
            Ok(outcome) => {
                if !args.json {
                    table::print_outcome(&outcome);
                }
                outcomes.push(outcome);
            }
            Err(e) => {
                eprintln!("loadgen experiment {}: {e}", cli_name(name));
                return ExitCode::from(2);
            }
        }
    }
    let report = RunReport {
        generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        loopscope_version: env!("CARGO_PKG_VERSION").to_owned(),
        stack: stack.describe(),
        experiments: outcomes,
    };
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("loadgen: cannot encode the results: {e}"),
        }
    } else {
        table::print_summary(&report.experiments);
    }
    if let Some(dir) = &args.report {
        match crate::report::write(&report, dir) {
            Ok(page) => eprintln!("report: {}", page.display()),
            Err(e) => {
                eprintln!(
                    "loadgen: cannot write the report into {}: {e}",
                    dir.display()
                );
                return ExitCode::FAILURE;
            }
        }
    }
    if report.experiments.iter().all(|o| o.passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn run_one(
    name: ExperimentName,
    stack: &Stack,
    pace: Pace,
) -> Result<ExperimentOutcome, stack::StackError> {
    match name {
        ExperimentName::Blocking => blocking::run(stack, pace).await,
        ExperimentName::Sequential => sequential::run(stack, pace).await,
        ExperimentName::Pool => pool::run(stack, pace).await,
        ExperimentName::Exposition => exposition::run(stack, pace).await,
        ExperimentName::Cpu => cpu::run(stack, pace).await,
        ExperimentName::Sweep => sweep::run(stack, pace).await,
        ExperimentName::All => unreachable!("`all` is expanded before running"),
    }
}

fn cli_name(name: ExperimentName) -> String {
    use clap::ValueEnum;
    name.to_possible_value()
        .map_or_else(|| format!("{name:?}"), |v| v.get_name().to_owned())
}

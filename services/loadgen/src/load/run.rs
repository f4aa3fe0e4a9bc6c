//! `loadgen run`: flags to a [`Plan`], the run, the summary, the exit code.
use std::process::ExitCode;
use std::time::Duration;

use super::progress::Progress;
use super::summary::describe_stop;
use super::{Model, Plan, PlanError, Stop, engine, table};
use crate::cli::RunArgs;

/// Run length when neither `--duration` nor `--requests` is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);
/// Concurrency when neither `--rate` nor `--concurrency` is given.
pub const DEFAULT_CONCURRENCY: usize = 10;

/// Exit code of a run interrupted by Ctrl-C, as a shell reports SIGINT.
const EXIT_INTERRUPTED: u8 = 130;
/// Exit code of bad flags, as clap uses.
const EXIT_USAGE: u8 = 2;

/// The plan the flags describe, and the defaults it fell back on (to say so).
fn plan_from_args(args: &RunArgs) -> Result<(Plan, Vec<String>), PlanError> {
    let mut notes = Vec::new();
    let model = match (args.rate, args.concurrency) {
        (Some(rate), _) => Model::Open { rate },
        (None, Some(concurrency)) => Model::Closed { concurrency },
        (None, None) => {
            notes.push(format!(
                "no --rate or --concurrency: closed model, {DEFAULT_CONCURRENCY} in flight"
            ));
            Model::Closed {
                concurrency: DEFAULT_CONCURRENCY,
            }
        }
    };
    let stop = match (args.duration, args.requests) {
        (Some(d), _) => Stop::After(d),
        (None, Some(n)) => Stop::Count(n),
        (None, None) => {
            notes.push(format!(
                "no --duration or --requests: running for {}",
                describe_stop(Stop::After(DEFAULT_DURATION))
            ));
            Stop::After(DEFAULT_DURATION)
        }
    };
    let plan = Plan {
        model,
        stop,
        urls: args.urls.clone(),
        timeout: args.timeout,
    };
    plan.validate()?;
    Ok((plan, notes))
}

/// Builds a multi-thread runtime, runs the flags' plan, prints the summary (a table, or JSON
/// on stdout with `--json`). Exit 0 when something succeeded, 1 when every request failed,
/// 2 on bad flags, 130 on Ctrl-C (after the partial summary).
pub fn main(args: RunArgs) -> ExitCode {
    let (plan, notes) = match plan_from_args(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("loadgen run: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen run: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let client = match reqwest::Client::builder().build() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("loadgen run: cannot build the HTTP client: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !args.quiet {
        for note in notes {
            eprintln!("loadgen run: {note}");
        }
    }
    let progress = Progress::auto(args.quiet);
    let summary = runtime.block_on(engine::execute(&plan, &client, progress, ctrl_c()));
    // Requests abandoned by Ctrl-C may sit in a DNS lookup on a blocking thread: do not wait.
    runtime.shutdown_background();

    if summary.interrupted() {
        eprintln!("loadgen run: interrupted; partial results");
    }
    if args.json {
        match serde_json::to_string_pretty(&summary) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("loadgen run: cannot encode the summary: {e}"),
        }
    } else {
        print!("{}", table::render(&summary));
    }
    if summary.all_failed() {
        let kinds: Vec<String> = summary
            .error_kinds()
            .iter()
            .map(|(kind, n)| format!("{kind} ×{n}"))
            .collect();
        eprintln!("loadgen run: every request failed ({})", kinds.join(", "));
    }
    if summary.interrupted() {
        ExitCode::from(EXIT_INTERRUPTED)
    } else if summary.all_failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Resolves on Ctrl-C; never, if the handler cannot be installed.
async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn args(argv: &[&str]) -> RunArgs {
        let cli = Cli::try_parse_from([&["loadgen", "run"], argv].concat()).expect("parses");
        match cli.command {
            Command::Run(a) => a,
            _ => unreachable!("a run command"),
        }
    }

    #[test]
    fn defaults_are_closed_10_for_10s_and_said() {
        let (plan, notes) = plan_from_args(&args(&["http://h/"])).expect("valid");
        assert_eq!(plan.model, Model::Closed { concurrency: 10 });
        assert_eq!(plan.stop, Stop::After(Duration::from_secs(10)));
        assert_eq!(plan.timeout, Duration::from_secs(30));
        assert_eq!(notes.len(), 2);
        assert!(notes[1].contains("10s"), "{notes:?}");
    }

    #[test]
    fn flags_make_the_plan() {
        let (plan, notes) = plan_from_args(&args(&[
            "--rate",
            "50",
            "-d",
            "2s",
            "http://a/",
            "http://b/",
        ]))
        .expect("valid");
        assert_eq!(plan.model, Model::Open { rate: 50.0 });
        assert_eq!(plan.stop, Stop::After(Duration::from_secs(2)));
        assert_eq!(plan.urls.len(), 2);
        assert!(notes.is_empty());
        let (plan, _) = plan_from_args(&args(&["-c", "4", "-n", "40", "http://a/"])).expect("ok");
        assert_eq!(plan.model, Model::Closed { concurrency: 4 });
        assert_eq!(plan.stop, Stop::Count(40));
    }

    #[test]
    fn bad_flags_name_themselves() {
        let err = |argv: &[&str]| plan_from_args(&args(argv)).expect_err("invalid").0;
        assert!(err(&["--rate", "0", "http://a/"]).contains("--rate"));
        assert!(err(&["-c", "0", "http://a/"]).contains("--concurrency"));
        assert!(err(&["-n", "0", "http://a/"]).contains("--requests"));
        assert!(err(&["notaurl"]).contains("notaurl"));
        // clap rejects these before the plan: a bad duration, rate and concurrency together.
        let clap = |argv: &[&str]| {
            Cli::try_parse_from([&["loadgen", "run"], argv].concat())
                .expect_err("rejected")
                .to_string()
        };
        assert!(clap(&["-d", "5x", "http://a/"]).contains("--duration"));
        assert!(clap(&["--rate", "1", "-c", "2", "http://a/"]).contains("--concurrency"));
    }
}

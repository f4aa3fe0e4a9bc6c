//! `loopscope`: the local launcher (`make up`, `make down`, `make demo`). See `--help`.
// A command-line tool: a sleep here waits for a process and blocks no event loop.
#![allow(clippy::disallowed_methods)]

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

mod cli;
mod demo;
mod down;
mod plan;
mod signals;
mod stack;
mod state;
mod tools;

use cli::{Cli, Command, StackArgs, UpArgs};
use signals::Signals;
use stack::{Stack, StartFailed, err, say};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Up(args) => up(args),
        Command::Down(args) => down::down(&args),
        Command::Demo(args) => demo::demo(&args),
    };
    ExitCode::from(code)
}

fn up(args: UpArgs) -> u8 {
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            err(&format!("cannot handle SIGINT/SIGTERM: {e}"));
            return 1;
        }
    };
    let stack = match start_stack(&args.stack, &signals) {
        Ok(stack) => stack,
        Err(code) => return code,
    };
    say("");
    say("Try:");
    let gateway = &stack
        .plan
        .specs
        .iter()
        .find(|s| s.name == "gateway")
        .map(|s| s.shown.0.clone())
        .unwrap_or_default();
    say(&format!("  curl '{gateway}/api/compare?kind=io&ms=100'"));
    say(&format!(
        "  curl '{gateway}/api/fanout?n=10&ms=100&mode=limited&limit=5'"
    ));
    say("");
    if args.background {
        say("Running in the background; stop with: loopscope down (make down)");
        return 0;
    }
    let me = state::Recorded {
        name: "loopscope up".into(),
        pid: std::process::id(),
        stage: plan::Stage::Receiver,
        matches: "loopscope".into(),
    };
    if let Err(e) = stack.save(Some(me)) {
        err(&format!("cannot record the run for `loopscope down`: {e}"));
    }
    say("Ctrl-C stops everything.");
    stack.supervise(&signals)
}

/// The checks, then the start; on failure the exit code (everything started is stopped).
pub(crate) fn start_stack(args: &StackArgs, signals: &Signals) -> Result<Stack, u8> {
    let dir = plan::state_dir(args.state.state_dir.as_deref());
    let running = state::still_running(&dir);
    if !running.is_empty() {
        err(&format!(
            "loopscope is already running: {}",
            running.join(", ")
        ));
        err("stop it with `loopscope down` (make down)");
        return Err(1);
    }
    let plan = match plan::plan(args, say) {
        Ok(plan) => plan,
        Err(problems) => {
            for p in problems {
                err(&p);
            }
            return Err(1);
        }
    };
    let ready = Duration::from_secs(args.ready_timeout);
    let stop = Duration::from_secs(args.stop_timeout);
    match stack::start(plan, ready, stop, signals) {
        Ok(stack) => {
            stack.print_table();
            Ok(stack)
        }
        Err(StartFailed::Interrupted) => {
            say("stopped");
            Err(130)
        }
        Err(StartFailed::Failed) => Err(1),
    }
}

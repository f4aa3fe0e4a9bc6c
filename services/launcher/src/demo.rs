//! `loopscope demo`: the stack in the background, every experiment against it, the stack
//! stopped whatever happened.

use std::process::Command;
use std::time::Duration;

use launcher::process::{Signal, signal, wait_timeout};

use crate::cli::DemoArgs;
use crate::plan::{self, probe_host};
use crate::signals::Signals;
use crate::stack::{err, say};

pub(crate) fn demo(args: &DemoArgs) -> u8 {
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            err(&format!("cannot handle SIGINT/SIGTERM: {e}"));
            return 1;
        }
    };
    let mut stack = match crate::start_stack(&args.stack, &signals) {
        Ok(stack) => stack,
        Err(130) => return 130,
        Err(code) => {
            err("the stack did not start (see above); nothing was measured");
            return code;
        }
    };
    let loadgen = stack
        .plan
        .specs
        .iter()
        .find(|s| s.name == "backend")
        .and_then(|s| s.program.parent())
        .map(|dir| dir.join("loadgen"))
        .unwrap_or_default();
    let report = args
        .report_dir
        .clone()
        .unwrap_or_else(|| plan::repo_root().join("target/demo"));
    let host = probe_host(&args.stack.host);
    let url = |port: u16| format!("http://{host}:{port}");
    let p = &args.stack.ports;
    say("");
    let mut cmd = Command::new(&loadgen);
    cmd.arg("experiment")
        .arg(&args.experiments)
        .arg("--report")
        .arg(&report)
        .args(["--gateway-url", &url(p.gateway_port)])
        .args(["--worker-async-url", &url(p.worker_async_port)])
        .args(["--worker-threadpool-url", &url(p.worker_threadpool_port)])
        .args(["--worker-async-admin-url", &url(p.worker_async_admin_port)])
        .args([
            "--worker-threadpool-admin-url",
            &url(p.worker_threadpool_admin_port),
        ]);
    let status = match cmd.spawn() {
        Err(e) => {
            err(&format!(
                "cannot run {}: {e} (build it: make release)",
                loadgen.display()
            ));
            None
        }
        Ok(mut child) => loop {
            if let Some(sig) = signals.received() {
                // A terminal's Ctrl-C reached loadgen too (same process group); a SIGTERM
                // sent to the launcher alone is passed on.
                say(&format!("\n{sig}: stopping the experiments and the stack"));
                signal(child.id(), Signal::SIGTERM);
                if wait_timeout(&mut child, Duration::from_secs(5)).is_none() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                stack.stop(false);
                return 130;
            }
            if let Some(status) = wait_timeout(&mut child, Duration::from_millis(100)) {
                break Some(status);
            }
        },
    };
    say(&format!("raw numbers: {}/report.json", report.display()));
    stack.stop(false);
    match status {
        Some(s) if s.success() => 0,
        Some(s) => {
            err(&format!(
                "at least one experiment failed ({}): see its checks above",
                crate::stack::describe(s)
            ));
            1
        }
        None => 1,
    }
}

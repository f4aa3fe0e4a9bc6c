//! A started stack: spawn stage by stage with readiness between, supervise, stop in order.

use std::fs::File;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Child, ExitStatus, Stdio};
use std::time::Duration;

use launcher::process::{Running, scrubbed_command, stop_group, wait_timeout};
use launcher::ready::{NotReady, Patience, Target, wait_ready};

use crate::plan::{Plan, Spec, Stage};
use crate::signals::Signals;
use crate::state::{self, Recorded, State};

pub(crate) struct Stack {
    pub(crate) plan: Plan,
    started: Vec<(Spec, Child)>,
    stop_timeout: Duration,
}

/// Why `start` gave up; everything it had started is stopped again.
pub(crate) enum StartFailed {
    Interrupted,
    Failed,
}

/// A progress line on stdout. Write errors are ignored: a closed terminal or pipe must not
/// stop the launcher halfway through stopping its children.
pub(crate) fn say(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

pub(crate) fn err(line: &str) {
    let _ = writeln!(std::io::stderr(), "error: {line}");
}

/// A block of text (a log tail) on stderr, errors ignored as in [`say`].
pub(crate) fn show(text: &str) {
    if !text.is_empty() {
        let _ = writeln!(std::io::stderr(), "{text}");
    }
}

/// Starts `plan` stage by stage, each stage ready before the next starts.
pub(crate) fn start(
    plan: Plan,
    ready_timeout: Duration,
    stop_timeout: Duration,
    signals: &Signals,
) -> Result<Stack, StartFailed> {
    let mut stack = Stack {
        plan,
        started: Vec::new(),
        stop_timeout,
    };
    let logs = state::log_dir(&stack.plan.state_dir);
    if let Err(e) = std::fs::create_dir_all(&logs) {
        err(&format!("cannot create {}: {e}", logs.display()));
        return Err(StartFailed::Failed);
    }
    say(&format!("logs: {}/<name>.log", logs.display()));
    for stage in Stage::START {
        let specs: Vec<Spec> = stack
            .plan
            .specs
            .iter()
            .filter(|s| s.stage == stage)
            .cloned()
            .collect();
        if specs.is_empty() {
            continue;
        }
        let mut targets = Vec::new();
        for spec in specs {
            match stack.spawn(spec) {
                Ok(target) => targets.push(target),
                Err(e) => {
                    err(&e);
                    stack.stop(false);
                    return Err(StartFailed::Failed);
                }
            }
        }
        let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
        say(&format!(
            "waiting for {} (up to {}s)",
            names.join(", "),
            ready_timeout.as_secs()
        ));
        let patience = Patience {
            timeout: ready_timeout,
            report_every: Duration::from_secs(2),
        };
        let waited = wait_ready(&targets, patience, || signals.received().is_some(), say);
        if let Err(why) = waited {
            return Err(stack.abort_start(why, &targets, ready_timeout, signals));
        }
    }
    // A process of an earlier stage may have died while a later one started.
    let dead = stack
        .started
        .iter()
        .find(|(_, c)| !launcher::process::is_alive(c.id()))
        .map(|(s, _)| s.name.to_owned());
    if let Some(name) = dead {
        return Err(stack.abort_start(NotReady::Exited(name), &[], ready_timeout, signals));
    }
    Ok(stack)
}

impl Stack {
    fn spawn(&mut self, spec: Spec) -> Result<Target, String> {
        let dir = &self.plan.state_dir;
        let log_path = state::log_dir(dir).join(format!("{}.log", spec.name));
        let log = File::create(&log_path)
            .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
        let log2 = log
            .try_clone()
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        if spec.name == "prometheus" {
            crate::tools::prepare_prometheus(&self.plan.repo, dir, &self.plan.ports).map_err(
                |e| {
                    format!(
                        "cannot write Prometheus's files under {}: {e}",
                        dir.display()
                    )
                },
            )?;
        }
        if spec.name == "grafana" {
            crate::tools::prepare_grafana(dir).map_err(|e| format!("grafana's folders: {e}"))?;
        }
        let mut cmd = scrubbed_command(&spec.program);
        cmd.args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            // A process group of its own: a terminal's Ctrl-C reaches only the launcher,
            // which then stops everything in order.
            .process_group(0);
        let child = cmd.spawn().map_err(|e| {
            format!(
                "cannot start {} ({}): {e}",
                spec.name,
                spec.program.display()
            )
        })?;
        let target = Target {
            name: spec.name.to_owned(),
            pid: child.id(),
            url: spec.ready_url.clone(),
        };
        self.started.push((spec, child));
        self.save(None)
            .map_err(|e| format!("cannot write {}: {e}", state::file(dir).display()))?;
        Ok(target)
    }

    /// Records what runs, for `down`; `launcher` is the foreground launcher itself.
    pub(crate) fn save(&self, launcher: Option<Recorded>) -> std::io::Result<()> {
        let processes = self
            .started
            .iter()
            .map(|(spec, child)| Recorded {
                name: spec.name.to_owned(),
                pid: child.id(),
                stage: spec.stage,
                matches: matches(spec),
            })
            .collect();
        state::save(
            &self.plan.state_dir,
            &State {
                launcher,
                processes,
            },
        )
    }

    fn abort_start(
        &mut self,
        why: NotReady,
        targets: &[Target],
        timeout: Duration,
        signals: &Signals,
    ) -> StartFailed {
        let dir = self.plan.state_dir.clone();
        let outcome = match why {
            NotReady::Interrupted => {
                let sig = signals.received().unwrap_or("signal");
                say(&format!("\n{sig}: stopping loopscope"));
                StartFailed::Interrupted
            }
            NotReady::Exited(name) => {
                let status = self.reap(&name);
                err(&format!("{name} exited during startup ({status})"));
                show(&state::log_tail(&dir, &name, 20));
                StartFailed::Failed
            }
            NotReady::TimedOut(names) => {
                for name in names {
                    let url = targets
                        .iter()
                        .find(|t| t.name == name)
                        .map(|t| t.url.as_str());
                    err(&format!(
                        "{name} not ready after {}s ({}): see its log below; a slow machine: pass --ready-timeout (READY_TIMEOUT)",
                        timeout.as_secs(),
                        url.unwrap_or("?")
                    ));
                    show(&state::log_tail(&dir, &name, 20));
                }
                StartFailed::Failed
            }
        };
        self.stop(false);
        outcome
    }

    /// The exit status of `name`, reaped.
    fn reap(&mut self, name: &str) -> String {
        self.started
            .iter_mut()
            .find(|(s, _)| s.name == name)
            .and_then(|(_, c)| wait_timeout(c, Duration::from_secs(1)))
            .map_or_else(|| "status unknown".into(), describe)
    }

    /// Prints where everything answers.
    pub(crate) fn print_table(&self) {
        say("");
        say("loopscope is up");
        say("");
        say(&format!("  {:<19} {:<27} {}", "NAME", "APP", "METRICS"));
        for (spec, _) in &self.started {
            say(&format!(
                "  {:<19} {:<27} {}",
                spec.name, spec.shown.0, spec.shown.1
            ));
        }
    }

    /// Foreground: until a signal (stop all, exit 0) or a process dies (stop the others,
    /// exit 1).
    pub(crate) fn supervise(mut self, signals: &Signals) -> u8 {
        loop {
            if let Some(sig) = signals.received() {
                say(&format!("\n{sig}: stopping loopscope"));
                self.stop(true);
                say("stopped");
                return 0;
            }
            let died = self
                .started
                .iter_mut()
                .find_map(|(s, c)| c.try_wait().ok().flatten().map(|st| (s.name, st)));
            if let Some((name, status)) = died {
                err(&format!(
                    "{name} exited unexpectedly ({}); stopping the others",
                    describe(status)
                ));
                show(&state::log_tail(&self.plan.state_dir, name, 20));
                self.stop(false);
                return 1;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops everything started, entry side first, tools last; reaps; removes the state.
    /// `report`: say which exits broke the services' contract (drain, exit 0 on SIGTERM).
    pub(crate) fn stop(&mut self, report: bool) {
        let mut ranks: Vec<u8> = self
            .started
            .iter()
            .map(|(s, _)| s.stage.stop_rank())
            .collect();
        ranks.sort_unstable();
        ranks.dedup();
        for rank in ranks {
            let group: Vec<Running> = self
                .started
                .iter()
                .filter(|(s, _)| s.stage.stop_rank() == rank)
                .map(|(s, c)| Running {
                    name: s.name.to_owned(),
                    pid: c.id(),
                })
                .collect();
            let names: Vec<&str> = group.iter().map(|r| r.name.as_str()).collect();
            say(&format!("stopping {} (SIGTERM)", names.join(", ")));
            let stopped = stop_group(&group, self.stop_timeout);
            for name in stopped.killed {
                err(&format!(
                    "{name} still running after {}s: SIGKILL",
                    self.stop_timeout.as_secs()
                ));
            }
        }
        for (spec, child) in &mut self.started {
            let status = wait_timeout(child, Duration::from_secs(5));
            if report && !status.is_some_and(|s| s.success()) {
                err(&format!(
                    "{} exited with {} while stopping (log: {}/{}.log)",
                    spec.name,
                    status.map_or_else(|| "no status".into(), describe),
                    state::log_dir(&self.plan.state_dir).display(),
                    spec.name
                ));
            }
        }
        self.started.clear();
        state::remove(&self.plan.state_dir);
    }
}

/// What `down` looks for in a recorded pid's command line: the program's file name
/// (`grafana-server` runs on as `grafana server`).
fn matches(spec: &Spec) -> String {
    let name = spec
        .program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name == "grafana-server" {
        "grafana".into()
    } else {
        name
    }
}

pub(crate) fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("status {code}"),
        (None, Some(sig)) => format!("signal {sig}"),
        _ => "unknown status".into(),
    }
}

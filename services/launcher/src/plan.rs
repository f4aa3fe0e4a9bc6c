//! What `up` starts: every process with its command line, environment, readiness URL and
//! place in the start order, checked before anything starts (binaries, tools, ports).

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use crate::cli::{PortArgs, StackArgs, With};
use crate::tools;

/// Start stages, in order; each is ready before the next starts. Stopping goes the other way
/// for the services, and the tools stop last so the services' final reports still reach them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub(crate) enum Stage {
    /// Spotlight: the services' SENTRY_DSN points at it from their first line.
    Receiver,
    Backend,
    Workers,
    Gateway,
    /// Prometheus and Grafana: they watch the services.
    Watchers,
}

impl Stage {
    pub(crate) const START: [Stage; 5] = [
        Stage::Receiver,
        Stage::Backend,
        Stage::Workers,
        Stage::Gateway,
        Stage::Watchers,
    ];

    /// The order of `down` and Ctrl-C: entry side first, the tools last, together.
    pub(crate) fn stop_rank(self) -> u8 {
        match self {
            Stage::Gateway => 0,
            Stage::Workers => 1,
            Stage::Backend => 2,
            Stage::Watchers | Stage::Receiver => 3,
        }
    }
}

/// One process of the plan.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub(crate) name: &'static str,
    pub(crate) stage: Stage,
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) ready_url: String,
    /// The two URLs shown once it is up.
    pub(crate) shown: (String, String),
}

/// The checked plan: the processes in start order, where the run keeps its files, its ports.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) specs: Vec<Spec>,
    pub(crate) repo: PathBuf,
    pub(crate) state_dir: PathBuf,
    pub(crate) ports: PortArgs,
}

/// Every problem found, each with what to do about it.
pub(crate) type Problems = Vec<String>;

/// The repository this launcher was built from: deploy/, grafana/, tools/ and target/ live there.
pub(crate) fn repo_root() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    dir.canonicalize().unwrap_or(dir)
}

pub(crate) fn state_dir(arg: Option<&Path>) -> PathBuf {
    arg.map_or_else(|| repo_root().join("target/up"), absolute)
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}

/// Where to reach a service bound to `host`: a wildcard address is reached on loopback.
pub(crate) fn probe_host(host: &str) -> String {
    match host {
        "0.0.0.0" | "::" | "[::]" => "127.0.0.1".to_owned(),
        h if h.contains(':') && !h.starts_with('[') => format!("[{h}]"),
        h => h.to_owned(),
    }
}

/// Builds the plan and checks it; `say` gets the notes (a tool left out, and why).
pub(crate) fn plan(args: &StackArgs, mut say: impl FnMut(&str)) -> Result<Plan, Problems> {
    let mut problems = Problems::new();
    let repo = repo_root();
    let bin_dir = match &args.bin_dir {
        Some(dir) => absolute(dir),
        None => std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_owned))
            .unwrap_or_else(|| repo.join("target/debug")),
    };
    for bin in ["backend", "worker", "gateway"] {
        if !bin_dir.join(bin).is_file() {
            problems.push(format!(
                "{} not found: run `make build` (or `cargo build --workspace --bins`), or pass --bin-dir",
                bin_dir.join(bin).display()
            ));
        }
    }

    let p = &args.ports;
    let host = probe_host(&args.host);
    let url = |port: u16| format!("http://{host}:{port}");
    let local = |port: u16| format!("http://127.0.0.1:{port}");

    let spotlight_bin = repo.join("tools/spotlight/node_modules/.bin/spotlight");
    let user_dsn = std::env::var("SENTRY_DSN").is_ok_and(|d| !d.is_empty());
    let spotlight = match args.spotlight {
        With::No => None,
        With::Yes if !spotlight_bin.is_file() => {
            problems.push(
                "--spotlight yes, but Spotlight is not installed: run `make spotlight`".into(),
            );
            None
        }
        With::Yes => Some(spotlight_bin),
        With::Auto if user_dsn => {
            say("SENTRY_DSN is set: services report there, Spotlight not started");
            None
        }
        With::Auto if spotlight_bin.is_file() => Some(spotlight_bin),
        With::Auto => {
            say("Spotlight not installed (`make spotlight`): running without a local Sentry");
            None
        }
    };
    let prometheus = optional_tool(
        "prometheus",
        args.prometheus,
        "make prometheus",
        &mut problems,
        &mut say,
    );
    let grafana = match (args.grafana, &prometheus) {
        (With::No, _) => None,
        (With::Yes, None) => {
            problems.push("--grafana yes needs Prometheus (--prometheus)".into());
            None
        }
        (With::Auto, None) => None,
        (with, Some(_)) => optional_tool(
            "grafana-server",
            with,
            "install Grafana",
            &mut problems,
            &mut say,
        ),
    };
    if grafana.is_some() && !args.grafana_home.join("conf").is_dir() {
        problems.push(format!(
            "Grafana's install folder {} has no conf/: pass --grafana-home (GRAFANA_HOME)",
            args.grafana_home.display()
        ));
    }

    // The settings every service gets from the launcher's environment; per-process ones
    // (ports, handling, the URLs wiring them) come only from the plan's flags.
    let mut env = forwarded_settings();
    if spotlight.is_some() {
        env.retain(|(k, _)| k != "SENTRY_DSN");
        env.push((
            "SENTRY_DSN".into(),
            format!("http://public@127.0.0.1:{}/0", p.spotlight_port),
        ));
        if !env.iter().any(|(k, _)| k == "SENTRY_TRACES_SAMPLE_RATE") {
            env.push(("SENTRY_TRACES_SAMPLE_RATE".into(), "1.0".into()));
        }
    }
    for (key, default) in [
        ("SENTRY_ENVIRONMENT", "local"),
        ("LOOPSCOPE_LOG_FORMAT", "text"),
    ] {
        if !env.iter().any(|(k, _)| k == key) {
            env.push((key.into(), default.into()));
        }
    }

    let service =
        |name: &'static str, stage, bin: &str, app: u16, admin: u16, extra: Vec<String>| {
            let mut a = vec![
                "--host".to_owned(),
                args.host.clone(),
                "--port".to_owned(),
                app.to_string(),
                "--admin-port".to_owned(),
                admin.to_string(),
            ];
            a.extend(extra);
            Spec {
                name,
                stage,
                program: bin_dir.join(bin),
                args: a,
                env: env.clone(),
                ready_url: format!("{}/readyz", url(admin)),
                shown: (url(app), format!("{}/metrics", url(admin))),
            }
        };
    let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();

    let mut specs = Vec::new();
    if let Some(bin) = spotlight {
        specs.push(Spec {
            name: "spotlight",
            stage: Stage::Receiver,
            args: strings(&["server", "-p", &p.spotlight_port.to_string()]),
            program: bin,
            env: Vec::new(),
            ready_url: format!("{}/health", local(p.spotlight_port)),
            shown: (
                format!("http://localhost:{}", p.spotlight_port),
                "Spotlight UI: Sentry errors and traces".into(),
            ),
        });
    }
    specs.push(service(
        "backend",
        Stage::Backend,
        "backend",
        p.backend_port,
        p.backend_admin_port,
        Vec::new(),
    ));
    for (name, handling, app, admin) in [
        (
            "worker-async",
            "async",
            p.worker_async_port,
            p.worker_async_admin_port,
        ),
        (
            "worker-threadpool",
            "threadpool",
            p.worker_threadpool_port,
            p.worker_threadpool_admin_port,
        ),
    ] {
        let extra = strings(&[
            "--handling",
            handling,
            "--metrics-exposition",
            "both",
            "--backend-url",
            &url(p.backend_port),
        ]);
        specs.push(service(name, Stage::Workers, "worker", app, admin, extra));
    }
    let extra = strings(&[
        "--worker-async-url",
        &url(p.worker_async_port),
        "--worker-threadpool-url",
        &url(p.worker_threadpool_port),
    ]);
    specs.push(service(
        "gateway",
        Stage::Gateway,
        "gateway",
        p.gateway_port,
        p.gateway_admin_port,
        extra,
    ));

    let state_dir = state_dir(args.state.state_dir.as_deref());
    if let Some(bin) = prometheus {
        specs.push(tools::prometheus_spec(bin, &state_dir, p.prometheus_port));
    }
    if let Some(bin) = grafana {
        specs.push(tools::grafana_spec(
            bin,
            &repo,
            &state_dir,
            &args.grafana_home,
            p,
        ));
    }

    check_ports(args, &specs, &mut problems);
    if problems.is_empty() {
        Ok(Plan {
            specs,
            repo,
            state_dir,
            ports: args.ports.clone(),
        })
    } else {
        Err(problems)
    }
}

/// `prometheus` or `grafana-server` on PATH, as `with` asks.
fn optional_tool(
    name: &str,
    with: With,
    install: &str,
    problems: &mut Problems,
    say: &mut impl FnMut(&str),
) -> Option<PathBuf> {
    let found = tools::on_path(name);
    match (with, found) {
        (With::No, _) => None,
        (_, Some(bin)) => Some(bin),
        (With::Yes, None) => {
            problems.push(format!(
                "{name} was asked for but is not on PATH: `{install}`"
            ));
            None
        }
        (With::Auto, None) => {
            say(&format!(
                "{name} not on PATH (`{install}`): running without it"
            ));
            None
        }
    }
}

/// The launcher's own `LOOPSCOPE_*` / `SENTRY_*` variables that reach every service as they
/// are (log format, stall thresholds, a real SENTRY_DSN...). The ones that differ per process
/// are left out: the plan passes those as flags.
pub(crate) fn forwarded_settings() -> Vec<(String, String)> {
    const PER_PROCESS: [&str; 7] = [
        "LOOPSCOPE_HOST",
        "LOOPSCOPE_PORT",
        "LOOPSCOPE_ADMIN_PORT",
        "LOOPSCOPE_HANDLING",
        "LOOPSCOPE_BACKEND_URL",
        "LOOPSCOPE_WORKER_ASYNC_URL",
        "LOOPSCOPE_WORKER_THREADPOOL_URL",
    ];
    std::env::vars()
        .filter(|(k, _)| {
            launcher::process::SETTING_PREFIXES
                .iter()
                .any(|p| k.starts_with(p))
                && !PER_PROCESS.contains(&k.as_str())
        })
        .collect()
}

/// Every port a number once, and free on this machine.
fn check_ports(args: &StackArgs, specs: &[Spec], problems: &mut Problems) {
    let p = &args.ports;
    let mut wanted = vec![
        ("gateway", p.gateway_port),
        ("gateway admin", p.gateway_admin_port),
        ("worker-async", p.worker_async_port),
        ("worker-async admin", p.worker_async_admin_port),
        ("worker-threadpool", p.worker_threadpool_port),
        ("worker-threadpool admin", p.worker_threadpool_admin_port),
        ("backend", p.backend_port),
        ("backend admin", p.backend_admin_port),
    ];
    let runs = |name: &str| specs.iter().any(|s| s.name == name);
    for (name, port) in [
        ("prometheus", p.prometheus_port),
        ("spotlight", p.spotlight_port),
        ("grafana", p.grafana_port),
    ] {
        if runs(name) {
            wanted.push((name, port));
        }
    }
    let mut seen: Vec<(&str, u16)> = Vec::new();
    for (name, port) in wanted {
        if port == 0 {
            problems.push(format!(
                "{name}: port 0 is not allowed here (the others must know the port)"
            ));
        } else if let Some((other, _)) = seen.iter().find(|(_, q)| *q == port) {
            problems.push(format!("{name} and {other} both want port {port}"));
        } else if TcpListener::bind(("127.0.0.1", port)).is_err() {
            let hint = match name {
                "prometheus" => {
                    " (a system Prometheus? stop it, or pass --prometheus-port or --prometheus no)"
                }
                _ => " (another `loopscope up`? `loopscope down`; or pick other ports)",
            };
            problems.push(format!("port {port} ({name}) is already in use{hint}"));
        }
        seen.push((name, port));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_hosts_are_probed_on_loopback() {
        assert_eq!(probe_host("0.0.0.0"), "127.0.0.1");
        assert_eq!(probe_host("::"), "127.0.0.1");
        assert_eq!(probe_host("::1"), "[::1]");
        assert_eq!(probe_host("127.0.0.2"), "127.0.0.2");
    }

    #[test]
    fn services_stop_from_the_entry_side_and_tools_last() {
        let mut stages = Stage::START.to_vec();
        stages.sort_by_key(|s| s.stop_rank());
        assert_eq!(
            stages,
            [
                Stage::Gateway,
                Stage::Workers,
                Stage::Backend,
                Stage::Receiver,
                Stage::Watchers
            ]
        );
    }
}

//! `loopscope`'s command line. The environment variables keep the names the old `scripts/up.sh` read,
//! so `make up GATEWAY_PORT=18080` and the like still work.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Run the loopscope stack on this machine, without a cluster.
#[derive(Parser, Debug)]
#[command(name = "loopscope", version)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Start the stack: backend, both workers, gateway (and Spotlight, Prometheus, Grafana
    /// when installed)
    ///
    /// In that order, each ready (its admin /readyz) before the next. In the foreground Ctrl-C
    /// (or SIGTERM) stops everything in reverse order, exit 0; if a process dies, the others
    /// are stopped, exit 1. Logs: <state dir>/logs/<name>.log.
    Up(UpArgs),
    /// Stop what `up` started
    ///
    /// A `--background` stack, or a foreground `up` in another terminal (asked to stop, as
    /// with Ctrl-C). Gateway first, then the workers, the backend, the tools; SIGKILL after
    /// --stop-timeout. Exit 0, also when nothing was running.
    Down(DownArgs),
    /// Start the stack, run every experiment against it, write the report, stop the stack
    ///
    /// `loadgen experiment` prints each verdict; the HTML report and report.json go to
    /// --report-dir. Exit 1 if an experiment failed or the stack did not start, 130 on Ctrl-C;
    /// the stack is stopped either way.
    Demo(DemoArgs),
}

#[derive(Args, Debug)]
pub(crate) struct UpArgs {
    /// Start, wait until ready, print the URLs and return; stop later with `loopscope down`.
    #[arg(short, long)]
    pub(crate) background: bool,

    #[command(flatten)]
    pub(crate) stack: StackArgs,
}

#[derive(Args, Debug)]
pub(crate) struct DownArgs {
    #[command(flatten)]
    pub(crate) state: StateArgs,

    /// Seconds between SIGTERM and SIGKILL.
    #[arg(long, env = "STOP_TIMEOUT", default_value_t = 15)]
    pub(crate) stop_timeout: u64,
}

#[derive(Args, Debug)]
pub(crate) struct DemoArgs {
    /// Which experiment (a name of `loadgen experiment --help`), or `all`.
    #[arg(long, env = "EXPERIMENTS", default_value = "all")]
    pub(crate) experiments: String,

    /// Where the HTML report and report.json go. Default: <repository>/target/demo.
    #[arg(long, env = "DEMO_DIR")]
    pub(crate) report_dir: Option<PathBuf>,

    #[command(flatten)]
    pub(crate) stack: StackArgs,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct StateArgs {
    /// Where a run keeps its state: state.json (what runs, for `down`), logs/<name>.log and the
    /// local Prometheus's files. Default: <repository>/target/up.
    #[arg(long, env = "UP_DIR")]
    pub(crate) state_dir: Option<PathBuf>,
}

/// What `up` and `demo` start, and where.
#[derive(Args, Debug, Clone)]
pub(crate) struct StackArgs {
    /// Where backend, worker, gateway (and loadgen) are. Default: the folder of this binary.
    #[arg(long, env = "BIN_DIR")]
    pub(crate) bin_dir: Option<PathBuf>,

    /// Address the services bind. The launcher probes 127.0.0.1 when it is 0.0.0.0 or ::.
    #[arg(long, env = "LOOPSCOPE_HOST", default_value = "127.0.0.1")]
    pub(crate) host: String,

    #[command(flatten)]
    pub(crate) ports: PortArgs,

    /// Start Prometheus (scraping every admin port, with the alert rules): `auto` when
    /// `prometheus` is on PATH, `yes` (required), `no`.
    #[arg(long, env = "WITH_PROMETHEUS", value_enum, default_value_t = With::Auto)]
    pub(crate) prometheus: With,

    /// Start Spotlight, Sentry's local receiver, and point every service's SENTRY_DSN at it:
    /// `auto` when installed (`make spotlight`) and SENTRY_DSN is unset, `yes`, `no`.
    #[arg(long, env = "WITH_SPOTLIGHT", value_enum, default_value_t = With::Auto)]
    pub(crate) spotlight: With,

    /// Start Grafana with the dashboards of grafana/: `auto` when `grafana-server` is on PATH
    /// and Prometheus runs, `yes`, `no`.
    #[arg(long, env = "WITH_GRAFANA", value_enum, default_value_t = With::Auto)]
    pub(crate) grafana: With,

    /// Grafana's install folder (conf/, public/).
    #[arg(long, env = "GRAFANA_HOME", default_value = "/usr/share/grafana")]
    pub(crate) grafana_home: PathBuf,

    /// Seconds to wait for each start stage's readiness.
    #[arg(long, env = "READY_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) ready_timeout: u64,

    /// Seconds between SIGTERM and SIGKILL when stopping.
    #[arg(long, env = "STOP_TIMEOUT", default_value_t = 15)]
    pub(crate) stop_timeout: u64,

    #[command(flatten)]
    pub(crate) state: StateArgs,
}

/// Every port `up` uses. Defaults: the `ports` crate, the one place they are written.
#[derive(Args, Debug, Clone)]
pub(crate) struct PortArgs {
    #[arg(long, env = "GATEWAY_PORT", default_value_t = ports::GATEWAY.app)]
    pub(crate) gateway_port: u16,
    #[arg(long, env = "GATEWAY_ADMIN_PORT", default_value_t = ports::GATEWAY.admin)]
    pub(crate) gateway_admin_port: u16,
    #[arg(long, env = "WORKER_ASYNC_PORT", default_value_t = ports::WORKER_ASYNC.app)]
    pub(crate) worker_async_port: u16,
    #[arg(long, env = "WORKER_ASYNC_ADMIN_PORT", default_value_t = ports::WORKER_ASYNC.admin)]
    pub(crate) worker_async_admin_port: u16,
    #[arg(long, env = "WORKER_THREADPOOL_PORT", default_value_t = ports::WORKER_THREADPOOL.app)]
    pub(crate) worker_threadpool_port: u16,
    #[arg(long, env = "WORKER_THREADPOOL_ADMIN_PORT", default_value_t = ports::WORKER_THREADPOOL.admin)]
    pub(crate) worker_threadpool_admin_port: u16,
    #[arg(long, env = "BACKEND_PORT", default_value_t = ports::BACKEND.app)]
    pub(crate) backend_port: u16,
    #[arg(long, env = "BACKEND_ADMIN_PORT", default_value_t = ports::BACKEND.admin)]
    pub(crate) backend_admin_port: u16,
    #[arg(long, env = "PROMETHEUS_PORT", default_value_t = ports::PROMETHEUS)]
    pub(crate) prometheus_port: u16,
    #[arg(long, env = "SPOTLIGHT_PORT", default_value_t = ports::SPOTLIGHT)]
    pub(crate) spotlight_port: u16,
    #[arg(long, env = "GRAFANA_PORT", default_value_t = ports::GRAFANA)]
    pub(crate) grafana_port: u16,
}

/// Whether to start an optional tool.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum With {
    /// When it is installed.
    Auto,
    /// Always; not installed is an error.
    Yes,
    /// Never.
    No,
}

//! Every subcommand and flag. `loadgen <cmd> --help` prints them.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "loadgen", version, about = "Load, experiments and steady traffic for loopscope", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Send load to a URL and summarize the latency (open or closed model).
    Run(RunArgs),
    /// Keep steady, mixed traffic flowing and export client-side metrics (for the cluster).
    Serve(Box<ServeArgs>),
    /// Reproduce the seeds' experiments against a running stack and give a verdict.
    Experiment(ExperimentArgs),
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Target URL(s); several are used round-robin.
    #[arg(required = true)]
    pub urls: Vec<String>,

    /// Open model: requests per second, sent on schedule whatever the server does; latency
    /// is measured from the intended send time (no coordinated omission).
    #[arg(long, conflicts_with = "concurrency")]
    pub rate: Option<f64>,

    /// Closed model: this many requests in flight, each sent when the previous answered.
    #[arg(long, short = 'c')]
    pub concurrency: Option<usize>,

    /// How long to run, e.g. 10s, 500ms, 2m.
    #[arg(long, short = 'd', value_parser = parse_duration, conflicts_with = "requests")]
    pub duration: Option<std::time::Duration>,

    /// How many requests to send.
    #[arg(long, short = 'n')]
    pub requests: Option<u64>,

    /// Timeout of each request.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub timeout: std::time::Duration,

    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    pub json: bool,

    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Gateway base URL.
    #[arg(
        long,
        env = "LOOPSCOPE_GATEWAY_URL",
        default_value = ports::GATEWAY.app_url
    )]
    pub gateway_url: String,

    /// Requests per second, across the mix.
    #[arg(long, env = "LOOPSCOPE_RATE", default_value_t = 5.0)]
    pub rate: f64,

    /// The mix: comma-separated `weight:path` entries, paths relative to the gateway.
    #[arg(long, env = "LOOPSCOPE_MIX", default_value = DEFAULT_MIX)]
    pub mix: String,

    /// Timeout of each request.
    #[arg(long, env = "LOOPSCOPE_REQUEST_TIMEOUT", value_parser = parse_duration, default_value = "10s")]
    pub timeout: std::time::Duration,

    #[command(flatten)]
    pub server: common::ServerArgs,
}

pub const DEFAULT_MIX: &str = "4:/api/async/work/io?ms=50,4:/api/threadpool/work/io?ms=50,2:/api/async/work/call?ms=30,2:/api/threadpool/work/call?ms=30,1:/api/async/work/cpu?ms=5,1:/api/threadpool/work/cpu?ms=5,1:/api/compare?kind=io&ms=20";

#[derive(Args, Debug, Clone)]
pub struct ExperimentArgs {
    /// Which experiment, or `all`.
    #[arg(value_enum)]
    pub name: ExperimentName,

    /// The stack to run against.
    #[command(flatten)]
    pub stack: StackArgs,

    /// Write an HTML report (self-contained, SVG charts) and the raw JSON into this folder.
    #[arg(long)]
    pub report: Option<PathBuf>,

    /// Print the results as JSON instead of tables.
    #[arg(long)]
    pub json: bool,

    /// Shorter runs (the sweep above all), for tests and quick looks.
    #[arg(long)]
    pub quick: bool,
}

#[derive(Args, Debug, Clone)]
pub struct StackArgs {
    #[arg(
        long,
        env = "LOOPSCOPE_GATEWAY_URL",
        default_value = ports::GATEWAY.app_url
    )]
    pub gateway_url: String,
    #[arg(
        long,
        env = "LOOPSCOPE_WORKER_ASYNC_URL",
        default_value = ports::WORKER_ASYNC.app_url
    )]
    pub worker_async_url: String,
    #[arg(
        long,
        env = "LOOPSCOPE_WORKER_THREADPOOL_URL",
        default_value = ports::WORKER_THREADPOOL.app_url
    )]
    pub worker_threadpool_url: String,
    /// Admin (metrics) URL of the async worker.
    #[arg(
        long,
        env = "LOOPSCOPE_WORKER_ASYNC_ADMIN_URL",
        default_value = ports::WORKER_ASYNC.admin_url
    )]
    pub worker_async_admin_url: String,
    /// Admin (metrics) URL of the threadpool worker.
    #[arg(
        long,
        env = "LOOPSCOPE_WORKER_THREADPOOL_ADMIN_URL",
        default_value = ports::WORKER_THREADPOOL.admin_url
    )]
    pub worker_threadpool_admin_url: String,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExperimentName {
    /// 1. A blocking call in an async handler stalls its event loop (seed 002).
    Blocking,
    /// 2. Sequential vs concurrent waits (seed 003).
    Sequential,
    /// 3. A pool bounds concurrency: 10 calls, limit 5 vs 30 (seed 003).
    Pool,
    /// 4. /metrics on its own port vs mounted in the app, while the app is blocked (seed 000).
    Exposition,
    /// 5. CPU-bound work: io latency while cpu work runs, async vs threadpool (seed 004).
    Cpu,
    /// 6. Arrival rate stepped up until p99 breaks, per mode; threads and memory per step.
    Sweep,
    /// Every experiment, in order.
    All,
}

/// `10s`, `500ms`, `2m`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 10s, 500ms or 2m"))?;
    let secs = match unit {
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (use ms, s, m or h)")),
    };
    if !secs.is_finite() || secs <= 0.0 || secs > 7.0 * 86400.0 {
        return Err(format!("`{s}` must be more than 0 and at most a week"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

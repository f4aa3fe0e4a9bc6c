use clap::Parser;
use common::ServerArgs;

/// Public entry: compares the handling modes and fans calls out to the workers.
#[derive(Parser, Debug)]
#[command(name = "gateway", version, about, long_about = None)]
pub struct Cli {
    /// Base URL of the worker started with --handling async.
    #[arg(
        long,
        env = "LOOPSCOPE_WORKER_ASYNC_URL",
        default_value = ports::WORKER_ASYNC.app_url
    )]
    pub worker_async_url: String,

    /// Base URL of the worker started with --handling threadpool.
    #[arg(
        long,
        env = "LOOPSCOPE_WORKER_THREADPOOL_URL",
        default_value = ports::WORKER_THREADPOOL.app_url
    )]
    pub worker_threadpool_url: String,

    /// Timeout of each call to a worker; a worker that is down or hangs gives a 502 or 504
    /// within it.
    #[arg(long, env = "LOOPSCOPE_UPSTREAM_TIMEOUT_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub upstream_timeout_ms: u64,

    /// Largest `n` a fan-out may ask for.
    #[arg(long, env = "LOOPSCOPE_MAX_FANOUT", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_fanout: u32,

    /// Work one public request may order, in ms of `cpu` or `block` summed over its calls
    /// (n x ms for a fan-out, 2 x ms for compare): these kinds hold a worker's thread or event
    /// loop for the whole time. Past it, a 400 naming this flag.
    #[arg(long, env = "LOOPSCOPE_MAX_WORK_MS", default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub max_work_ms: u64,

    /// Public requests served at once; beyond it a 503 with `Retry-After: 1`.
    #[arg(long, env = "LOOPSCOPE_MAX_IN_FLIGHT", default_value_t = 1_024, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_in_flight: u32,

    /// Longest a fan-out runs, all its calls together (sequential included); past it the
    /// answer carries the calls that finished and marks the rest unfinished.
    #[arg(long, env = "LOOPSCOPE_FANOUT_DEADLINE_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub fanout_deadline_ms: u64,

    #[command(flatten)]
    pub server: ServerArgs,
}

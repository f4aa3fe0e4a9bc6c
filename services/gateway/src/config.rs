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
        default_value = "http://127.0.0.1:8081"
    )]
    pub worker_async_url: String,

    /// Base URL of the worker started with --handling threadpool.
    #[arg(
        long,
        env = "LOOPSCOPE_WORKER_THREADPOOL_URL",
        default_value = "http://127.0.0.1:8082"
    )]
    pub worker_threadpool_url: String,

    /// Timeout of each call to a worker; a worker that is down or hangs gives a 502 or 504
    /// within it.
    #[arg(long, env = "LOOPSCOPE_UPSTREAM_TIMEOUT_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub upstream_timeout_ms: u64,

    /// Largest `n` a fan-out may ask for.
    #[arg(long, env = "LOOPSCOPE_MAX_FANOUT", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_fanout: u32,

    #[command(flatten)]
    pub server: ServerArgs,
}

use clap::Parser;
use common::{ServerArgs, ServiceInfo};
use contract::Choice;
pub use contract::Handling;

/// Does io, cpu, downstream-call and blocking work, on the blocking pool or the event loop.
#[derive(Parser, Debug)]
#[command(name = "worker", version, about, long_about = None)]
pub struct Cli {
    /// How work runs: `async` awaits timers and an async client on the event loop;
    /// `threadpool` runs each job on the blocking pool with a blocking client (FastAPI's `def`).
    #[arg(long, env = "LOOPSCOPE_HANDLING", value_enum)]
    pub handling: Handling,

    /// Base URL of the backend that `call` work requests.
    #[arg(
        long,
        env = "LOOPSCOPE_BACKEND_URL",
        default_value = ports::BACKEND.app_url
    )]
    pub backend_url: String,

    /// Timeout of each call to the backend.
    #[arg(long, env = "LOOPSCOPE_UPSTREAM_TIMEOUT_MS", default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub upstream_timeout_ms: u64,

    /// Tests only: serve `/test/lock`, a handler that waits for a mutex on the event loop.
    #[arg(long, env = "LOOPSCOPE_ENABLE_TEST_ROUTES", hide = true)]
    pub enable_test_routes: bool,

    #[command(flatten)]
    pub server: ServerArgs,
}

impl Cli {
    /// The two modes get their own default ports so both run side by side on a laptop.
    pub fn service_info(&self) -> ServiceInfo {
        let defaults = match self.handling {
            Handling::Async => ports::WORKER_ASYNC,
            Handling::Threadpool => ports::WORKER_THREADPOOL,
        };
        ServiceInfo {
            name: "worker",
            handling: Some(self.handling.as_str()),
            default_port: defaults.app,
            default_admin_port: defaults.admin,
        }
    }
}

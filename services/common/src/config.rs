//! Flags every service shares. Each is also an environment variable, so the same binary is
//! configured by flags on a laptop and by env in a Helm chart. Bad values fail at start with
//! clap's message naming the flag.
use std::time::Duration;

use clap::{Args, ValueEnum};

#[derive(Args, Clone, Debug)]
pub struct ServerArgs {
    /// Address to bind the app and admin ports to (0.0.0.0 in a container).
    #[arg(long, env = "LOOPSCOPE_HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// App port (0 picks a free one). Default depends on the service.
    #[arg(long, env = "LOOPSCOPE_PORT")]
    pub port: Option<u16>,

    /// Admin port serving /metrics, /healthz and /readyz (0 picks a free one).
    #[arg(long, env = "LOOPSCOPE_ADMIN_PORT")]
    pub admin_port: Option<u16>,

    /// Where /metrics lives: `separate` admin port on its own thread (prometheus_client's
    /// start_http_server), `mounted` on the app port (make_asgi_app), or `both`, to compare
    /// the two on one process.
    #[arg(long, env = "LOOPSCOPE_METRICS_EXPOSITION", value_enum, default_value_t = MetricsExposition::Separate)]
    pub metrics_exposition: MetricsExposition,

    /// actix worker threads, each one event loop. Default: the number of CPUs.
    #[arg(long, env = "LOOPSCOPE_WORKERS", value_parser = clap::value_parser!(u16).range(1..=512))]
    pub workers: Option<u16>,

    /// Blocking-pool threads per actix worker (the threadpool mode's pool; anyio's default is 40).
    #[arg(long, env = "LOOPSCOPE_BLOCKING_THREADS", default_value_t = 40, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub blocking_threads: u16,

    /// Jobs that may wait for a blocking-pool thread, per actix worker; past it a 503 with
    /// `Retry-After`. The default drains in a few job lengths with the default 40 threads.
    #[arg(long, env = "LOOPSCOPE_BLOCKING_QUEUE", default_value_t = 256, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub blocking_queue: u32,

    /// A single poll of a handler longer than this is a blocked event loop.
    #[arg(long, env = "LOOPSCOPE_STALL_THRESHOLD_MS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub stall_threshold_ms: u64,

    /// A poll still running after this long has its thread's stack taken while it blocks
    /// (`/debug/stalls`, the Sentry event, the log line). 0 switches capture off: stalls
    /// over the blocked threshold are then counted and reported without a stack.
    #[arg(long, env = "LOOPSCOPE_STALL_CAPTURE_MS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=600_000))]
    pub stall_capture_ms: u64,

    /// How often the lag probe on each worker wakes up.
    #[arg(long, env = "LOOPSCOPE_LAG_PROBE_INTERVAL_MS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub lag_probe_interval_ms: u64,

    /// Longest `ms` any request may ask for; larger values get a 400.
    #[arg(long, env = "LOOPSCOPE_MAX_MS", default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub max_ms: u64,

    /// How long a client has to send a request's head after connecting (slowloris guard).
    /// actix dates this deadline from a clock that the event loop itself updates: a request
    /// that queued behind a stall longer than this gets a 408 (counted and logged, endpoint
    /// UNMATCHED). actix's 5 s default did that to every request behind a 6 s block; 30 s
    /// covers the stalls this lab makes through the gateway and stays under nginx's 60 s.
    /// 0 disables it.
    #[arg(long, env = "LOOPSCOPE_CLIENT_REQUEST_TIMEOUT_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(0..=600_000))]
    pub client_request_timeout_ms: u64,

    /// Most connections the app port holds open at once (split evenly over the workers); past
    /// it, new connections wait in the listen backlog until one closes. Each open connection
    /// costs 10 to 12 KB of buffers, so the default bounds a flood to ~50 MB.
    #[arg(long, env = "LOOPSCOPE_MAX_CONNECTIONS", default_value_t = 4_096, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// On SIGTERM, how long in-flight requests get to finish; those still running then are
    /// answered 503 (shortly before the grace ends), and the process exits.
    #[arg(long, env = "LOOPSCOPE_SHUTDOWN_GRACE_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_grace_secs: u64,

    /// On SIGTERM, how long to keep accepting while not ready, before the drain: time for a
    /// load balancer (Kubernetes endpoints) to stop sending. 0 locally; a few seconds in a cluster.
    #[arg(long, env = "LOOPSCOPE_SHUTDOWN_DELAY_SECS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=300))]
    pub shutdown_delay_secs: u64,

    /// Largest answer body accepted from another service (gateway → worker → backend); a
    /// larger one fails the call as `bad_body` instead of filling memory.
    #[arg(long, env = "LOOPSCOPE_UPSTREAM_MAX_BODY_BYTES", default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(1..=(1 << 30)))]
    pub upstream_max_body_bytes: u64,

    /// `json` (one object per line, for machines) or `text` (for people). Filter with RUST_LOG.
    #[arg(long, env = "LOOPSCOPE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,

    /// Benchmarks only: instrumentation layers to switch off, comma-separated, to measure
    /// what each costs (`make bench`). Never set in production.
    #[arg(
        long,
        env = "LOOPSCOPE_DISABLE_LAYERS",
        value_enum,
        value_delimiter = ','
    )]
    pub disable_layers: Vec<Layer>,

    #[command(flatten)]
    pub sentry: SentryArgs,
}

/// An instrumentation layer of the request path that `--disable-layers` can switch off.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// The Sentry middleware: sampling, trace propagation, error events (see sentry/).
    Sentry,
    /// The access-log event of each request.
    AccessLog,
    /// The HTTP metrics middleware: the request counter and the duration histogram.
    HttpMetrics,
    /// The OpenTelemetry in-flight gauge.
    InFlight,
    /// The stall detector (every handler poll timed) and the lag probe on each worker.
    Stall,
}

#[derive(Args, Clone, Debug)]
pub struct SentryArgs {
    /// Sentry DSN. Unset or empty: Sentry is off.
    #[arg(long, env = "SENTRY_DSN", value_parser = check_dsn)]
    pub sentry_dsn: Option<String>,

    /// Sentry environment.
    #[arg(long, env = "SENTRY_ENVIRONMENT", default_value = "local")]
    pub sentry_environment: String,

    /// Share of requests traced as Sentry transactions (0 to 1).
    #[arg(long, env = "SENTRY_TRACES_SAMPLE_RATE", default_value_t = 0.1, value_parser = parse_ratio)]
    pub sentry_traces_sample_rate: f32,

    /// Sentry release. Default: `loopscope@<version>+<git revision>`, stamped at build time.
    #[arg(long, env = "SENTRY_RELEASE")]
    pub sentry_release: Option<String>,

    /// Timeout of each request to Sentry, and of the flush at shutdown.
    #[arg(long, env = "SENTRY_TIMEOUT_MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub sentry_timeout_ms: u64,

    /// At most one blocked-event-loop report per route in this many seconds.
    #[arg(
        long,
        env = "LOOPSCOPE_STALL_REPORT_INTERVAL_SECS",
        default_value_t = 60
    )]
    pub stall_report_interval_secs: u64,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricsExposition {
    Separate,
    Mounted,
    Both,
}

impl MetricsExposition {
    pub fn admin_port(self) -> bool {
        self != Self::Mounted
    }

    pub fn mounted(self) -> bool {
        self != Self::Separate
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

impl ServerArgs {
    pub fn workers(&self) -> usize {
        self.workers.map(usize::from).unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
        })
    }

    /// Whether `layer` is on: every layer is, unless `--disable-layers` names it.
    pub fn layer_on(&self, layer: Layer) -> bool {
        !self.disable_layers.contains(&layer)
    }

    /// Every layer by its flag name, and whether `--disable-layers` switched it off.
    pub fn layer_states(&self) -> Vec<(String, bool)> {
        Layer::value_variants()
            .iter()
            .filter_map(|l| {
                Some((
                    l.to_possible_value()?.get_name().to_owned(),
                    !self.layer_on(*l),
                ))
            })
            .collect()
    }

    pub fn stall_threshold(&self) -> Duration {
        Duration::from_millis(self.stall_threshold_ms)
    }

    /// `None` when stall capture is off (`--stall-capture-ms 0`).
    pub fn stall_capture(&self) -> Option<Duration> {
        (self.stall_capture_ms > 0).then(|| Duration::from_millis(self.stall_capture_ms))
    }

    pub fn client_request_timeout(&self) -> Duration {
        Duration::from_millis(self.client_request_timeout_ms)
    }

    /// `--max-connections` per worker (actix counts per worker), rounded up.
    pub fn max_connections_per_worker(&self) -> usize {
        (self.max_connections as usize).div_ceil(self.workers().max(1))
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

/// An empty value (a chart's `SENTRY_DSN: ""`) means off, like an unset one.
fn check_dsn(value: &str) -> Result<String, String> {
    if !value.is_empty() {
        value
            .parse::<sentry::types::Dsn>()
            .map_err(|e| format!("{e}; expected e.g. https://KEY@o0.ingest.sentry.io/0"))?;
    }
    Ok(value.to_owned())
}

impl SentryArgs {
    pub fn dsn(&self) -> Option<sentry::types::Dsn> {
        self.sentry_dsn
            .as_deref()
            .filter(|d| !d.is_empty())?
            .parse()
            .ok()
    }
}

fn parse_ratio(value: &str) -> Result<f32, String> {
    match value.parse::<f32>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("`{value}` is not a number between 0 and 1")),
    }
}

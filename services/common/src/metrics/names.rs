//! The metric catalogue: a contract with the dashboards, the alert rules and the tests.
//!
//! OpenTelemetry instruments are named without unit or `_total` suffixes: the Prometheus
//! exporter appends them (`loopscope.work.duration` with unit `s` becomes
//! `loopscope_work_duration_seconds`). The exported names are in the README's catalogue.

/// Prefix of every exported name.
pub const NAMESPACE: &str = "loopscope";

/// The HTTP metrics (metrics/http.rs), exported names as they are: no OpenTelemetry suffixing.
pub const HTTP_REQUESTS: &str = "loopscope_http_requests_total";
pub const HTTP_REQUESTS_DURATION: &str = "loopscope_http_requests_duration_seconds";
pub const LOG_LINES_DROPPED: &str = "loopscope.log.lines_dropped";
pub const DISABLED_LAYERS: &str = "loopscope.instrumentation.layer_disabled";
pub const BLOCKING_SHED: &str = "loopscope.blocking.shed";

pub const HTTP_IN_FLIGHT: &str = "loopscope.http.requests.in_flight";
pub const WORK_DURATION: &str = "loopscope.work.duration";
pub const BLOCKING_QUEUE_WAIT: &str = "loopscope.blocking.queue_wait";
pub const BLOCKING_IN_FLIGHT: &str = "loopscope.blocking.tasks.in_flight";
pub const BLOCKING_THREADS_MAX: &str = "loopscope.blocking.threads.max";
pub const SERVER_WORKERS: &str = "loopscope.server.workers";
pub const EVENT_LOOP_LAG: &str = "loopscope.event_loop.lag";
pub const EVENT_LOOP_BLOCKED_POLLS: &str = "loopscope.event_loop.blocked_polls";
pub const EVENT_LOOP_BLOCKED: &str = "loopscope.event_loop.blocked";
pub const EVENT_LOOP_LAG_MAX: &str = "loopscope.event_loop.lag_max";
pub const EVENT_LOOP_POLL_RUNNING: &str = "loopscope.event_loop.poll_running";
pub const EVENT_LOOP_STALLS: &str = "loopscope.event_loop.stalls";
pub const STALL_CAPTURES: &str = "loopscope.stall.captures";
pub const EVENT_LOOP_DELAYED_REQUESTS: &str = "loopscope.event_loop.delayed_requests";
pub const EVENT_LOOP_DELAYED: &str = "loopscope.event_loop.delayed";
pub const WORKER_BUSY: &str = "loopscope.worker.busy";
pub const UPSTREAM_REQUESTS: &str = "loopscope.upstream.requests";
pub const UPSTREAM_DURATION: &str = "loopscope.upstream.duration";
pub const BUILD_INFO: &str = "loopscope.build_info";

/// Seconds. From 0.5 ms, where an async no-op lands, to 30 s, past any timeout we set;
/// the usual defaults start at 5 ms and would hide everything fast in one bucket.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Label keys shared by several instruments.
pub const LABEL_KIND: &str = "kind";
pub const LABEL_ENDPOINT: &str = "endpoint";
pub const LABEL_WORKER: &str = "worker";
pub const LABEL_UPSTREAM: &str = "upstream";
pub const LABEL_OUTCOME: &str = "outcome";
pub const LABEL_CLASSIFICATION: &str = "classification";
/// The route whose long poll delayed other requests on its event loop.
pub const LABEL_CULPRIT: &str = "culprit";

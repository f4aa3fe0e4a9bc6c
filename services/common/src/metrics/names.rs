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

/// Seconds: the Renard R20 series (ISO 3 preferred numbers, 20 a decade, each edge at most
/// 14.3% above the one before) from 0.5 ms to 1 s, then 2.5, 5, 10 and 30 s for timeouts.
///
/// `histogram_quantile` interpolates inside the bucket the quantile falls in, so its error
/// is at most that bucket's width: here under 15% of the value anywhere from 0.5 ms to 1 s,
/// where every route of the default `loadgen serve` mix answers (the live test in
/// tests/tests/latency_truth.rs holds p50/p95/p99 to loadgen's HDR numbers). The old ladder
/// (0.5, 1, 2.5, 5, 10, 25, 50, 100 ms, ...) read a 53 ms p50 as 71 ms. It is a superset of
/// that ladder, so a query on `le="0.1"` still works. Cost: 71 buckets instead of 15, 73 series
/// per histogram instead of 17 (the README's metric catalogue has the numbers).
#[rustfmt::skip]
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.00056, 0.00063, 0.00071, 0.0008, 0.0009,
    0.001, 0.00112, 0.00125, 0.0014, 0.0016, 0.0018, 0.002, 0.00224, 0.0025, 0.0028,
    0.00315, 0.00355, 0.004, 0.0045, 0.005, 0.0056, 0.0063, 0.0071, 0.008, 0.009,
    0.01, 0.0112, 0.0125, 0.014, 0.016, 0.018, 0.02, 0.0224, 0.025, 0.028,
    0.0315, 0.0355, 0.04, 0.045, 0.05, 0.056, 0.063, 0.071, 0.08, 0.09,
    0.1, 0.112, 0.125, 0.14, 0.16, 0.18, 0.2, 0.224, 0.25, 0.28,
    0.315, 0.355, 0.4, 0.45, 0.5, 0.56, 0.63, 0.71, 0.8, 0.9,
    1.0, 2.5, 5.0, 10.0, 30.0,
];

// The promise above, checked by the compiler: ascending edges, none under 1 s more than 15%
// above the one before.
const _: () = {
    let mut i = 1;
    while i < LATENCY_BUCKETS.len() {
        let (lo, hi) = (LATENCY_BUCKETS[i - 1], LATENCY_BUCKETS[i]);
        assert!(lo < hi, "LATENCY_BUCKETS must ascend");
        assert!(
            hi > 1.0 || hi <= lo * 1.15,
            "a bucket under 1 s is wider than 15%"
        );
        i += 1;
    }
};

/// Label keys shared by several instruments.
pub const LABEL_KIND: &str = "kind";
pub const LABEL_ENDPOINT: &str = "endpoint";
pub const LABEL_WORKER: &str = "worker";
pub const LABEL_UPSTREAM: &str = "upstream";
pub const LABEL_OUTCOME: &str = "outcome";
pub const LABEL_CLASSIFICATION: &str = "classification";
/// The route whose long poll delayed other requests on its event loop.
pub const LABEL_CULPRIT: &str = "culprit";

//! The custom instruments, created once from the OpenTelemetry meter and cloned into handlers.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter, MeterProvider, UpDownCounter};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use tokio::runtime::Handle;

use super::Registry;
use super::family::{Counter as CountSeries, FloatCounter};
use super::keyed::{KeyedCounter, Spec};
use super::names::*;
use super::per_request::{StaticLabelHistogram, UnlabelledGauge};

/// The stall counters: our own families (metrics/keyed.rs), fed like the instruments.
const BLOCKED_POLLS: Spec = Spec {
    name: EVENT_LOOP_BLOCKED_POLLS,
    unit: "",
    help: "Single polls of a handler longer than the stall threshold",
    labels: &[LABEL_ENDPOINT, LABEL_WORKER],
};
const BLOCKED_SECONDS: Spec = Spec {
    name: EVENT_LOOP_BLOCKED,
    unit: "s",
    help: "Time spent inside polls longer than the stall threshold",
    labels: &[LABEL_ENDPOINT, LABEL_WORKER],
};
const STALLS: Spec = Spec {
    name: EVENT_LOOP_STALLS,
    unit: "",
    help: "Polls longer than the capture threshold, by why the thread was stuck (/proc)",
    labels: &[LABEL_CLASSIFICATION, LABEL_ENDPOINT, LABEL_WORKER],
};
const CAPTURES: Spec = Spec {
    name: STALL_CAPTURES,
    unit: "",
    help: "Attempts to take the stack of a blocked event loop, by outcome",
    labels: &[LABEL_ENDPOINT, LABEL_OUTCOME],
};
const DELAYED_REQUESTS: Spec = Spec {
    name: EVENT_LOOP_DELAYED_REQUESTS,
    unit: "",
    help: "Requests in flight on an event loop while another request's poll blocked it",
    labels: &[LABEL_CULPRIT],
};
const DELAYED_SECONDS: Spec = Spec {
    name: EVENT_LOOP_DELAYED,
    unit: "s",
    help: "Time requests were in flight behind another request's blocking poll",
    labels: &[LABEL_CULPRIT],
};
pub(super) const IN_FLIGHT_HELP: &str = "HTTP requests being served now";
pub(super) const WORK_DURATION_HELP: &str =
    "Time spent doing the requested work, by kind, excluding queueing";
/// Every keyed counter's spec, for the test that holds them to the exporter's output.
#[cfg(test)]
pub(super) const KEYED: &[&Spec] = &[
    &BLOCKED_POLLS,
    &BLOCKED_SECONDS,
    &STALLS,
    &CAPTURES,
    &DELAYED_REQUESTS,
    &DELAYED_SECONDS,
];

#[derive(Clone)]
pub struct Instruments {
    /// Fed on every request: our own families (metrics/per_request.rs).
    pub http_in_flight: UnlabelledGauge,
    pub work_duration: StaticLabelHistogram,
    pub blocking_queue_wait: Histogram<f64>,
    pub blocking_in_flight: UpDownCounter<i64>,
    pub blocking_shed: Counter<u64>,
    pub blocking_threads_max: Gauge<u64>,
    pub server_workers: Gauge<u64>,
    pub event_loop_lag: Histogram<f64>,
    pub blocked_polls: KeyedCounter<CountSeries>,
    pub blocked_seconds: KeyedCounter<FloatCounter>,
    pub stalls: KeyedCounter<CountSeries>,
    pub stall_captures: KeyedCounter<CountSeries>,
    pub delayed_requests: KeyedCounter<CountSeries>,
    pub delayed_seconds: KeyedCounter<FloatCounter>,
    pub upstream_requests: Counter<u64>,
    pub upstream_duration: Histogram<f64>,
    build_info: Gauge<u64>,
    layer_disabled: Gauge<u64>,
    /// Runtimes of the actix workers, read by the busy-time callback at scrape time.
    worker_runtimes: Arc<Mutex<Vec<(String, Handle)>>>,
}

fn seconds_histogram(meter: &Meter, name: &'static str, help: &'static str) -> Histogram<f64> {
    meter
        .f64_histogram(name)
        .with_unit("s")
        .with_description(help)
        // The SDK's default boundaries (0..10000) assume milliseconds.
        .with_boundaries(LATENCY_BUCKETS.to_vec())
        .build()
}

impl Instruments {
    pub(super) fn new(
        provider: &SdkMeterProvider,
        registry: &Registry,
    ) -> Result<Self, prometheus::Error> {
        let meter = provider.meter("loopscope");
        let worker_runtimes: Arc<Mutex<Vec<(String, Handle)>>> = Arc::default();
        let runtimes = worker_runtimes.clone();
        meter
            .f64_observable_counter(WORKER_BUSY)
            .with_unit("s")
            .with_description(
                "Time each actix worker's runtime spent running tasks (tokio busy duration)",
            )
            .with_callback(move |observer| {
                let runtimes = runtimes.lock().unwrap_or_else(|p| p.into_inner());
                for (worker, handle) in runtimes.iter() {
                    let busy = handle.metrics().worker_total_busy_duration(0);
                    observer.observe(
                        busy.as_secs_f64(),
                        &[KeyValue::new(LABEL_WORKER, worker.clone())],
                    );
                }
            })
            .build();
        meter
            .u64_observable_counter(LOG_LINES_DROPPED)
            .with_description(
                "Log lines dropped because stdout did not keep up (the log queue was full)",
            )
            .with_callback(|observer| observer.observe(crate::logging::dropped_lines(), &[]))
            .build();

        // Read at scrape time: a block shows while it is still happening.
        meter
            .f64_observable_gauge(EVENT_LOOP_POLL_RUNNING)
            .with_unit("s")
            .with_description(
                "Age of the handler poll running now on each worker (0 when idle): a stuck event loop",
            )
            .with_callback(|observer| {
                for (worker, _, running) in crate::stall::gauge_readings() {
                    observer.observe(
                        running.as_secs_f64(),
                        &[KeyValue::new(LABEL_WORKER, worker)],
                    );
                }
            })
            .build();
        meter
            .f64_observable_gauge(EVENT_LOOP_LAG_MAX)
            .with_unit("s")
            .with_description(
                "Largest event-loop lag the probe saw on each worker in the last 30 s",
            )
            .with_callback(|observer| {
                for (worker, lag_max, _) in crate::stall::gauge_readings() {
                    observer.observe(
                        lag_max.as_secs_f64(),
                        &[KeyValue::new(LABEL_WORKER, worker)],
                    );
                }
            })
            .build();

        Ok(Self {
            http_in_flight: UnlabelledGauge::new(registry, HTTP_IN_FLIGHT, IN_FLIGHT_HELP)?,
            work_duration: StaticLabelHistogram::new(
                registry,
                WORK_DURATION,
                WORK_DURATION_HELP,
                &[LABEL_KIND],
                LATENCY_BUCKETS,
            )?,
            blocking_queue_wait: seconds_histogram(
                &meter,
                BLOCKING_QUEUE_WAIT,
                "Time a job waited for a blocking-pool thread",
            ),
            blocking_in_flight: meter
                .i64_up_down_counter(BLOCKING_IN_FLIGHT)
                .with_description(
                    "Jobs submitted to the blocking pool and not finished (queued or running)",
                )
                .build(),
            blocking_shed: meter
                .u64_counter(BLOCKING_SHED)
                .with_description(
                    "Blocking-pool jobs not run: queue_full (answered 503) or abandoned (the request was gone before a thread was free)",
                )
                .build(),
            blocking_threads_max: meter
                .u64_gauge(BLOCKING_THREADS_MAX)
                .with_description(
                    "Blocking-pool threads the process may run (per-worker limit x workers)",
                )
                .build(),
            server_workers: meter
                .u64_gauge(SERVER_WORKERS)
                .with_description("actix worker threads, each its own event loop")
                .build(),
            event_loop_lag: seconds_histogram(
                &meter,
                EVENT_LOOP_LAG,
                "How late a timer on each worker woke up: time the event loop could not run",
            ),
            blocked_polls: KeyedCounter::new(registry, &BLOCKED_POLLS)?,
            blocked_seconds: KeyedCounter::new(registry, &BLOCKED_SECONDS)?,
            stalls: KeyedCounter::new(registry, &STALLS)?,
            stall_captures: KeyedCounter::new(registry, &CAPTURES)?,
            delayed_requests: KeyedCounter::new(registry, &DELAYED_REQUESTS)?,
            delayed_seconds: KeyedCounter::new(registry, &DELAYED_SECONDS)?,
            upstream_requests: meter
                .u64_counter(UPSTREAM_REQUESTS)
                .with_description("Calls to other services, by outcome")
                .build(),
            upstream_duration: seconds_histogram(
                &meter,
                UPSTREAM_DURATION,
                "Duration of calls to other services",
            ),
            build_info: meter
                .u64_gauge(BUILD_INFO)
                .with_description("Always 1; labels carry the version and git revision")
                .build(),
            layer_disabled: meter
                .u64_gauge(DISABLED_LAYERS)
                .with_description(
                    "1 for an instrumentation layer switched off by --disable-layers, else 0",
                )
                .build(),
            worker_runtimes,
        })
    }

    pub(super) fn build_info(&self) {
        // Shedding is present at 0 from the start, so a rate() over it never lacks a series.
        for reason in [
            crate::blocking::SHED_QUEUE_FULL,
            crate::blocking::SHED_ABANDONED,
        ] {
            self.blocking_shed
                .add(0, &[KeyValue::new("reason", reason)]);
        }
        self.build_info.record(
            1,
            &[
                KeyValue::new("version", crate::VERSION),
                KeyValue::new("revision", crate::REVISION),
            ],
        );
    }

    /// Whether each `--disable-layers` layer is off, so a dashboard can tell a quiet
    /// service from an uninstrumented one.
    pub(crate) fn layers(&self, layers: impl IntoIterator<Item = (String, bool)>) {
        for (layer, disabled) in layers {
            self.layer_disabled
                .record(u64::from(disabled), &[KeyValue::new("layer", layer)]);
        }
    }

    /// Called on each actix worker thread: its runtime's busy time becomes a series.
    pub(crate) fn register_worker_runtime(&self, worker: String) {
        if let Ok(handle) = Handle::try_current() {
            let mut runtimes = self
                .worker_runtimes
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            runtimes.push((worker, handle));
        }
    }

    pub fn record_work(&self, kind: &'static str, took: Duration) {
        self.work_duration.record(took.as_secs_f64(), kind);
    }
}

//! Catching the bug every async codebase ships: a blocking call on the event loop.
//!
//! actix runs one single-threaded runtime per worker, so a handler that blocks inside a poll
//! freezes every other connection of that worker. Two detectors, as asyncio's
//! `slow_callback_duration` and Node's event-loop-lag gauge do it, but always on:
//! - [`PollTimed`] times every poll of a handler future; one poll longer than the threshold
//!   is a blocked event loop, counted per route and reported to Sentry (rate-limited);
//! - [`spawn_lag_probe`] runs a timer on each worker and records how late it wakes.
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;

use crate::metrics::Instruments;
use crate::metrics::names::{LABEL_ENDPOINT, LABEL_WORKER};
use crate::reporting::StallReporter;

/// What the poll timer needs, shared by all requests of a process.
pub struct StallDetector {
    pub threshold: Duration,
    instruments: Instruments,
    reporter: StallReporter,
}

impl StallDetector {
    pub fn new(threshold: Duration, instruments: Instruments, reporter: StallReporter) -> Self {
        Self {
            threshold,
            instruments,
            reporter,
        }
    }

    /// Records one poll; cheap when it was short, which is nearly always.
    pub fn observe(&self, endpoint: &str, took: Duration) {
        if took < self.threshold {
            return;
        }
        let labels = [KeyValue::new(LABEL_ENDPOINT, endpoint.to_owned())];
        self.instruments.blocked_polls.add(1, &labels);
        self.instruments
            .blocked_seconds
            .add(took.as_secs_f64(), &labels);
        tracing::warn!(
            endpoint,
            blocked_ms = took.as_secs_f64() * 1e3,
            threshold_ms = self.threshold.as_millis() as u64,
            "event loop blocked: one poll of a handler ran longer than the threshold"
        );
        self.reporter.report(endpoint, took, self.threshold);
    }
}

pin_project_lite::pin_project! {
    /// Wraps a handler future and times each of its polls.
    pub struct PollTimed<F> {
        #[pin]
        inner: F,
        endpoint: String,
        detector: Arc<StallDetector>,
    }
}

impl<F> PollTimed<F> {
    pub fn new(inner: F, endpoint: String, detector: Arc<StallDetector>) -> Self {
        Self {
            inner,
            endpoint,
            detector,
        }
    }
}

impl<F: Future> Future for PollTimed<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let started = Instant::now();
        let out = this.inner.poll(cx);
        this.detector.observe(this.endpoint, started.elapsed());
        out
    }
}

static NEXT_WORKER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

thread_local! {
    /// This thread's actix worker number, given when the app factory first runs on it.
    static WORKER: std::cell::OnceCell<String> = const { std::cell::OnceCell::new() };
}

/// The `worker` label of the current actix worker, "0" to "N-1"; the thread name elsewhere.
/// (actix names its threads after arbiters, whose numbers start after the System's.)
pub fn current_worker_label() -> String {
    WORKER.with(|w| w.get().cloned()).unwrap_or_else(|| {
        std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_owned()
    })
}

/// Numbers this actix worker and registers its runtime's busy time, once per worker thread;
/// returns its label the first time, `None` after. Call it from the app factory, which actix
/// runs on each worker thread inside that worker's runtime.
pub fn register_worker(instruments: &Instruments) -> Option<String> {
    let first = WORKER.with(|w| {
        let mut first = false;
        w.get_or_init(|| {
            first = true;
            NEXT_WORKER
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                .to_string()
        });
        first
    });
    if !first {
        return None;
    }
    let worker = current_worker_label();
    instruments.register_worker_runtime(worker.clone());
    Some(worker)
}

/// Registers the worker (see [`register_worker`]) and starts, once per worker thread, a task
/// that sleeps `interval` and records how late it woke up. A late wake-up means something
/// held the event loop.
pub fn spawn_lag_probe(instruments: &Instruments, interval: Duration) {
    let Some(worker) = register_worker(instruments) else {
        return;
    };
    let lag = instruments.event_loop_lag.clone();
    let labels = [KeyValue::new(LABEL_WORKER, worker)];
    actix_web::rt::spawn(async move {
        loop {
            let due = tokio::time::Instant::now() + interval;
            tokio::time::sleep_until(due).await;
            let late = tokio::time::Instant::now().saturating_duration_since(due);
            lag.record(late.as_secs_f64(), &labels);
        }
    });
}

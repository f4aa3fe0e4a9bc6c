//! Catching the bug every async codebase ships: a blocking call on the event loop.
//!
//! actix runs one single-threaded runtime per worker, so a handler that blocks inside a poll
//! freezes every other connection of that worker. Three parts, always on:
//! - [`PollTimed`] times every poll of a handler future and publishes the running poll in the
//!   worker's slot (two atomic stores, no syscall); a poll longer than the blocked threshold
//!   is counted per route and worker, and the requests it delayed are counted as victims;
//! - the watchdog thread sees a poll still running past the capture threshold and takes the
//!   blocked thread's stack *while it is blocked* (a real-time signal parks it; framehop
//!   unwinds it), classifies why it is stuck from /proc, and the reporter thread symbolizes
//!   it, keeps it for `/debug/stalls`, logs it and sends one Sentry event per stall;
//! - [`spawn_lag_probe`] runs a timer on each worker and records how late it wakes.
mod classify;
mod context;
#[cfg(test)]
mod cost;
mod debug;
mod report;
mod routes;
mod sentry_event;
mod signal;
mod slot;
mod symbolize;
mod unwind;
mod victims;
mod watchdog;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;

pub(crate) use context::{ConnSocket, RequestContext, on_connect};
pub(crate) use debug::debug_stalls;
pub(crate) use report::StallMonitor;
pub(crate) use routes::{declare_route, precreate_series};
pub(crate) use symbolize::is_our_source;

use crate::metrics::Instruments;
use crate::metrics::names::{LABEL_ENDPOINT, LABEL_WORKER};
use slot::WorkerSlot;

/// What the poll timer needs, shared by all requests of a process.
pub(crate) struct StallDetector {
    pub threshold: Duration,
    instruments: Instruments,
    monitor: StallMonitor,
}

impl StallDetector {
    pub(crate) fn new(
        threshold: Duration,
        instruments: Instruments,
        monitor: StallMonitor,
    ) -> Self {
        Self {
            threshold,
            instruments,
            monitor,
        }
    }

    /// Records one poll; cheap when it was short, which is nearly always.
    fn observe(
        &self,
        request: &Arc<RequestContext>,
        slot: Option<&WorkerSlot>,
        started: Instant,
        took: Duration,
    ) {
        if took < self.threshold {
            return;
        }
        let worker = slot.map_or_else(current_worker_label, |s| s.worker.clone());
        let labels = [
            KeyValue::new(LABEL_ENDPOINT, request.route.to_string()),
            KeyValue::new(LABEL_WORKER, worker.clone()),
        ];
        self.instruments.blocked_polls.add(1, &labels);
        self.instruments
            .blocked_seconds
            .add(took.as_secs_f64(), &labels);
        let started_ns = slot::ns_since_start(started);
        victims::long_poll(
            started_ns,
            started_ns + took.as_nanos() as u64,
            &request.route,
            Arc::as_ptr(request) as usize,
        );
        tracing::debug!(
            route = %request.route,
            request_id = request.request_id.as_str(),
            blocked_ms = took.as_secs_f64() * 1e3,
            "one poll of a handler ran longer than the blocked threshold"
        );
        if took >= self.monitor.report_threshold() {
            self.monitor.finished(report::Finished {
                worker,
                tid: slot.map_or(0, |s| s.tid),
                started_ns,
                blocked: took,
                // Rare: a stall with capture off or missed.
                trace: request.trace(),
                request: request.clone(),
            });
        }
    }
}

pin_project_lite::pin_project! {
    /// Wraps a handler future and times each of its polls.
    pub struct PollTimed<F> {
        #[pin]
        inner: F,
        request: Arc<RequestContext>,
        detector: Arc<StallDetector>,
        slot: Option<&'static WorkerSlot>,
        // When the first poll started: the request's life, for counting what delayed it.
        first_poll_ns: u64,
    }
}

impl<F> PollTimed<F> {
    /// Build it on the worker thread that will poll it (actix futures never move threads).
    pub(crate) fn new(
        inner: F,
        request: Arc<RequestContext>,
        detector: Arc<StallDetector>,
    ) -> Self {
        Self {
            inner,
            request,
            detector,
            slot: slot::current(),
            first_poll_ns: 0,
        }
    }
}

impl<F: Future> Future for PollTimed<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let started = Instant::now();
        let started_ns = slot::ns_since_start(started);
        if *this.first_poll_ns == 0 {
            *this.first_poll_ns = started_ns;
            // Read right after a stall of this loop? Then it may have waited behind it.
            victims::first_poll(started_ns, this.request, &this.detector.instruments);
        }
        // The guard clears the slot when the poll returns or unwinds (a panic is no stall).
        let guard = this.slot.map(|s| s.begin(started_ns, this.request));
        let out = this.inner.poll(cx);
        drop(guard);
        // A handler that panicked (caught below us, answered 500) held the loop in the
        // panic hook: that is a panic, reported as one, not a blocked event loop.
        if !this.slot.is_some_and(|s| s.take_panicked()) {
            this.detector
                .observe(this.request, *this.slot, started, started.elapsed());
        }
        if out.is_ready() {
            victims::request_done(
                *this.first_poll_ns,
                Arc::as_ptr(this.request) as usize,
                &this.detector.instruments,
            );
        }
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

/// Numbers this actix worker, gives it a stall slot and registers its runtime's busy time,
/// once per worker thread; returns its label the first time, `None` after. Call it from the
/// app factory, which actix runs on each worker thread inside that worker's runtime.
pub(crate) fn register_worker(instruments: &Instruments) -> Option<String> {
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
    slot::register(worker.clone());
    instruments.register_worker_runtime(worker.clone());
    Some(worker)
}

/// Registers the worker (see [`register_worker`]) and starts, once per worker thread, a task
/// that sleeps `interval` and records how late it woke up. A late wake-up means something
/// held the event loop.
pub(crate) fn spawn_lag_probe(instruments: &Instruments, interval: Duration) {
    let Some(worker) = register_worker(instruments) else {
        return;
    };
    let lag = instruments.event_loop_lag.clone();
    let slot = slot::current();
    let labels = [KeyValue::new(LABEL_WORKER, worker)];
    actix_web::rt::spawn(async move {
        loop {
            let due = tokio::time::Instant::now() + interval;
            tokio::time::sleep_until(due).await;
            let late = tokio::time::Instant::now().saturating_duration_since(due);
            lag.record(late.as_secs_f64(), &labels);
            if let Some(slot) = slot {
                slot.record_lag(late);
            }
        }
    });
}

/// Per worker, for the gauges read at scrape time: (label, max lag over 30 s, age of the
/// poll running now or zero).
pub(crate) fn gauge_readings() -> Vec<(String, Duration, Duration)> {
    let now = slot::now_ns();
    slot::all()
        .into_iter()
        .map(|s| (s.worker.clone(), s.lag_max(), s.running_for(now)))
        .collect()
}

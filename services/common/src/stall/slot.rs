//! One slot per actix worker: what the poll timer writes on every poll (two relaxed-cost
//! atomic stores, no syscall) and what the watchdog, the gauges and `/debug/stalls` read from
//! other threads.
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::context::RequestContext;

/// Nanoseconds since the first call, never 0 (0 means "idle" in a slot).
pub(crate) fn ns_since_start(at: Instant) -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    at.saturating_duration_since(start).as_nanos() as u64 + 1
}

pub(crate) fn now_ns() -> u64 {
    ns_since_start(Instant::now())
}

pub(crate) struct WorkerSlot {
    /// The `worker` label: "0".."N-1".
    pub(crate) worker: String,
    /// The OS thread id, for tgkill and /proc/self/task/<tid>.
    pub(crate) tid: i32,
    /// Highest address of the thread's stack: unwinding reads only between sp and this.
    pub(crate) stack_top: Option<u64>,
    /// When the running poll started ([`ns_since_start`]); 0 when the worker is between polls.
    poll_started: AtomicU64,
    /// The request whose poll is running; only valid while `poll_started` is not 0.
    context: AtomicPtr<RequestContext>,
    /// Set by the panic hook on this thread: the running poll is panicking, not blocked.
    panicking: AtomicBool,
    /// The largest lag the probe saw, per 5-second bucket over the last 30 s.
    lag: LagWindow,
}

impl WorkerSlot {
    /// Called at the start of every poll: publish the context, then the start time.
    #[inline]
    pub(crate) fn begin(&self, started_ns: u64, context: &Arc<RequestContext>) -> PollGuard<'_> {
        // A panic outside any handler poll (a spawned task) must not excuse this one.
        if self.panicking.load(Ordering::Relaxed) {
            self.panicking.store(false, Ordering::Relaxed);
        }
        self.context
            .store(Arc::as_ptr(context).cast_mut(), Ordering::Relaxed);
        // Release: whoever reads this start time also sees the context stored above.
        self.poll_started.store(started_ns, Ordering::Release);
        PollGuard(self)
    }

    /// The running poll's start and request, if a poll is running.
    pub(crate) fn running(&self) -> Option<(u64, *const RequestContext)> {
        let started = self.poll_started.load(Ordering::Acquire);
        (started != 0).then(|| (started, self.context.load(Ordering::Relaxed).cast_const()))
    }

    /// Age of the running poll, zero when idle.
    pub(crate) fn running_for(&self, now_ns: u64) -> Duration {
        match self.poll_started.load(Ordering::Relaxed) {
            0 => Duration::ZERO,
            started => Duration::from_nanos(now_ns.saturating_sub(started)),
        }
    }

    /// Whether the poll that just ended panicked (and clears the mark): its time went to
    /// the panic hook, not to a blocking call.
    #[inline]
    pub(crate) fn take_panicked(&self) -> bool {
        // A plain load first: the swap's locked instruction only when a panic happened.
        self.panicking.load(Ordering::Relaxed) && self.panicking.swap(false, Ordering::Relaxed)
    }

    pub(crate) fn is_panicking(&self) -> bool {
        self.panicking.load(Ordering::Relaxed)
    }

    pub(crate) fn record_lag(&self, lag: Duration) {
        self.lag.record(lag, now_ns());
    }

    pub(crate) fn lag_max(&self) -> Duration {
        self.lag.max(now_ns())
    }
}

/// Clears the slot when the poll returns, and when it unwinds from a panic: a panic must not
/// leave a poll "running" for the watchdog to report as a stall.
pub(crate) struct PollGuard<'a>(&'a WorkerSlot);

impl Drop for PollGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.0.poll_started.store(0, Ordering::Release);
    }
}

const LAG_BUCKETS: usize = 6;
const LAG_BUCKET_NS: u64 = 5_000_000_000;

/// Max lag over a sliding 30 s, in six 5 s buckets, each tagged with the bucket number it
/// holds. Written only by this worker's lag probe; read at scrape time.
struct LagWindow {
    buckets: [(AtomicU64, AtomicU64); LAG_BUCKETS],
}

impl LagWindow {
    fn new() -> Self {
        Self {
            buckets: std::array::from_fn(|_| (AtomicU64::new(u64::MAX), AtomicU64::new(0))),
        }
    }

    fn record(&self, lag: Duration, now_ns: u64) {
        let n = now_ns / LAG_BUCKET_NS;
        let (tag, max) = &self.buckets[(n % LAG_BUCKETS as u64) as usize];
        let lag = lag.as_nanos() as u64;
        if tag.load(Ordering::Relaxed) != n {
            max.store(lag, Ordering::Relaxed);
            tag.store(n, Ordering::Relaxed);
        } else if lag > max.load(Ordering::Relaxed) {
            max.store(lag, Ordering::Relaxed);
        }
    }

    fn max(&self, now_ns: u64) -> Duration {
        let n = now_ns / LAG_BUCKET_NS;
        let oldest = n.saturating_sub(LAG_BUCKETS as u64 - 1);
        let max = self
            .buckets
            .iter()
            .filter(|(tag, _)| (oldest..=n).contains(&tag.load(Ordering::Relaxed)))
            .map(|(_, max)| max.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0);
        Duration::from_nanos(max)
    }
}

/// Every worker's slot. Slots live as long as the process (a handful, leaked on purpose so
/// other threads can hold `&'static` references with no counting on the hot path).
static SLOTS: Mutex<Vec<&'static WorkerSlot>> = Mutex::new(Vec::new());

thread_local! {
    static CURRENT: Cell<Option<&'static WorkerSlot>> = const { Cell::new(None) };
}

/// Creates this thread's slot; call once, on the worker thread.
pub(crate) fn register(worker: String) -> &'static WorkerSlot {
    let slot: &'static WorkerSlot = Box::leak(Box::new(WorkerSlot {
        worker,
        tid: super::signal::gettid(),
        stack_top: super::signal::stack_top(),
        poll_started: AtomicU64::new(0),
        context: AtomicPtr::new(std::ptr::null_mut()),
        panicking: AtomicBool::new(false),
        lag: LagWindow::new(),
    }));
    CURRENT.with(|c| c.set(Some(slot)));
    SLOTS.lock().unwrap_or_else(|p| p.into_inner()).push(slot);
    slot
}

/// Chains a panic hook that marks the panicking worker's slot, before the hooks installed
/// earlier (Sentry's captures the panic, with a backtrace: long enough to look like a stall).
/// Call once, after Sentry is initialised.
pub(crate) fn mark_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(slot) = current() {
                slot.panicking.store(true, Ordering::Relaxed);
            }
            previous(info);
        }));
    });
}

/// This worker thread's slot; `None` on threads that are not actix workers.
#[inline]
pub(crate) fn current() -> Option<&'static WorkerSlot> {
    CURRENT.with(Cell::get)
}

/// A copy of the list, so nobody holds the lock while working.
pub(crate) fn all() -> Vec<&'static WorkerSlot> {
    SLOTS.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_max_forgets_after_thirty_seconds() {
        let w = LagWindow::new();
        let t0 = 100 * LAG_BUCKET_NS;
        w.record(Duration::from_millis(300), t0);
        w.record(Duration::from_millis(5), t0 + LAG_BUCKET_NS);
        assert_eq!(w.max(t0 + LAG_BUCKET_NS), Duration::from_millis(300));
        assert_eq!(w.max(t0 + 5 * LAG_BUCKET_NS), Duration::from_millis(300));
        assert_eq!(w.max(t0 + 6 * LAG_BUCKET_NS), Duration::from_millis(5));
        assert_eq!(w.max(t0 + 20 * LAG_BUCKET_NS), Duration::ZERO);
    }
}

//! The blocking pool, measured and bounded: how long a job waited for a thread, how many are
//! in flight, and a queue that sheds instead of growing forever.
//!
//! actix gives each worker its own tokio runtime and so its own blocking pool, capped by
//! `--blocking-threads`; `web::block` queues once every thread of it is busy, without bound:
//! with one pool thread and 300 clients a fresh request waited 12 s, and the jobs of the 242
//! clients that had given up still ran. Now each event loop admits at most
//! `--blocking-threads` + `--blocking-queue` jobs to its pool; past that a 503 with
//! `Retry-After`. A job whose request is gone (client disconnected, timed out) before a thread
//! picks it up is skipped. Both are counted in `loopscope_blocking_shed_total{reason}`.
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;

use crate::error::ApiError;
use crate::metrics::Instruments;
use crate::shed::Overloaded;

/// What a blocking job returned, and how long it waited for a pool thread first.
pub struct Blocked<R> {
    pub value: R,
    pub queued: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum BlockingError {
    /// The pool is gone: only while the worker shuts down.
    #[error("the blocking pool is shutting down")]
    Closed,
    #[error(transparent)]
    QueueFull(Overloaded),
}

impl From<BlockingError> for ApiError {
    fn from(e: BlockingError) -> Self {
        match e {
            BlockingError::Closed => ApiError::ShuttingDown,
            BlockingError::QueueFull(o) => ApiError::Overloaded(o),
        }
    }
}

/// Jobs each event loop may have in its pool: running plus waiting.
#[derive(Clone, Copy, Debug)]
struct Limit {
    threads: usize,
    queue: usize,
}

/// Set once by the server from its flags; unset (a library user, a unit test) means unbounded.
static LIMIT: OnceLock<Limit> = OnceLock::new();

pub(crate) fn configure(threads: usize, queue: usize) {
    let _ = LIMIT.set(Limit { threads, queue });
}

thread_local! {
    /// Jobs this event loop has in its own pool (running or waiting), shared with the jobs.
    static IN_POOL: Arc<AtomicUsize> = Arc::default();
}

/// Releases a pool place when the job ends, or is dropped unstarted (the pool closed).
struct Place(Arc<AtomicUsize>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Marks the job abandoned if the request stops waiting for it before it is done.
struct Waiting {
    abandoned: Arc<AtomicBool>,
    done: bool,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if !self.done {
            self.abandoned.store(true, Ordering::Release);
        }
    }
}

pub const SHED_QUEUE_FULL: &str = "queue_full";
pub const SHED_ABANDONED: &str = "abandoned";

/// Runs `job` on the blocking pool. The request's trace goes with it, so a call made inside
/// carries the request's trace headers and id; when sampled, the wait for a pool thread and
/// the job are child spans of the request's transaction.
pub async fn run_blocking<R, F>(
    instruments: &Instruments,
    job: F,
) -> Result<Blocked<R>, BlockingError>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let in_pool = IN_POOL.with(Arc::clone);
    let limit = LIMIT.get().copied();
    let capacity = limit.map_or(usize::MAX, |l| l.threads.saturating_add(l.queue));
    if in_pool.fetch_add(1, Ordering::AcqRel) >= capacity {
        in_pool.fetch_sub(1, Ordering::AcqRel);
        instruments
            .blocking_shed
            .add(1, &[KeyValue::new("reason", SHED_QUEUE_FULL)]);
        let queue = limit.map_or(0, |l| l.queue);
        return Err(BlockingError::QueueFull(Overloaded {
            code: "pool_queue_full",
            message: format!(
                "the blocking pool is busy and its queue of {queue} jobs is full (--blocking-queue); retry later"
            ),
            retry_after: Duration::from_secs(1),
        }));
    }
    let place = Place(in_pool);

    let submitted = Instant::now();
    let trace = crate::sentry::propagation();
    let wait_span = trace
        .as_ref()
        .and_then(|t| t.child("pool.wait", "wait for a blocking-pool thread"));
    let in_flight = instruments.blocking_in_flight.clone();
    in_flight.add(1, &[]);
    // Decrement even when the request is dropped while the job waits.
    let _done = crate::defer::defer(move || in_flight.add(-1, &[]));
    let wait = instruments.blocking_queue_wait.clone();
    let shed = instruments.blocking_shed.clone();
    let abandoned = Arc::new(AtomicBool::new(false));
    let mut waiting = Waiting {
        abandoned: abandoned.clone(),
        done: false,
    };
    let result = actix_web::web::block(move || {
        let _place = place;
        if abandoned.load(Ordering::Acquire) {
            // Nobody waits for the answer: the thread goes to a job somebody does.
            shed.add(1, &[KeyValue::new("reason", SHED_ABANDONED)]);
            return None;
        }
        let queued = submitted.elapsed();
        wait.record(queued.as_secs_f64(), &[]);
        if let Some(span) = wait_span {
            span.finish();
        }
        // Caught here, not by the pool: a panicking job must answer the request 500 with
        // its Sentry event naming the request, not look like a pool that shut down (503).
        let value = std::panic::catch_unwind(AssertUnwindSafe(|| match trace {
            Some(trace) => {
                let span = trace.child("pool.job", "the job on a blocking-pool thread");
                let value = trace.run(job);
                if let Some(span) = span {
                    span.finish();
                }
                value
            }
            None => job(),
        }))
        .map_err(|payload| (payload, crate::sentry::take_pool_panic()));
        Some(Blocked { value, queued })
    })
    .await;
    waiting.done = true;
    // `None` only when abandoned, which cannot be seen by the request that abandoned it.
    let Blocked { value, queued } = result.ok().flatten().ok_or(BlockingError::Closed)?;
    match value {
        Ok(value) => Ok(Blocked { value, queued }),
        Err((payload, report)) => {
            // On the request's event loop now: its Sentry event gets the request, and the
            // unwind continues into the route's panic guard, which answers 500.
            report.report();
            std::panic::resume_unwind(payload)
        }
    }
}

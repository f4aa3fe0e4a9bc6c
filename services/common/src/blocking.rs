//! The blocking pool, measured: how long a job waited for a thread, how many are in flight.
//! actix gives each worker its own tokio runtime and so its own blocking pool, capped by
//! `--blocking-threads`; `web::block` queues once every thread of it is busy.
use std::time::{Duration, Instant};

use crate::metrics::Instruments;

/// What a blocking job returned, and how long it waited for a pool thread first.
pub struct Blocked<R> {
    pub value: R,
    pub queued: Duration,
}

/// The pool is gone: only while the worker shuts down.
#[derive(Debug, thiserror::Error)]
#[error("the blocking pool is shutting down")]
pub struct PoolClosed;

/// Runs `job` on the blocking pool. The request's trace goes with it, so a call made inside
/// carries the request's trace headers and id; when sampled, the wait for a pool thread and
/// the job are child spans of the request's transaction.
pub async fn run_blocking<R, F>(instruments: &Instruments, job: F) -> Result<Blocked<R>, PoolClosed>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
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
    actix_web::web::block(move || {
        let queued = submitted.elapsed();
        wait.record(queued.as_secs_f64(), &[]);
        if let Some(span) = wait_span {
            span.finish();
        }
        let value = match trace {
            Some(trace) => {
                let span = trace.child("pool.job", "the job on a blocking-pool thread");
                let value = trace.run(job);
                if let Some(span) = span {
                    span.finish();
                }
                value
            }
            None => job(),
        };
        Blocked { value, queued }
    })
    .await
    .map_err(|_| PoolClosed)
}

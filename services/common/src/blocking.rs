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

/// Runs `job` on the blocking pool. The request's Sentry hub goes with it, so an error or a
/// span recorded inside belongs to the request that asked for it.
pub async fn run_blocking<R, F>(instruments: &Instruments, job: F) -> Result<Blocked<R>, PoolClosed>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let submitted = Instant::now();
    let hub = sentry::Hub::current();
    let in_flight = instruments.blocking_in_flight.clone();
    in_flight.add(1, &[]);
    // Decrement even when the request is dropped while the job waits.
    let _done = crate::defer::defer(move || in_flight.add(-1, &[]));
    let wait = instruments.blocking_queue_wait.clone();
    actix_web::web::block(move || {
        let queued = submitted.elapsed();
        wait.record(queued.as_secs_f64(), &[]);
        let value = sentry::Hub::run(hub, job);
        Blocked { value, queued }
    })
    .await
    .map_err(|_| PoolClosed)
}

//! The work itself, by kind and handling mode, and the report every work response carries:
//! where and when it ran (seed 002 printed thread_id and request_time for the same reason).
//!
//! The report is on every response, so it is built without allocating: what does not change
//! per thread (its name, id, event-loop label) is cached in thread-locals and shared by
//! reference count, the pid once per process, and the timestamps are formatted on the stack.
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::ApiError;
use common::blocking::run_blocking;
use common::timestamp::Timestamp;
use common::upstream::Reply;
use contract::{Choice, Handling, Kind};
use serde_json::Value;

use crate::cpu::burn;
use crate::report::{WorkReport, pid, this_event_loop, this_thread};
use crate::routes::WorkerState;

/// Where the work ran and what it took.
struct Execution {
    /// The `"thread"` and `"thread_id"` members of the report.
    thread: Arc<str>,
    queued: Duration,
    took: Duration,
    backend: Option<Value>,
}

impl Execution {
    /// Runs `f` here, on the current thread, timing it.
    fn here<T>(f: impl FnOnce() -> T) -> (T, Self) {
        let start = Instant::now();
        let out = f();
        (out, Self::took_here(start.elapsed()))
    }

    /// Work of this long that ran here, on the current thread.
    fn took_here(took: Duration) -> Self {
        Self {
            thread: this_thread(),
            queued: Duration::ZERO,
            took,
            backend: None,
        }
    }
}

pub(crate) async fn perform(
    state: &WorkerState,
    kind: Kind,
    ms: Option<u64>,
) -> Result<WorkReport, ApiError> {
    let started_at = Timestamp::now();
    // The work itself, as a span of the request's transaction when it is sampled.
    let span = common::child_span("work", kind.as_str());
    let event_loop = this_event_loop();
    let wait = Duration::from_millis(ms.unwrap_or(0));
    let exec = match (kind, state.handling) {
        // The anti-pattern, on purpose and in both modes: a blocking sleep on the event loop.
        #[allow(clippy::disallowed_methods)] // the `block` kind exists to show this bug
        (Kind::Block, _) => Execution::here(|| std::thread::sleep(wait)).1,
        (Kind::Io, Handling::Async) => {
            let start = Instant::now();
            actix_web::rt::time::sleep(wait).await;
            Execution::took_here(start.elapsed())
        }
        // Async does not help CPU-bound work: it runs on the event loop and holds it.
        (Kind::Cpu, Handling::Async) => Execution::here(|| burn(wait)).1,
        (Kind::Call, Handling::Async) => {
            let start = Instant::now();
            // Boxed: the HTTP call's future is most of this function's, and every request
            // moves this function's future whole.
            let reply = Box::pin(state.backend.get(&state.client, &query_path(ms))).await;
            let mut exec = Execution::took_here(start.elapsed());
            exec.backend = Some(backend_body(reply)?);
            exec
        }
        (kind, Handling::Threadpool) => {
            let backend = state.backend.clone();
            let agent = state.agent.clone();
            let job = move || match kind {
                // On a blocking-pool thread, where waiting blocks no event loop.
                #[allow(clippy::disallowed_methods)]
                Kind::Io => Execution::here(|| {
                    std::thread::sleep(wait);
                    Ok(None)
                }),
                Kind::Cpu => Execution::here(|| {
                    burn(wait);
                    Ok(None)
                }),
                _ => Execution::here(|| backend.get_blocking(&agent, &query_path(ms)).map(Some)),
            };
            let blocked = Box::pin(run_blocking(&state.instruments, job)).await?;
            let (reply, mut exec) = blocked.value;
            exec.queued = blocked.queued;
            if let Some(reply) = reply.transpose() {
                exec.backend = Some(backend_body(reply)?);
            }
            exec
        }
    };
    state.instruments.record_work(kind.as_str(), exec.took);
    if let Some(span) = span {
        span.finish();
    }
    let finished_at = Timestamp::now();
    Ok(WorkReport {
        service: "worker",
        handling: state.handling,
        kind,
        requested_ms: ms,
        thread: exec.thread,
        event_loop,
        pid: pid(),
        queued: exec.queued,
        took: exec.took,
        started_at,
        finished_at,
        backend: exec.backend,
    })
}

fn query_path(ms: Option<u64>) -> String {
    match ms {
        Some(ms) => format!("/query?ms={ms}"),
        None => "/query".to_owned(),
    }
}

fn backend_body(reply: Result<Reply, common::upstream::UpstreamError>) -> Result<Value, ApiError> {
    Ok(reply?.success("backend")?.body)
}

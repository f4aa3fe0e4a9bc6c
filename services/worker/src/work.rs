//! The work itself, by kind and handling mode, and the report every work response carries:
//! where and when it ran (seed 002 printed thread_id and request_time for the same reason).
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use common::ApiError;
use common::blocking::run_blocking;
use common::upstream::Reply;
use serde::Serialize;
use serde_json::Value;

use crate::Handling;
use crate::cpu::{burn, thread_id};
use crate::routes::WorkerState;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Io,
    Cpu,
    Call,
    Block,
}

impl Kind {
    pub(crate) const NAMES: &'static [&'static str] = &["io", "cpu", "call", "block"];

    pub(crate) fn parse(raw: &str) -> Result<Self, ApiError> {
        Ok(
            match common::params::path_choice("kind", raw, Self::NAMES)? {
                "io" => Self::Io,
                "cpu" => Self::Cpu,
                "call" => Self::Call,
                _ => Self::Block,
            },
        )
    }

    pub(crate) fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// Where the work ran and what it took.
struct Execution {
    thread: String,
    thread_id: i64,
    queued: Duration,
    took: Duration,
    backend: Option<Value>,
}

impl Execution {
    /// Runs `f` here, on the current thread, timing it.
    fn here<T>(f: impl FnOnce() -> T) -> (T, Self) {
        let start = Instant::now();
        let out = f();
        let exec = Self {
            thread: std::thread::current()
                .name()
                .unwrap_or("unnamed")
                .to_owned(),
            thread_id: thread_id(),
            queued: Duration::ZERO,
            took: start.elapsed(),
            backend: None,
        };
        (out, exec)
    }
}

#[derive(Serialize)]
pub(crate) struct WorkReport {
    service: &'static str,
    handling: &'static str,
    kind: &'static str,
    requested_ms: Option<u64>,
    /// The thread the work ran on: an actix worker (event loop) or a blocking-pool thread.
    thread: String,
    thread_id: i64,
    /// The actix worker (event loop) that accepted the request.
    event_loop: String,
    pid: u32,
    queued_ms: f64,
    service_ms: f64,
    started_at: String,
    finished_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    backend: Option<Value>,
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) async fn perform(
    state: &WorkerState,
    kind: Kind,
    ms: Option<u64>,
) -> Result<WorkReport, ApiError> {
    let started_at = Utc::now();
    // The work itself, as a span of the request's transaction when it is sampled.
    let span = common::sentry::child_span("work", kind.as_str());
    let event_loop = common::stall::current_worker_label();
    let wait = Duration::from_millis(ms.unwrap_or(0));
    let exec = match (kind, state.handling) {
        // The anti-pattern, on purpose and in both modes: a blocking sleep on the event loop.
        (Kind::Block, _) => Execution::here(|| std::thread::sleep(wait)).1,
        (Kind::Io, Handling::Async) => {
            let (fut, mut exec) = Execution::here(|| actix_web::rt::time::sleep(wait));
            let start = Instant::now();
            fut.await;
            exec.took = start.elapsed();
            exec
        }
        // Async does not help CPU-bound work: it runs on the event loop and holds it.
        (Kind::Cpu, Handling::Async) => Execution::here(|| burn(wait)).1,
        (Kind::Call, Handling::Async) => {
            let start = Instant::now();
            let reply = state.backend.get(&state.client, &query_path(ms)).await;
            let (_, mut exec) = Execution::here(|| ());
            exec.took = start.elapsed();
            exec.backend = Some(backend_body(reply)?);
            exec
        }
        (kind, Handling::Threadpool) => {
            let backend = state.backend.clone();
            let agent = state.agent.clone();
            let job = move || match kind {
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
            let blocked = run_blocking(&state.instruments, job)
                .await
                .map_err(|_| ApiError::ShuttingDown)?;
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
    let finished_at = Utc::now();
    Ok(WorkReport {
        service: "worker",
        handling: state.handling.as_str(),
        kind: kind.as_str(),
        requested_ms: ms,
        thread: exec.thread,
        thread_id: exec.thread_id,
        event_loop,
        pid: std::process::id(),
        queued_ms: millis(exec.queued),
        service_ms: millis(exec.took),
        started_at: timestamp(started_at),
        finished_at: timestamp(finished_at),
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

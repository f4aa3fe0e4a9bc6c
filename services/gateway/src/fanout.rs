//! n calls, sequentially, all at once, or at most k in flight: seed 003's gevent
//! `Pool(k)`, as a semaphore. Each call keeps its index and its own outcome. The whole
//! fan-out has a deadline: without one, a sequential fan-out against a hanging worker took
//! n x the upstream timeout (50 minutes on defaults). At the deadline the calls still
//! running are dropped (their connections close) and reported unfinished.
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use contract::FanoutCall;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::Value;
use tokio::sync::Semaphore;

use common::upstream::{Reply, Upstream, UpstreamError};

#[derive(Clone, Copy, Debug)]
pub(crate) enum Mode {
    Sequential,
    Concurrent,
    Limited(usize),
}

/// One call's outcome: what the summary shows of it, and the typed failure the route
/// answers with (502 or 504).
pub(crate) struct CallResult {
    pub call: FanoutCall,
    pub failure: Option<UpstreamError>,
}

fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

async fn one(
    index: usize,
    start: Instant,
    upstream: &Upstream,
    client: &reqwest::Client,
    path: &str,
) -> CallResult {
    let sent_at = start.elapsed();
    let outcome = upstream
        .get(client, path)
        .await
        .and_then(|r: Reply| r.success(upstream.name));
    let elapsed = start.elapsed() - sent_at;
    match outcome {
        Ok(reply) => CallResult {
            call: FanoutCall {
                index,
                sent_at_ms: Some(ms(sent_at)),
                elapsed_ms: ms(elapsed),
                status: Some(reply.status),
                thread_id: reply.body.get("thread_id").and_then(Value::as_i64),
                error: None,
            },
            failure: None,
        },
        Err(e) => CallResult {
            call: FanoutCall {
                index,
                sent_at_ms: Some(ms(sent_at)),
                elapsed_ms: ms(elapsed),
                status: match &e {
                    UpstreamError::Failed { status, .. }
                    | UpstreamError::BadBody { status, .. } => Some(*status),
                    _ => None,
                },
                thread_id: None,
                error: Some(e.to_string()),
            },
            failure: Some(e),
        },
    }
}

impl CallResult {
    /// A call the deadline cut: still running, or never started.
    fn unfinished(index: usize, upstream: &Upstream, deadline: Duration) -> Self {
        Self {
            call: FanoutCall {
                index,
                sent_at_ms: None,
                elapsed_ms: ms(deadline),
                status: None,
                thread_id: None,
                error: Some(format!(
                    "not finished within the fan-out deadline of {} ms",
                    deadline.as_millis()
                )),
            },
            failure: Some(UpstreamError::Timeout {
                upstream: upstream.name,
                timeout_ms: deadline.as_millis() as u64,
                at: std::panic::Location::caller(),
            }),
        }
    }
}

type Call<'a> = Pin<Box<dyn Future<Output = CallResult> + 'a>>;

/// Runs the fan-out until every call finished or `deadline` passed; results in index order.
pub(crate) async fn run(
    mode: Mode,
    n: usize,
    upstream: &Upstream,
    client: &reqwest::Client,
    path: &str,
    deadline: Duration,
) -> Vec<CallResult> {
    let start = Instant::now();
    let mut slots: Vec<Option<CallResult>> = (0..n).map(|_| None).collect();
    let collect = async {
        match mode {
            Mode::Sequential => {
                for (i, slot) in slots.iter_mut().enumerate() {
                    *slot = Some(one(i, start, upstream, client, path).await);
                }
            }
            Mode::Concurrent | Mode::Limited(_) => {
                let k = match mode {
                    Mode::Limited(k) => k,
                    _ => n.max(1),
                };
                let pool = Arc::new(Semaphore::new(k));
                let mut calls: FuturesUnordered<Call<'_>> = (0..n)
                    .map(|i| {
                        let pool = pool.clone();
                        Box::pin(async move {
                            // The semaphore is never closed, so acquire cannot fail.
                            let _slot = pool.acquire().await.ok();
                            one(i, start, upstream, client, path).await
                        }) as Call<'_>
                    })
                    .collect();
                while let Some(result) = calls.next().await {
                    let index = result.call.index;
                    slots[index] = Some(result);
                }
            }
        }
    };
    // Timed out or not, every slot filled so far is kept.
    let _ = tokio::time::timeout(deadline, collect).await;
    slots
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|| CallResult::unfinished(i, upstream, deadline)))
        .collect()
}

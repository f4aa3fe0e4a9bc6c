//! n calls, sequentially, all at once, or at most k in flight: seed 003's gevent
//! `Pool(k)`, as a semaphore. Each call keeps its index and its own outcome.
use std::sync::Arc;
use std::time::Instant;

use futures_util::future::join_all;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Semaphore;

use common::upstream::{Reply, Upstream, UpstreamError};

#[derive(Clone, Copy, Debug)]
pub(crate) enum Mode {
    Sequential,
    Concurrent,
    Limited(usize),
}

#[derive(Serialize)]
pub(crate) struct CallResult {
    pub index: usize,
    /// When the call was sent, from the start of the fan-out.
    pub sent_at_ms: f64,
    pub elapsed_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
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
            index,
            sent_at_ms: ms(sent_at),
            elapsed_ms: ms(elapsed),
            status: Some(reply.status),
            thread_id: reply.body.get("thread_id").cloned(),
            error: None,
            failure: None,
        },
        Err(e) => CallResult {
            index,
            sent_at_ms: ms(sent_at),
            elapsed_ms: ms(elapsed),
            status: match &e {
                UpstreamError::Failed { status, .. } | UpstreamError::BadBody { status, .. } => {
                    Some(*status)
                }
                _ => None,
            },
            thread_id: None,
            error: Some(e.to_string()),
            failure: Some(e),
        },
    }
}

pub(crate) async fn run(
    mode: Mode,
    n: usize,
    upstream: &Upstream,
    client: &reqwest::Client,
    path: &str,
) -> Vec<CallResult> {
    let start = Instant::now();
    match mode {
        Mode::Sequential => {
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                out.push(one(i, start, upstream, client, path).await);
            }
            out
        }
        Mode::Concurrent => join_all((0..n).map(|i| one(i, start, upstream, client, path))).await,
        Mode::Limited(k) => {
            let pool = Arc::new(Semaphore::new(k));
            join_all((0..n).map(|i| {
                let pool = pool.clone();
                async move {
                    // The semaphore is never closed, so acquire cannot fail.
                    let _slot = pool.acquire().await.ok();
                    one(i, start, upstream, client, path).await
                }
            }))
            .await
        }
    }
}

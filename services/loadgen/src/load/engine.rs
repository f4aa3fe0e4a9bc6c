//! The engine: the open model's scheduler, the closed model's loops, one request.
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::outcome::{ErrorKind, classify};
use super::progress::{Progress, Reporter};
use super::summary::{Live, Summary};
use super::{Model, Plan, Stop, schedule};

/// Runs `plan` with `client` until it stops or `cancel` resolves, and summarizes it.
///
/// Call inside a tokio runtime (each request is a task). On `cancel`, the requests still in
/// flight are abandoned and counted as unfinished; the summary says it was interrupted. A
/// plan that fails [`Plan::validate`] sends nothing and gets an empty summary.
pub async fn execute(
    plan: &Plan,
    client: &reqwest::Client,
    progress: Progress,
    cancel: impl Future<Output = ()>,
) -> Summary {
    if plan.validate().is_err() {
        return Summary::empty(plan);
    }
    let live = Arc::new(Live::default());
    let start = Instant::now();
    let reporter = Reporter::start(progress, plan, live.clone(), start);
    let target = Target {
        client: client.clone(),
        urls: plan.urls.clone().into(),
        timeout: plan.timeout,
    };
    let run = async {
        match plan.model {
            Model::Open { rate } => open(&target, rate, plan.stop, &live, start).await,
            Model::Closed { concurrency } => {
                closed(&target, concurrency, plan.stop, &live, start).await;
            }
        }
    };
    // Dropping `run` drops its JoinSet, which aborts the requests in flight.
    let interrupted = tokio::select! {
        () = run => false,
        () = cancel => true,
    };
    let elapsed = start.elapsed();
    reporter.finish();
    Summary::new(plan, live.take(), elapsed, interrupted)
}

/// Where requests go: the URLs round-robin, each request with the plan's timeout.
#[derive(Clone)]
struct Target {
    client: reqwest::Client,
    urls: Arc<[String]>,
    timeout: std::time::Duration,
}

impl Target {
    /// Sends request `i` and reads its whole body: an answer is complete with its last
    /// byte. The status of the answer, or why there was none.
    async fn send(&self, i: u64) -> Result<u16, ErrorKind> {
        let url = &self.urls[(i % self.urls.len() as u64) as usize];
        let response = self
            .client
            .get(url)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let status = response.status().as_u16();
        response.bytes().await.map_err(|e| classify(&e))?;
        Ok(status)
    }
}

/// The open model: request `i` is a task spawned at `start + i / rate`, whether or not the
/// earlier ones answered; its latency runs from that intended time. If the scheduler itself
/// wakes late, the overdue requests leave at once, still timed from their schedule.
async fn open(target: &Target, rate: f64, stop: Stop, live: &Arc<Live>, start: Instant) {
    let mut tasks = JoinSet::new();
    for i in 0u64.. {
        let intended = schedule::intended_offset(i, rate);
        if !schedule::open_admits(stop, i, intended) {
            break;
        }
        tokio::time::sleep_until(start + intended).await;
        // Reap the finished ones so the set holds only what is in flight.
        while tasks.try_join_next().is_some() {}
        live.lock().sent += 1;
        let target = target.clone();
        let live = live.clone();
        tasks.spawn(async move {
            let result = target.send(i).await;
            live.record(result, schedule::latency(intended, start.elapsed()));
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// The closed model: `concurrency` loops, each sending its next request when the previous
/// one ended; latency from the actual send. Request numbers come from one shared counter,
/// so a count stop sends exactly that many and the URLs still alternate.
async fn closed(target: &Target, concurrency: usize, stop: Stop, live: &Arc<Live>, start: Instant) {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..concurrency {
        let (target, live, next) = (target.clone(), live.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let more = match stop {
                    Stop::Count(n) => i < n,
                    Stop::After(d) => start.elapsed() < d,
                };
                if !more {
                    break;
                }
                live.lock().sent += 1;
                let sent_at = Instant::now();
                let result = target.send(i).await;
                live.record(result, sent_at.elapsed());
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

//! Experiment 5 (seed 004): async does not help CPU-bound work. While CPU work keeps the
//! workers busy, short io requests are measured: on the async worker the CPU work runs on
//! the event loops and the io requests queue behind it; on the threadpool worker it runs on
//! pool threads and the OS shares the cores.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use super::Pace;
use super::check;
use super::exposition::percentiles;
use super::stack::{Stack, StackError};
use crate::model::{ExperimentData, ExperimentOutcome, PercentileSeries};

const CPU_MS: u64 = 50;
const IO_MS: u64 = 10;
const PROBE_EVERY: Duration = Duration::from_millis(50);

/// io latencies, one probe every 50 ms for `length`, while `background` CPU loops run.
async fn probe(
    stack: &Stack,
    base: &str,
    admin: &str,
    length: Duration,
    busy: bool,
) -> Result<PercentileSeries, StackError> {
    let workers = stack
        .metric(admin, "loopscope_server_workers", &[])
        .await?
        .unwrap_or(1.0) as usize;
    let stop = Arc::new(AtomicBool::new(false));
    let cpu_url = format!("{base}/work/cpu?ms={CPU_MS}");
    // Four CPU loops per event loop: each always has CPU work queued, whichever connection lands where.
    let loops = if busy { 4 * workers } else { 0 };
    let background = join_all((0..loops).map(|_| {
        let stop = stop.clone();
        let cpu_url = cpu_url.clone();
        async move {
            while !stop.load(Ordering::Relaxed) {
                stack.get(&cpu_url).await?;
            }
            Ok::<(), StackError>(())
        }
    }));
    let io_url = format!("{base}/work/io?ms={IO_MS}");
    let measure = async {
        if busy {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let deadline = Instant::now() + length;
        let mut latencies = Vec::new();
        let mut tick = tokio::time::interval(PROBE_EVERY);
        while Instant::now() < deadline {
            tick.tick().await;
            latencies.push(stack.get(&io_url).await?.ms());
        }
        stop.store(true, Ordering::Relaxed);
        Ok::<_, StackError>(latencies)
    };
    let (bg, latencies) = tokio::join!(background, measure);
    for r in bg {
        r?;
    }
    Ok(percentiles("", latencies?, 0))
}

pub(crate) async fn run(stack: &Stack, pace: Pace) -> Result<ExperimentOutcome, StackError> {
    let length = Duration::from_secs(if pace.quick { 2 } else { 4 });
    let mut series = Vec::new();
    for (mode, base, admin) in [
        ("async", &stack.worker_async, &stack.async_admin),
        (
            "threadpool",
            &stack.worker_threadpool,
            &stack.threadpool_admin,
        ),
    ] {
        for busy in [false, true] {
            let mut s = probe(stack, base, admin, length / if busy { 1 } else { 2 }, busy).await?;
            s.name = format!("{mode}, {}", if busy { "CPU work running" } else { "idle" });
            series.push(s);
        }
    }
    let (async_busy, pool_busy) = (&series[1], &series[3]);
    let checks = vec![
        check::at_least(
            "async: io p50 while CPU work runs",
            "queues behind the CPU work",
            async_busy.p50,
            IO_MS as f64 + CPU_MS as f64 / 2.0,
        ),
        check::ratio(
            "io p50 under CPU load: async / threadpool",
            "≫ 1",
            async_busy.p50,
            pool_busy.p50,
            2.0,
        ),
    ];
    let passed = checks.iter().all(|c| c.pass);
    Ok(ExperimentOutcome {
        name: "cpu".to_owned(),
        title: "CPU-bound work: async does not help".to_owned(),
        seed: Some("004".to_owned()),
        prediction: format!(
            "While {CPU_MS} ms CPU jobs keep every worker busy, {IO_MS} ms io requests on the async worker wait \
             for the CPU work holding their event loop; on the threadpool worker the CPU work runs on pool \
             threads and io requests stay near {IO_MS} ms."
        ),
        checks,
        passed,
        data: ExperimentData::Percentiles {
            unit: "ms".to_owned(),
            series,
        },
    })
}

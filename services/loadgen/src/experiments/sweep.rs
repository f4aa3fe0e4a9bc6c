//! Experiment 6: the arrival rate stepped up against each mode until p99 breaks. Little's law
//! caps the thread pool at threads / latency requests per second; past it, jobs queue and the
//! queue grows for as long as the step lasts. The async worker has no such cap. Per step:
//! throughput, p50/p99, errors, and the worker's threads and resident memory — seed 002's
//! claim that a thread per request costs memory, measured instead of asserted.
use std::time::Duration;

use super::Pace;
use super::check;
use super::stack::{Stack, StackError};
use crate::load::{self, Model, Plan, Progress, Stop};
use crate::model::{Check, ExperimentData, ExperimentOutcome, SweepSeries, SweepStep};

const IO_MS: f64 = 200.0;

pub(crate) async fn run(stack: &Stack, pace: Pace) -> Result<ExperimentOutcome, StackError> {
    let threads_max = stack
        .metric(
            &stack.threadpool_admin,
            "loopscope_blocking_threads_max",
            &[],
        )
        .await?
        .unwrap_or(80.0);
    // Little's law: the pool finishes at most threads / latency jobs per second.
    let limit = threads_max / (IO_MS / 1e3);
    let factors: &[f64] = if pace.quick {
        &[0.5, 1.0, 2.0]
    } else {
        &[0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0]
    };
    let step = Duration::from_secs(if pace.quick { 1 } else { 2 });
    // Keep-alive connections here: this is load, not an experiment on connection placement.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| StackError::Request {
            url: String::new(),
            detail: e.to_string(),
        })?;

    let mut modes = Vec::new();
    for (mode, base, admin) in [
        (
            "threadpool",
            &stack.worker_threadpool,
            &stack.threadpool_admin,
        ),
        ("async", &stack.worker_async, &stack.async_admin),
    ] {
        let url = format!("{base}/work/io?ms={IO_MS}");
        let mut steps = Vec::new();
        for factor in factors {
            let rate = (limit * factor).round().max(1.0);
            let plan = Plan {
                model: Model::Open { rate },
                stop: Stop::After(step),
                urls: vec![url.clone()],
                timeout: Duration::from_secs(30),
            };
            let summary =
                load::execute(&plan, &client, Progress::Hidden, std::future::pending()).await;
            let threads = stack
                .metric(admin, "process_threads", &[])
                .await?
                .unwrap_or(0.0);
            let rss = stack
                .metric(admin, "process_resident_memory_bytes", &[])
                .await?
                .unwrap_or(0.0);
            steps.push(SweepStep {
                rate,
                throughput: summary.throughput(),
                p50_ms: summary.percentile_ms(50.0),
                p99_ms: summary.percentile_ms(99.0),
                errors: summary.errors(),
                threads,
                rss_mb: rss / 1e6,
            });
        }
        modes.push(SweepSeries {
            mode: mode.to_owned(),
            steps,
        });
    }

    let checks = verdicts(&modes, limit);
    let passed = checks.iter().all(|c| c.pass);
    Ok(ExperimentOutcome {
        name: "sweep".to_owned(),
        title: "Saturation: arrival rate stepped up until p99 breaks".to_owned(),
        seed: Some("002".to_owned()),
        prediction: format!(
            "{IO_MS} ms io jobs. The thread pool ({threads_max:.0} threads) finishes at most \
             {limit:.0} per second (Little's law); past that, p99 grows with the queue. The async worker \
             keeps p99 near {IO_MS} ms at every step. Threads grow with load on the pool, not on async."
        ),
        checks,
        passed,
        data: ExperimentData::Sweep { modes },
    })
}

fn verdicts(modes: &[SweepSeries], limit: f64) -> Vec<Check> {
    let (pool, asyn) = (&modes[0].steps, &modes[1].steps);
    let (pool_top, async_top) = (pool.last().expect("steps"), asyn.last().expect("steps"));
    let pool_low = &pool[0];
    let broken = 2.0 * IO_MS;
    vec![
        check::at_most(
            "threadpool p99 well under the limit",
            "≈ the job time",
            pool_low.p99_ms,
            broken,
        ),
        check::at_least(
            &format!(
                "threadpool p99 at {:.0}/s (over the {limit:.0}/s limit)",
                pool_top.rate
            ),
            "breaks: the queue grows",
            pool_top.p99_ms,
            broken,
        ),
        check::at_most(
            &format!("async p99 at {:.0}/s", async_top.rate),
            "≈ the job time",
            async_top.p99_ms,
            broken,
        ),
        Check {
            label: "threads added from the first to the last step".to_owned(),
            predicted: "pool: many; async: none".to_owned(),
            measured: format!(
                "pool: {:+.0}; async: {:+.0}",
                pool_top.threads - pool[0].threads,
                async_top.threads - asyn[0].threads
            ),
            tolerance: "pool ≥ +8, async ≤ +2".to_owned(),
            pass: pool_top.threads - pool[0].threads >= 8.0
                && async_top.threads - asyn[0].threads <= 2.0,
        },
    ]
}

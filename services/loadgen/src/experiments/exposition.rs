//! Experiment 4 (seed 000): prometheus_client's `start_http_server` (its own thread and
//! port) vs `make_asgi_app` (mounted in the app). While every event loop of the worker is
//! blocked, the separate /metrics keeps answering and the mounted one waits.
use std::time::Duration;

use futures_util::future::join_all;

use super::Pace;
use super::check;
use super::stack::{Stack, StackError};
use crate::model::{ExperimentData, ExperimentOutcome, PercentileSeries};

const SCRAPES: usize = 3;

pub(crate) fn percentiles(name: &str, mut ms: Vec<f64>, errors: u64) -> PercentileSeries {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| {
        if ms.is_empty() {
            0.0
        } else {
            ms[((ms.len() - 1) as f64 * q).round() as usize]
        }
    };
    PercentileSeries {
        name: name.to_owned(),
        count: ms.len() as u64,
        errors,
        p50: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
        max: ms.last().copied().unwrap_or(0.0),
    }
}

async fn scrapes(stack: &Stack, url: &str) -> Result<Vec<f64>, StackError> {
    let answers =
        join_all((0..SCRAPES).map(|_| stack.get_with_timeout(url, Some(Duration::from_secs(20)))))
            .await;
    answers
        .into_iter()
        .map(|a| {
            let a = a?;
            if a.status == 200 {
                Ok(a.ms())
            } else {
                Err(StackError::Request {
                    url: url.to_owned(),
                    detail: format!("status {}", a.status),
                })
            }
        })
        .collect()
}

pub(crate) async fn run(stack: &Stack, pace: Pace) -> Result<ExperimentOutcome, StackError> {
    let block_ms: u64 = if pace.quick { 1000 } else { 1500 };
    let separate_url = format!("{}/metrics", stack.async_admin);
    let mounted_url = format!("{}/metrics", stack.worker_async);
    let probe = stack.get(&mounted_url).await?;
    if probe.status != 200 {
        return Err(StackError::Request {
            url: mounted_url,
            detail: format!(
                "status {}: the async worker must serve /metrics on its app port too; \
                 start it with --metrics-exposition both (make up does)",
                probe.status
            ),
        });
    }
    let workers = stack
        .metric(&stack.async_admin, "loopscope_server_workers", &[])
        .await?
        .unwrap_or(1.0) as usize;

    let separate_idle = scrapes(stack, &separate_url).await?;
    let mounted_idle = scrapes(stack, &mounted_url).await?;

    // Two blockers per event loop: connections are dealt round-robin, so every loop gets one.
    let block_url = format!("{}/work/block?ms={block_ms}", stack.worker_async);
    let blockers = join_all((0..2 * workers).map(|_| stack.get(&block_url)));
    let measure = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        tokio::join!(scrapes(stack, &separate_url), scrapes(stack, &mounted_url))
    };
    let (blocked, (separate_blocked, mounted_blocked)) = tokio::join!(blockers, measure);
    for b in blocked {
        b?;
    }
    let (separate_blocked, mounted_blocked) = (separate_blocked?, mounted_blocked?);

    let series = vec![
        percentiles("separate, idle", separate_idle, 0),
        percentiles("mounted, idle", mounted_idle, 0),
        percentiles("separate, app blocked", separate_blocked, 0),
        percentiles("mounted, app blocked", mounted_blocked, 0),
    ];
    let (sep, mnt) = (&series[2], &series[3]);
    let checks = vec![
        check::at_most(
            "separate /metrics while the app is blocked",
            "answers at once",
            sep.max,
            300.0,
        ),
        check::at_least(
            "mounted /metrics while the app is blocked",
            "waits for the blocked event loop",
            mnt.p50,
            300.0,
        ),
        check::ratio(
            "mounted / separate (median)",
            "≫ 1",
            mnt.p50,
            sep.p50.max(0.1),
            5.0,
        ),
    ];
    let passed = checks.iter().all(|c| c.pass);
    Ok(ExperimentOutcome {
        name: "exposition".to_owned(),
        title: "/metrics on its own port vs mounted in the app, while the app is blocked"
            .to_owned(),
        seed: Some("000".to_owned()),
        prediction: format!(
            "With all {workers} event loop(s) of the async worker blocked for {block_ms} ms (two blocking \
             requests each), a scrape of the separate admin port answers at once; a scrape of /metrics \
             mounted on the app port waits until a loop is free — Prometheus would record a gap."
        ),
        checks,
        passed,
        data: ExperimentData::Percentiles {
            unit: "ms".to_owned(),
            series,
        },
    })
}

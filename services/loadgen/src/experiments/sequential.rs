//! Experiment 2 (seed 003): two waits of 500 and 400 ms. One after the other they take the
//! sum; awaited together, the longest.
use std::time::Instant;

use super::Pace;
use super::check;
use super::stack::{Stack, StackError};
use crate::model::{Bar, ExperimentData, ExperimentOutcome};

pub(crate) async fn run(stack: &Stack, _pace: Pace) -> Result<ExperimentOutcome, StackError> {
    let (a, b) = (500.0, 400.0);
    let url = |ms: f64| format!("{}/work/io?ms={ms}", stack.worker_async);

    let started = Instant::now();
    stack.get(&url(a)).await?;
    stack.get(&url(b)).await?;
    let sequential = started.elapsed().as_secs_f64() * 1e3;

    let started = Instant::now();
    let (url_a, url_b) = (url(a), url(b));
    let (x, y) = tokio::join!(stack.get(&url_a), stack.get(&url_b));
    x?;
    y?;
    let concurrent = started.elapsed().as_secs_f64() * 1e3;

    let checks = vec![
        check::near(
            "sequential: 500 ms then 400 ms",
            a + b,
            sequential,
            0.98,
            1.4,
        ),
        check::near("concurrent: both at once", a, concurrent, 0.98, 1.4),
        check::ratio(
            "sequential / concurrent",
            "1.8×",
            sequential,
            concurrent,
            1.5,
        ),
    ];
    let passed = checks.iter().all(|c| c.pass);
    Ok(ExperimentOutcome {
        name: "sequential".to_owned(),
        title: "Waiting one after the other vs together".to_owned(),
        seed: Some("003".to_owned()),
        prediction:
            "Waits of 500 and 400 ms: sequentially ≈ 900 ms, concurrently ≈ 500 ms (the longest)."
                .to_owned(),
        checks,
        passed,
        data: ExperimentData::Bars {
            unit: "ms".to_owned(),
            bars: vec![
                Bar {
                    label: "sequential".to_owned(),
                    predicted: a + b,
                    measured: sequential,
                },
                Bar {
                    label: "concurrent".to_owned(),
                    predicted: a,
                    measured: concurrent,
                },
            ],
        },
    })
}

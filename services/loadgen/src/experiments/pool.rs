//! Experiment 3 (seed 003, gevent `Pool(n)`): ten calls of 100 ms through the gateway's
//! fan-out: one after the other, at most 5 in flight, at most 30 in flight.
use contract::FanoutSummary;
use serde::Deserialize as _;

use super::Pace;
use super::check;
use super::stack::{Stack, StackError};
use crate::model::{Bar, ExperimentData, ExperimentOutcome};

const N: u32 = 10;
const MS: f64 = 100.0;

async fn fanout(stack: &Stack, query: &str) -> Result<f64, StackError> {
    let url = format!("{}/api/fanout?n={N}&ms={MS}&{query}", stack.gateway);
    let answer = stack.get(&url).await?;
    if answer.status != 200 {
        return Err(StackError::Request {
            url,
            detail: format!("status {}: {}", answer.status, answer.body),
        });
    }
    let summary = FanoutSummary::deserialize(&answer.body).map_err(|e| StackError::Request {
        url,
        detail: format!("the answer is not a fan-out summary ({e}): {}", answer.body),
    })?;
    Ok(summary.elapsed_ms)
}

pub(crate) async fn run(stack: &Stack, _pace: Pace) -> Result<ExperimentOutcome, StackError> {
    let sequential = fanout(stack, "mode=sequential").await?;
    let limit5 = fanout(stack, "mode=limited&limit=5").await?;
    let limit30 = fanout(stack, "mode=limited&limit=30").await?;
    let checks = vec![
        check::near("sequential: 10 × 100 ms", 1000.0, sequential, 0.98, 1.5),
        check::near("pool of 5: two rounds", 200.0, limit5, 0.98, 2.0),
        check::near("pool of 30: one round", 100.0, limit30, 0.98, 2.5),
        check::ratio("pool of 5 / pool of 30", "2×", limit5, limit30, 1.4),
        check::ratio("sequential / pool of 5", "5×", sequential, limit5, 2.5),
    ];
    let passed = checks.iter().all(|c| c.pass);
    Ok(ExperimentOutcome {
        name: "pool".to_owned(),
        title: "A pool bounds concurrency: 10 calls, at most 5 vs 30 in flight".to_owned(),
        seed: Some("003".to_owned()),
        prediction:
            "Ten calls of 100 ms: sequentially ≈ 1000 ms; with a pool of 5, two rounds ≈ 200 ms; \
                     with a pool of 30, one round ≈ 100 ms."
                .to_owned(),
        checks,
        passed,
        data: ExperimentData::Bars {
            unit: "ms".to_owned(),
            bars: vec![
                Bar {
                    label: "sequential".to_owned(),
                    predicted: 1000.0,
                    measured: sequential,
                },
                Bar {
                    label: "pool of 5".to_owned(),
                    predicted: 200.0,
                    measured: limit5,
                },
                Bar {
                    label: "pool of 30".to_owned(),
                    predicted: 100.0,
                    measured: limit30,
                },
            ],
        },
    })
}

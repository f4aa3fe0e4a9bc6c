//! Experiment 1 (seed 002): ten requests, sent 20 ms apart; the fifth is slow. On the thread
//! pool only the fifth is slow. With a blocking sleep in an async handler, every request its
//! event loop holds waits for it. With an awaited sleep, nobody waits.
use std::time::Duration;

use chrono::Utc;
use contract::WorkReport;
use futures_util::future::join_all;

use super::Pace;
use super::caught;
use super::check;
use super::stack::{Answer, Stack, StackError, epoch_ms, utc_ms};
use crate::model::{Check, ExperimentData, ExperimentOutcome, TimelineRequest, TimelineScenario};

const REQUESTS: usize = 10;
const SLOW_INDEX: usize = 5;
const FAST_MS: u64 = 10;
const GAP: Duration = Duration::from_millis(20);

struct Scenario {
    name: &'static str,
    base: String,
    slow_path: String,
}

async fn run_scenario(
    stack: &Stack,
    sc: &Scenario,
) -> Result<(TimelineScenario, Vec<Answer>), StackError> {
    let start = Utc::now();
    let requests = (1..=REQUESTS).map(|i| {
        let path = if i == SLOW_INDEX {
            sc.slow_path.clone()
        } else {
            format!("/work/io?ms={FAST_MS}")
        };
        async move {
            tokio::time::sleep(GAP * (i as u32 - 1)).await;
            let answer = stack.get(&format!("{}{path}", sc.base)).await;
            (i, path, answer)
        }
    });
    let mut out = Vec::new();
    let mut answers = Vec::new();
    let t0 = utc_ms(start);
    for (index, path, answer) in join_all(requests).await {
        let a = answer?;
        if a.status != 200 {
            return Err(StackError::Request {
                url: path,
                detail: format!("status {}: {}", a.status, a.body),
            });
        }
        let report = serde_json::from_value::<WorkReport>(a.body.clone()).map_err(|e| {
            StackError::Request {
                url: path.clone(),
                detail: format!("the answer is not a work report ({e}): {}", a.body),
            }
        })?;
        let at = |t: &str| epoch_ms(t).map_or(0.0, |t| t - t0);
        out.push(TimelineRequest {
            index,
            path: path.clone(),
            thread: report.thread,
            thread_id: report.thread_id,
            event_loop: report.event_loop,
            sent_ms: utc_ms(a.sent) - t0,
            started_ms: at(&report.started_at),
            finished_ms: at(&report.finished_at),
            answered_ms: utc_ms(a.sent) - t0 + a.ms(),
            injected: index == SLOW_INDEX,
        });
        answers.push(a);
    }
    Ok((
        TimelineScenario {
            name: sc.name.to_owned(),
            requests: out,
            culprit: None,
        },
        answers,
    ))
}

pub(crate) async fn run(stack: &Stack, pace: Pace) -> Result<ExperimentOutcome, StackError> {
    let slow: u64 = if pace.quick { 500 } else { 1000 };
    let scenarios = [
        Scenario {
            name: "threadpool: a blocking sleep on a pool thread (FastAPI `def` + time.sleep)",
            base: stack.worker_threadpool.clone(),
            slow_path: format!("/work/io?ms={slow}"),
        },
        Scenario {
            name: "async: a blocking sleep in the async handler (`async def` + time.sleep)",
            base: stack.worker_async.clone(),
            slow_path: format!("/work/block?ms={slow}"),
        },
        Scenario {
            name: "async: an awaited sleep (`async def` + await asyncio.sleep)",
            base: stack.worker_async.clone(),
            slow_path: format!("/work/io?ms={slow}"),
        },
    ];
    let delayed = slow as f64 / 2.0;
    let mut timelines = Vec::new();
    let mut checks = Vec::new();
    for (n, sc) in scenarios.iter().enumerate() {
        let since = Utc::now();
        let victims_before = caught::victims(stack, &stack.async_admin, "/work/block").await?;
        let (mut timeline, answers) = run_scenario(stack, sc).await?;
        let slow_req = &timeline.requests[SLOW_INDEX - 1];
        let others = || {
            timeline
                .requests
                .iter()
                .zip(&answers)
                .filter(|(r, _)| !r.injected)
        };
        let slow_others = others().filter(|(_, a)| a.ms() > delayed).count();
        if n == 1 {
            // Requests sent after the blocker onto its event loop wait for it; the others don't.
            let behind: Vec<_> = others()
                .filter(|(r, _)| r.event_loop == slow_req.event_loop && r.index > SLOW_INDEX)
                .collect();
            let behind_delayed = behind.iter().filter(|(_, a)| a.ms() > delayed).count();
            let elsewhere_delayed = others()
                .filter(|(r, a)| r.event_loop != slow_req.event_loop && a.ms() > delayed)
                .count();
            checks.push(check::count(
                "async + block: requests behind #5 on its event loop delayed by ≈ the sleep",
                &format!("all {} of them", behind.len()),
                behind_delayed,
                !behind.is_empty() && behind_delayed == behind.len(),
                &format!("each > {}", check::ms(delayed)),
            ));
            // The watchdog took #5's stack while it blocked: the line of code they waited for.
            let wait = Duration::from_secs(if pace.quick { 10 } else { 20 });
            let mut culprit =
                caught::culprit(stack, &stack.async_admin, "/work/block", since, wait).await?;
            if let Some(c) = culprit.as_mut() {
                let after = caught::victims(stack, &stack.async_admin, "/work/block").await?;
                c.victims = Some(after - victims_before);
            }
            // The function's path, or (a release build's inlined frames have short names)
            // its file and line.
            let top_app = culprit
                .as_ref()
                .and_then(|c| c.frames.iter().find(|f| f.in_app))
                .map(|f| match (&f.file, f.line) {
                    (Some(file), Some(line)) if !f.function.contains("::") => {
                        format!(
                            "{} ({}:{line})",
                            f.function,
                            file.rsplit("/src/").next().unwrap_or(file)
                        )
                    }
                    _ => f.function.clone(),
                });
            let in_work = |f: &str| f.starts_with("worker::work") || f.contains("(work.rs:");
            checks.push(Check {
                label: "async + block: #5's stack caught while it blocked".to_owned(),
                predicted: "sleep, in worker::work".to_owned(),
                measured: match (&culprit, &top_app) {
                    (Some(c), Some(f)) => format!("{}, in {f}", c.classification),
                    (Some(c), None) => format!("{}, no in-app frame", c.classification),
                    (None, _) => "nothing caught (is stall capture on?)".to_owned(),
                },
                tolerance: "classification and top in-app frame".to_owned(),
                pass: culprit
                    .as_ref()
                    .is_some_and(|c| c.classification == "sleep")
                    && top_app.as_deref().is_some_and(in_work),
            });
            timeline.culprit = culprit;
            checks.push(check::count(
                "async + block: requests on other event loops delayed",
                "0",
                elsewhere_delayed,
                elsewhere_delayed == 0,
                &format!("none > {}", check::ms(delayed)),
            ));
        } else {
            let label = if n == 0 {
                "threadpool: requests other than #5 delayed"
            } else {
                "async + io: requests other than #5 delayed"
            };
            checks.push(check::count(
                label,
                "0",
                slow_others,
                slow_others == 0,
                &format!("none > {}", check::ms(delayed)),
            ));
        }
        let slow_ms = answers[SLOW_INDEX - 1].ms();
        checks.push(check::near(
            &format!("{}: #5 itself", short(n)),
            slow as f64,
            slow_ms,
            0.95,
            1.6,
        ));
        timelines.push(timeline);
    }
    let passed = checks.iter().all(|c| c.pass);
    Ok(ExperimentOutcome {
        name: "blocking".to_owned(),
        title: "A blocking call in an async handler stalls its event loop".to_owned(),
        seed: Some("002".to_owned()),
        prediction: format!(
            "Ten requests 20 ms apart, the fifth sleeping {slow} ms. Thread pool: only the fifth is slow. \
             Blocking sleep in an async handler: every request on its event loop waits ≈ {slow} ms. \
             Awaited sleep: nobody waits."
        ),
        checks,
        passed,
        data: ExperimentData::Timeline {
            scenarios: timelines,
        },
    })
}

fn short(n: usize) -> &'static str {
    ["threadpool", "async + block", "async + io"][n]
}

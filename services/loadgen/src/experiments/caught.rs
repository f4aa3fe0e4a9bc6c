//! What the worker's stall watchdog caught during a scenario: the culprit's stack from
//! `/debug/stalls` on its admin port, and the requests its metrics count as delayed by it.
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::stack::{Stack, StackError};
use crate::model::{CulpritFrame, CulpritStack};

/// The newest symbolized stall of `route` that started after `since`, waiting up to `wait`
/// for the worker to symbolize it; `None` if the worker has no `/debug/stalls` (stall layer
/// off) or caught nothing.
pub(crate) async fn culprit(
    stack: &Stack,
    admin: &str,
    route: &str,
    since: DateTime<Utc>,
    wait: Duration,
) -> Result<Option<CulpritStack>, StackError> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let answer = stack.get(&format!("{admin}/debug/stalls")).await?;
        if answer.status == 404 {
            return Ok(None);
        }
        let found = answer.body["stalls"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["route"] == route && started_after(s, since));
        match found {
            Some(s) if s["symbolized"] == true => return Ok(Some(parse(s))),
            _ if tokio::time::Instant::now() >= deadline => {
                return Ok(found.map(parse));
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// `loopscope_event_loop_delayed_requests_total{culprit=route}` now (0 when absent).
pub(crate) async fn victims(stack: &Stack, admin: &str, route: &str) -> Result<f64, StackError> {
    Ok(stack
        .metric(
            admin,
            "loopscope_event_loop_delayed_requests_total",
            &[("culprit", route)],
        )
        .await?
        .unwrap_or(0.0))
}

fn started_after(stall: &Value, since: DateTime<Utc>) -> bool {
    stall["started_at"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        // The worker's clock against ours, and millisecond rounding: a second of slack.
        .is_some_and(|t| t.with_timezone(&Utc) >= since - chrono::Duration::seconds(1))
}

fn parse(s: &Value) -> CulpritStack {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    CulpritStack {
        route: text(&s["route"]).unwrap_or_default(),
        request_id: text(&s["request_id"]),
        classification: text(&s["classification"]).unwrap_or_else(|| "unknown".into()),
        blocked_ms: s["blocked_ms"].as_f64(),
        victims: None,
        frames: s["frames"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| CulpritFrame {
                function: text(&f["function"]).unwrap_or_default(),
                file: text(&f["file"]),
                line: f["line"].as_u64().and_then(|l| u32::try_from(l).ok()),
                in_app: f["in_app"] == true,
            })
            .collect(),
    }
}

//! What the worker's stall watchdog caught during a scenario: the culprit's stack from
//! `/debug/stalls` on its admin port, and the requests its metrics count as delayed by it.
use std::time::Duration;

use chrono::{DateTime, Utc};
use contract::{Stall, StallsView};

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
        let url = format!("{admin}/debug/stalls");
        let answer = stack.get(&url).await?;
        if answer.status == 404 {
            return Ok(None);
        }
        let view: StallsView =
            serde_json::from_value(answer.body).map_err(|e| StackError::Request {
                url: url.clone(),
                detail: format!("not a /debug/stalls answer: {e}"),
            })?;
        let found = view
            .stalls
            .into_iter()
            .find(|s| s.route.as_deref() == Some(route) && started_after(s, since));
        match found {
            Some(s) if s.symbolized => return Ok(Some(culprit_stack(s))),
            _ if tokio::time::Instant::now() >= deadline => {
                return Ok(found.map(culprit_stack));
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

fn started_after(stall: &Stall, since: DateTime<Utc>) -> bool {
    DateTime::parse_from_rfc3339(&stall.started_at)
        .ok()
        // The worker's clock against ours, and millisecond rounding: a second of slack.
        .is_some_and(|t| t.with_timezone(&Utc) >= since - chrono::Duration::seconds(1))
}

fn culprit_stack(s: Stall) -> CulpritStack {
    CulpritStack {
        route: s.route.unwrap_or_default(),
        request_id: s.request_id,
        classification: s.classification,
        blocked_ms: s.blocked_ms,
        victims: None,
        frames: s
            .frames
            .into_iter()
            .map(|f| CulpritFrame {
                function: f.function,
                file: f.file,
                line: f.line,
                in_app: f.in_app,
            })
            .collect(),
    }
}

//! The worker's `GET /debug/stalls` (admin port): the stalls its watchdog caught, with their
//! stacks, and the polls blocked right now. loadgen's experiments read the culprit from it.
use serde::{Deserialize, Serialize};

/// What `/debug/stalls` answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StallsView {
    /// `--stall-capture-ms`: a poll running this long has its stack taken; `None` when off.
    pub capture_threshold_ms: Option<u64>,
    /// `--stall-threshold-ms`: a poll running this long counts as a blocked event loop.
    pub blocked_threshold_ms: u64,
    /// Polls running longer than the report threshold now, captured or not yet.
    pub running: Vec<RunningPoll>,
    /// Newest first.
    pub stalls: Vec<Stall>,
}

/// A poll running right now past the report threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunningPoll {
    /// The event loop's label, `"0"` … `"N-1"`.
    pub worker: String,
    pub thread_id: i32,
    pub running_ms: f64,
}

/// One stall: the request whose poll blocked its event loop, and where it blocked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stall {
    /// The route pattern (`/work/block`); `None` before routing.
    pub route: Option<String>,
    pub method: Option<String>,
    pub worker: String,
    pub thread_id: i32,
    pub request_id: Option<String>,
    pub trace_id: Option<String>,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// Still running now (the poll that stalled has not returned).
    pub in_progress: bool,
    /// How long the poll had run when the stack was taken.
    pub captured_after_ms: Option<f64>,
    /// How long it has run so far (in progress) or in total (finished).
    pub running_ms: f64,
    /// The whole poll, once it returned.
    pub blocked_ms: Option<f64>,
    /// Why the thread was stuck: `cpu`, `starved`, `sleep`, `lock`, `io` or `unknown`.
    pub classification: String,
    /// Whether the stack was taken: `captured`, `unsupported`, `failed`, `rate_limited`
    /// or `off`.
    pub capture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_error: Option<String>,
    /// False while the stack is being symbolized.
    pub symbolized: bool,
    /// Innermost first: the blocking call, then its callers.
    pub frames: Vec<StallFrame>,
}

/// One frame of a stall's stack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StallFrame {
    pub function: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// Code of loopscope's own crates, as opposed to std, tokio, actix…
    pub in_app: bool,
    /// Hex, for matching against other tools.
    pub address: String,
}

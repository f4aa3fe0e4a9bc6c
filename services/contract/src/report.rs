//! The worker's answer to a work request (`GET /work/{kind}`), as the gateway, loadgen and
//! the tests read it. The worker writes it by hand for speed (services/worker/src/report.rs);
//! its tests check that what it writes reads back as this type.
use serde::{Deserialize, Serialize};

use crate::{Handling, Kind};

// Unknown fields refused: a member the worker starts writing must be added here, or every
// reader's test fails. Reading only; the worker's writer does not use this type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkReport {
    /// `worker`.
    pub service: String,
    pub handling: Handling,
    pub kind: Kind,
    /// The `ms` asked for; `None` for a call that left it to the backend.
    pub requested_ms: Option<u64>,
    /// The thread the work ran on: an actix worker (`actix-rt|system:0|arbiter:1`) or a
    /// blocking-pool thread.
    pub thread: String,
    pub thread_id: i64,
    /// The actix worker (event loop) that accepted the request: `"0"` to `"N-1"`.
    pub event_loop: String,
    pub pid: u32,
    /// How long the job waited for a pool thread.
    pub queued_ms: f64,
    /// How long the work took, waits included.
    pub service_ms: f64,
    /// RFC 3339 UTC with milliseconds.
    pub started_at: String,
    pub finished_at: String,
    /// The backend's answer, for `call`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<serde_json::Value>,
}

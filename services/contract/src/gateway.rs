//! The gateway's own answers: the comparison of both modes (`GET /api/compare`) and the
//! fan-out summary (`GET /api/fanout`). The proxy routes answer with the worker's body as is.
//!
//! Fields are in the order they have always been written (alphabetical, as `json!` wrote
//! them), so the bytes on the wire did not change when these types replaced it.
use serde::{Deserialize, Serialize};

use crate::{FanoutMode, Handling, Kind, WorkReport};

/// `GET /api/compare`: one job on each mode at once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compare {
    #[serde(rename = "async")]
    pub async_side: CompareSide,
    /// From the first call sent to the last answer, ms.
    pub elapsed_ms: f64,
    pub kind: Kind,
    /// The worker path both were asked (with its query).
    pub path: String,
    pub threadpool: CompareSide,
}

/// One mode's answer within a [`Compare`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareSide {
    pub elapsed_ms: f64,
    /// The worker's answer as it sent it: a [`WorkReport`] on success, an
    /// [`ErrorBody`](crate::ErrorBody) otherwise. Kept as sent (not re-encoded through the
    /// type, which would write `0` as `0.0`); [`CompareSide::report`] reads it.
    pub result: serde_json::Value,
    /// The worker's HTTP status.
    pub status: u16,
}

impl CompareSide {
    /// The worker's answer as a work report (an error when it was not one).
    pub fn report(&self) -> Result<WorkReport, serde_json::Error> {
        WorkReport::deserialize(&self.result)
    }
}

/// `GET /api/fanout`: n calls to one mode; every call's outcome, in call order. Also the
/// `details` of the 502/504 error body when some calls failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FanoutSummary {
    pub calls: Vec<FanoutCall>,
    /// The whole fan-out, ms.
    pub elapsed_ms: f64,
    pub failed: usize,
    pub handling: Handling,
    /// The most calls in flight, for `mode=limited`; `null` otherwise.
    pub limit: Option<usize>,
    pub mode: FanoutMode,
    pub n: usize,
    pub ok: usize,
    pub path: String,
}

/// One call of a fan-out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FanoutCall {
    pub elapsed_ms: f64,
    /// Why the call failed; absent on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub index: usize,
    /// When the call was sent, from the start of the fan-out; absent if it never was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at_ms: Option<f64>,
    /// The worker's status; absent when no answer came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The thread the worker ran the call on, from its report; absent on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<i64>,
}

//! The backend's answer to `GET /query`.
use serde::{Deserialize, Serialize};

use crate::Distribution;

/// What the backend did for one query. A failure on purpose (`error_rate`) is a 503 with the
/// same report plus `error` and `message`, so the caller still sees what it waited for.
///
/// Fields are in the order they have always been written (alphabetical, as `json!` wrote
/// them), so the bytes on the wire did not change when this type replaced it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendReport {
    pub dist: Distribution,
    /// `injected_error` on a failure on purpose; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// RFC 3339 UTC with milliseconds.
    pub finished_at: String,
    /// The latency drawn for this query, in ms (microsecond precision).
    pub latency_ms: f64,
    /// The median asked for (`ms`, or `--latency-ms`).
    pub median_ms: u64,
    /// Why it failed, with a failure on purpose; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub pid: u32,
    /// `backend`.
    pub service: String,
    pub started_at: String,
}

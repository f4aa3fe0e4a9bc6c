//! The probes' answers (`/healthz`, `/readyz` on the app and admin ports) and the worker's
//! `/fault/status/{code}` answer.
use serde::{Deserialize, Serialize};

/// `{"status": "ready"}`; `message` only says why the admin port's `/readyz` is
/// `unresponsive`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    // Before `status`: the order `json!` wrote them in (alphabetical), kept on the wire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub status: ProbeStatus,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeStatus {
    /// `/healthz`: the process answers (200).
    Ok,
    /// `/readyz`: send traffic (200).
    Ready,
    /// `/readyz`: shutting down, stop sending (503).
    Draining,
    /// The admin port's `/readyz`: the app port did not answer its `/healthz` (503).
    Unresponsive,
}

impl Probe {
    pub const fn new(status: ProbeStatus) -> Self {
        Self {
            message: None,
            status,
        }
    }
}

/// The worker's `GET /fault/status/{code}`: the status it was asked for, as a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultStatus {
    pub status: u16,
}

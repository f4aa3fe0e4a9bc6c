//! The JSON body of every error answer, from every service and from the HTTP layer itself.
use serde::{Deserialize, Serialize};

/// `{"error": "bad_request", "message": "...", "param": "ms", "request_id": "..."}`.
/// A 5xx never echoes internals in `message`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// A stable code, snake_case: `bad_request`, `not_found`, `method_not_allowed`,
    /// `upstream_timeout`, `upstream_unavailable`, `shutting_down`, `overloaded`, ...
    pub error: String,
    /// For a person; may change between versions.
    pub message: String,
    /// The query or path parameter at fault, for `bad_request`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    /// The request's id (its `x-request-id` header); absent only outside a request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// What a partly failed operation did achieve (the calls of a fan-out: a
    /// [`FanoutSummary`](crate::FanoutSummary)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

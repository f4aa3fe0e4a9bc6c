//! How a call to another service failed, typed: what the client's 502/504 says, what Sentry
//! groups by, and the `outcome` label.
use std::panic::Location;

use serde_json::Value;

/// A failed call. The messages are what a client may read (502/504 bodies) and what Sentry
/// groups by: they name the dependency and how it failed, never a URL, a query or an OS error
/// text (`detail` keeps that, for the log). `at`: the line of our code that made the call.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("{upstream} did not answer within {timeout_ms} ms")]
    Timeout {
        upstream: &'static str,
        timeout_ms: u64,
        at: &'static Location<'static>,
    },
    #[error("{upstream} is unreachable ({reason})")]
    Unreachable {
        upstream: &'static str,
        /// `connection refused`, `connection failed`, `name not resolved`.
        reason: &'static str,
        detail: String,
        at: &'static Location<'static>,
    },
    #[error("{upstream} answered {status} with an unusable body ({reason})")]
    BadBody {
        upstream: &'static str,
        status: u16,
        /// `not JSON`, `too large`, `cut short`, or `a redirect, not followed`.
        reason: &'static str,
        at: &'static Location<'static>,
    },
    #[error("{upstream} failed with status {status}")]
    Failed {
        upstream: &'static str,
        status: u16,
        body: Value,
        at: &'static Location<'static>,
    },
}

impl UpstreamError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }

    /// The `outcome` label and Sentry tag.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => "timeout",
            Self::Unreachable { .. } => "unreachable",
            Self::BadBody { .. } => "bad_body",
            Self::Failed { .. } => "server_error",
        }
    }

    /// The exception type of its Sentry event.
    pub fn sentry_type(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => "UpstreamTimeout",
            Self::Unreachable { .. } => "UpstreamUnreachable",
            Self::BadBody { .. } => "UpstreamBadBody",
            Self::Failed { .. } => "UpstreamBadStatus",
        }
    }

    pub fn upstream(&self) -> &'static str {
        match self {
            Self::Timeout { upstream, .. }
            | Self::Unreachable { upstream, .. }
            | Self::BadBody { upstream, .. }
            | Self::Failed { upstream, .. } => upstream,
        }
    }

    /// Where our code made the call that failed.
    pub fn location(&self) -> &'static Location<'static> {
        match self {
            Self::Timeout { at, .. }
            | Self::Unreachable { at, .. }
            | Self::BadBody { at, .. }
            | Self::Failed { at, .. } => at,
        }
    }
}

impl UpstreamError {
    /// The low-level cause (OS error, URL), for the log only.
    pub fn detail(&self) -> &str {
        match self {
            Self::Unreachable { detail, .. } => detail,
            _ => "",
        }
    }
}

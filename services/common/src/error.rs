//! The one error type handlers return. Every error leaves as JSON,
//! `{"error": "bad_request", "message": "...", "param": "ms", "request_id": "..."}`,
//! and a 5xx never echoes internals.
use std::panic::Location;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use contract::ErrorBody;

use crate::upstream::UpstreamError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A query or path parameter is missing, malformed or out of range.
    #[error("{message}")]
    BadRequest {
        param: &'static str,
        message: String,
    },
    #[error("no route for {method} {path}")]
    NotFound { method: String, path: String },
    /// A call to another service failed: 502 (refused, bad answer) or 504 (timeout).
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// A fault asked for on purpose (`/fault/error`), so Sentry has something to capture.
    /// `at`: the line that raised it, the top frame of its Sentry event.
    #[error("injected fault: {message}")]
    Injected {
        message: String,
        at: &'static Location<'static>,
    },
    #[error("the server is shutting down")]
    ShuttingDown,
    /// Too much work accepted already (a full blocking-pool queue): 503 with `Retry-After`.
    #[error(transparent)]
    Overloaded(crate::shed::Overloaded),
}

impl ApiError {
    pub fn bad(param: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            param,
            message: message.into(),
        }
    }

    /// An injected fault, raised at the caller's line.
    #[track_caller]
    pub fn injected(message: impl Into<String>) -> Self {
        Self::Injected {
            message: message.into(),
            at: Location::caller(),
        }
    }

    /// The exception type of its Sentry event: one per kind of failure, so Sentry groups
    /// timeouts apart from refusals and bad answers.
    pub fn sentry_type(&self) -> &'static str {
        match self {
            Self::BadRequest { .. } => "BadRequest",
            Self::NotFound { .. } => "NotFound",
            Self::Upstream(e) => e.sentry_type(),
            Self::Injected { .. } => "InjectedFault",
            Self::ShuttingDown => "ShuttingDown",
            Self::Overloaded(_) => "Overloaded",
        }
    }

    /// The line of our code the error was raised at, when known.
    pub fn location(&self) -> Option<&'static Location<'static>> {
        match self {
            Self::Upstream(e) => Some(e.location()),
            Self::Injected { at, .. } => Some(at),
            _ => None,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { .. } => "bad_request",
            Self::NotFound { .. } => "not_found",
            Self::Upstream(e) if e.is_timeout() => "upstream_timeout",
            Self::Upstream(_) => "upstream_unavailable",
            Self::Injected { .. } => "injected_fault",
            Self::ShuttingDown => "shutting_down",
            Self::Overloaded(o) => o.code,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Upstream(e) if e.is_timeout() => StatusCode::GATEWAY_TIMEOUT,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::Injected { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ShuttingDown | Self::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Overloaded(o) = self {
            return o.error_response();
        }
        let param = match self {
            Self::BadRequest { param, .. } => Some(*param),
            _ => None,
        };
        let mut res = json_error(
            self.status_code(),
            self.code(),
            self.to_string(),
            param,
            None,
        );
        // What the Sentry layer reports; only a 5xx is reported, and not a shutdown.
        if matches!(self, Self::ShuttingDown) {
            res.extensions_mut().insert(NotReported);
        } else if res.status().is_server_error() {
            res.extensions_mut().insert(Raised(self.sentry_summary()));
        }
        res
    }
}

/// What the Sentry layer needs of the `ApiError` behind a response (`with_details` hides the
/// type inside an actix `InternalError`, so the error travels in the response's extensions).
#[derive(Clone, Debug)]
pub(crate) struct Raised(pub(crate) ErrorSummary);

/// On a 5xx that is no bug (load shed, shutting down): the Sentry layer sends no event.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NotReported;

#[derive(Clone, Debug)]
pub(crate) struct ErrorSummary {
    pub(crate) ty: &'static str,
    pub(crate) value: String,
    pub(crate) at: Option<&'static Location<'static>>,
    /// `upstream` and `outcome` of an upstream failure.
    pub(crate) upstream: Option<(&'static str, &'static str)>,
}

impl ApiError {
    fn sentry_summary(&self) -> ErrorSummary {
        ErrorSummary {
            ty: self.sentry_type(),
            value: self.to_string(),
            at: self.location(),
            upstream: match self {
                Self::Upstream(e) => Some((e.upstream(), e.outcome())),
                _ => None,
            },
        }
    }
}

impl ApiError {
    /// This error's response with `details` attached (a reply body of the contract); the
    /// error itself stays attached too, so the Sentry layer still captures a 5xx.
    pub fn with_details(self, details: &impl serde::Serialize) -> actix_web::Error {
        let mut response = json_error(
            self.status_code(),
            self.code(),
            self.to_string(),
            None,
            serde_json::to_value(details).ok(),
        );
        response
            .extensions_mut()
            .insert(Raised(self.sentry_summary()));
        actix_web::error::InternalError::from_response(self, response).into()
    }
}

/// A JSON error response carrying the request id of the request being served.
pub fn json_error(
    status: StatusCode,
    code: &str,
    message: String,
    param: Option<&str>,
    details: Option<serde_json::Value>,
) -> HttpResponse {
    HttpResponse::build(status).json(ErrorBody {
        error: code.to_owned(),
        message,
        param: param.map(str::to_owned),
        request_id: crate::request_tracking::current_request_id(),
        details,
    })
}

/// An error and its causes on one line: reqwest's top-level message is "error sending
/// request"; the causes say why.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

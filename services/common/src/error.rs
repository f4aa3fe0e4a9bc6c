//! The one error type handlers return. Every error leaves as JSON,
//! `{"error": "bad_request", "message": "...", "param": "ms", "request_id": "..."}`,
//! and a 5xx never echoes internals.
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

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
    #[error("injected fault: {0}")]
    Injected(String),
    #[error("the server is shutting down")]
    ShuttingDown,
    /// Too much work accepted already (a full blocking-pool queue): 503 with `Retry-After`.
    #[error(transparent)]
    Overloaded(crate::shed::Overloaded),
}

#[derive(Serialize)]
pub struct ErrorBody<'a> {
    pub error: &'a str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub param: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// What a partly failed operation did achieve (e.g. the calls of a fan-out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    pub fn bad(param: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            param,
            message: message.into(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { .. } => "bad_request",
            Self::NotFound { .. } => "not_found",
            Self::Upstream(e) if e.is_timeout() => "upstream_timeout",
            Self::Upstream(_) => "upstream_unavailable",
            Self::Injected(_) => "injected_fault",
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
            Self::Injected(_) => StatusCode::INTERNAL_SERVER_ERROR,
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
        json_error(
            self.status_code(),
            self.code(),
            self.to_string(),
            param,
            None,
        )
    }
}

impl ApiError {
    /// This error's response with `details` attached; the error itself stays attached too,
    /// so sentry-actix still captures a 5xx.
    pub fn with_details(self, details: serde_json::Value) -> actix_web::Error {
        let response = json_error(
            self.status_code(),
            self.code(),
            self.to_string(),
            None,
            Some(details),
        );
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
        error: code,
        message,
        param,
        request_id: crate::middleware::current_request_id(),
        details,
    })
}

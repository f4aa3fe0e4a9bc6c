//! Load shedding answers: a 503 with a JSON body and `Retry-After`, for a full blocking-pool
//! queue or a gateway at its in-flight limit. Shedding is the server's state, not the
//! client's fault, hence 503 rather than 429 (which says "you, slow down").
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::{HttpResponse, ResponseError};

use crate::error::json_error;

/// Too much work already accepted; the client may retry after `retry_after`.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Overloaded {
    /// The `error` field of the body, e.g. `pool_queue_full`.
    pub code: &'static str,
    pub message: String,
    pub retry_after: Duration,
}

impl ResponseError for Overloaded {
    fn status_code(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = json_error(
            self.status_code(),
            self.code,
            self.message.clone(),
            None,
            None,
        );
        // Whole seconds, at least 1: what HTTP's delta-seconds allows.
        let secs = self.retry_after.as_secs_f64().ceil().max(1.0) as u64;
        res.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
        // Shedding is the server working as designed, not a bug to triage: a flood would
        // otherwise send one Sentry event per rejected request.
        res.extensions_mut().insert(crate::error::NotReported);
        res
    }
}

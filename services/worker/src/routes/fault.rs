//! Faults on purpose, so Sentry has something to show.
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use common::ApiError;
use common::blocking::run_blocking;
use contract::{FaultStatus, Handling};

use super::WorkerState;

/// A 500 with an error attached: the Sentry layer captures it, with this line as its frame.
pub(crate) async fn error() -> Result<HttpResponse, ApiError> {
    Err(ApiError::injected("GET /fault/error was called"))
}

/// A real panic where this worker does its work: on the event loop (`async`), or in a job on
/// the blocking pool (`threadpool`). Either way the panic hook reports it with the request,
/// the guard middleware answers 500 JSON and the worker keeps serving.
pub(crate) async fn panic(state: web::Data<WorkerState>) -> Result<HttpResponse, ApiError> {
    match state.handling {
        Handling::Async => injected_panic(),
        Handling::Threadpool => {
            run_blocking(&state.instruments, injected_panic)
                .await?
                .value
        }
    }
}

fn injected_panic() -> ! {
    panic!("injected panic: GET /fault/panic was called");
}

/// Answers with the status asked for (200 to 599), with a JSON body except where HTTP forbids
/// one (204, 205, 304).
pub(crate) async fn status(code: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let code = code
        .parse::<u16>()
        .ok()
        .filter(|c| (200..=599).contains(c))
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or_else(|| {
            ApiError::bad(
                "code",
                format!("code must be an HTTP status between 200 and 599, got `{code}`"),
            )
        })?;
    if matches!(code.as_u16(), 204 | 205 | 304) {
        return Ok(HttpResponse::build(code).finish());
    }
    Ok(HttpResponse::build(code).json(FaultStatus {
        status: code.as_u16(),
    }))
}

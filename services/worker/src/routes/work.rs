use actix_web::dev::HttpServiceFactory;
use actix_web::{HttpResponse, web};
use common::{ApiError, Params, get};
use contract::Kind;

use super::WorkerState;
use crate::work::perform;

/// `GET /work/io`, `/work/cpu`, `/work/call`, `/work/block`: each its own route, so every
/// metric, log line and Sentry event names the one that blocked.
pub(crate) fn route(kind: Kind) -> impl HttpServiceFactory + 'static {
    get(
        kind.worker_path(),
        move |state: web::Data<WorkerState>, params: Params| work(state, kind, params),
    )
}

/// `GET /work/{kind}` for any other kind: the 400 that names the valid ones.
pub(crate) async fn unknown_kind(kind: web::Path<String>) -> Result<HttpResponse, ApiError> {
    common::params::path_choice::<Kind>("kind", &kind)?;
    Err(ApiError::NotFound {
        method: "GET".to_owned(),
        path: format!("/work/{kind}"),
    })
}

/// `?ms=N`: `ms` is required, except for `call`, where it is the backend's latency and
/// defaults to the backend's own setting.
async fn work(
    state: web::Data<WorkerState>,
    kind: Kind,
    mut params: Params,
) -> Result<HttpResponse, ApiError> {
    let ms = if kind.ms_optional() {
        params.optional_int("ms", 0..=state.max_ms)?
    } else {
        Some(params.int("ms", None, 0..=state.max_ms)?)
    };
    params.finish()?;
    Ok(perform(&state, kind, ms).await?.into_response())
}

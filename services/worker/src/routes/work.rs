use actix_web::{HttpResponse, web};
use common::{ApiError, Params};

use super::WorkerState;
use crate::work::{Kind, perform};

/// `GET /work/{kind}?ms=N`: `ms` is required, except for `call`, where it is the backend's
/// latency and defaults to the backend's own setting.
pub(crate) async fn work(
    state: web::Data<WorkerState>,
    kind: web::Path<String>,
    mut params: Params,
) -> Result<HttpResponse, ApiError> {
    let kind = Kind::parse(&kind)?;
    let ms = match kind {
        Kind::Call => params.optional_int("ms", 0..=state.max_ms)?,
        _ => Some(params.int("ms", None, 0..=state.max_ms)?),
    };
    params.finish()?;
    Ok(perform(&state, kind, ms).await?.into_response())
}

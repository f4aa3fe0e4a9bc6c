//! Routes the tests need and users do not (`--enable-test-routes`, hidden).
use std::sync::Mutex;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use common::{ApiError, Params};
use serde_json::json;

use super::WorkerState;

static CONTENDED: Mutex<()> = Mutex::new(());

/// `GET /test/lock?ms=N`: another thread holds a mutex for N ms and this handler waits for it
/// on the event loop: a lock held across a poll, what the stall classifier calls `lock`.
pub(crate) async fn lock(
    state: web::Data<WorkerState>,
    mut params: Params,
) -> Result<HttpResponse, ApiError> {
    let ms = params.int("ms", None, 0..=state.max_ms)?;
    params.finish()?;
    let (held, taken) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _guard = CONTENDED.lock().unwrap_or_else(|p| p.into_inner());
        let _ = held.send(());
        // A plain thread holding the lock, not an event loop.
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(ms));
    });
    // Blocking on purpose, twice: wait for the holder, then for the lock.
    let _ = taken.recv_timeout(Duration::from_secs(5));
    drop(CONTENDED.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(HttpResponse::Ok().json(json!({"waited_for_lock_ms": ms})))
}

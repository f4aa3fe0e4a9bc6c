//! What one public request may order. The gateway is the public entry, and before these
//! limits one `/api/fanout?n=100&kind=cpu&ms=50` burnt 5 CPU-seconds on a worker, `ms=60000`
//! was accepted and four `block` requests froze a worker for 11.7 s. Now:
//! - `ms` is at most what the gateway can wait for (its upstream timeout less a margin);
//! - CPU and block work (the kinds that hold a thread) is summed over the calls a request
//!   makes (n for a fan-out, 2 for compare) and refused past `--max-work-ms`;
//! - at most `--max-in-flight` public requests are served at once, the rest get a 503 with
//!   `Retry-After`, so a flood queues nowhere.
use std::future::{Ready, ready};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use common::shed::Overloaded;
use common::{ApiError, Params};
use contract::Kind;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::Cli;
use crate::routes::GatewayState;

/// Time left to a worker beyond the work itself: its queueing, its answer, the network.
const MARGIN_MS: u64 = 1_000;

pub(crate) struct Budget {
    /// The largest `ms` accepted, and why it is that: the flag that sets it.
    max_ms: u64,
    max_ms_reason: String,
    max_work_ms: u64,
    in_flight: Arc<Semaphore>,
    max_in_flight: u32,
}

impl Budget {
    pub(crate) fn new(cli: &Cli) -> Self {
        let timeout = cli.upstream_timeout_ms;
        let wait_limit = timeout.saturating_sub(MARGIN_MS).max(timeout / 2);
        let (max_ms, max_ms_reason) = if wait_limit < cli.server.max_ms {
            (
                wait_limit,
                format!(
                    "what the gateway can wait for: --upstream-timeout-ms {timeout} less {} ms for the call itself",
                    timeout - wait_limit
                ),
            )
        } else {
            (cli.server.max_ms, format!("--max-ms {}", cli.server.max_ms))
        };
        Self {
            max_ms,
            max_ms_reason,
            max_work_ms: cli.max_work_ms,
            in_flight: Arc::new(Semaphore::new(cli.max_in_flight as usize)),
            max_in_flight: cli.max_in_flight,
        }
    }

    /// The worker's query for `kind` (`?ms=N`, or nothing for `call` without `ms`), checked
    /// against the `ms` limit and, for a request making `calls` calls, the work budget.
    pub(crate) fn work_query(
        &self,
        params: &mut Params,
        kind: Kind,
        calls: usize,
    ) -> Result<String, ApiError> {
        let limit = |e: ApiError| match e {
            ApiError::BadRequest { param, message } => ApiError::BadRequest {
                param,
                message: format!("{message}; the limit is {}", self.max_ms_reason),
            },
            e => e,
        };
        let ms = if kind.ms_optional() {
            params.optional_int("ms", 0..=self.max_ms).map_err(limit)?
        } else {
            Some(params.int("ms", None, 0..=self.max_ms).map_err(limit)?)
        };
        let Some(ms) = ms else {
            return Ok(String::new());
        };
        let work = ms.saturating_mul(calls as u64);
        if kind.spends_worker_time() && work > self.max_work_ms {
            let what = if calls == 1 {
                format!("{ms} ms of {kind}")
            } else {
                format!("{calls} calls x {ms} ms of {kind} = {work} ms")
            };
            return Err(ApiError::bad(
                "ms",
                format!(
                    "{what} is over the work budget of one request, {} ms (--max-work-ms)",
                    self.max_work_ms
                ),
            ));
        }
        Ok(format!("?ms={ms}"))
    }
}

/// A place among the public requests in flight, held for the whole request: extract it
/// first in a handler, so an overloaded gateway sheds before doing anything else.
pub(crate) struct Admitted(#[allow(dead_code)] OwnedSemaphorePermit);

impl FromRequest for Admitted {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(state) = req.app_data::<web::Data<GatewayState>>() else {
            return ready(Err(actix_web::error::ErrorInternalServerError(
                "gateway state missing",
            )));
        };
        let budget = &state.budget;
        ready(
            budget
                .in_flight
                .clone()
                .try_acquire_owned()
                .map(Admitted)
                .map_err(|_| {
                    Overloaded {
                        code: "overloaded",
                        message: format!(
                            "the gateway is serving its limit of {} requests (--max-in-flight); retry later",
                            budget.max_in_flight
                        ),
                        retry_after: Duration::from_secs(1),
                    }
                    .into()
                }),
        )
    }
}

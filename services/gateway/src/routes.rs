//! The gateway's routes.
use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};
use anyhow::Context as _;
use common::upstream::Upstream;
use common::{ApiError, Params, Telemetry, get_route};
use contract::{Choice, Compare, CompareSide, FanoutMode, FanoutSummary, Handling, Kind};

use crate::Cli;
use crate::budget::{Admitted, Budget};
use crate::fanout::{self, Mode};

pub struct GatewayState {
    client: reqwest::Client,
    worker_async: Upstream,
    worker_threadpool: Upstream,
    pub(crate) budget: Budget,
    max_fanout: usize,
    fanout_deadline: Duration,
}

impl GatewayState {
    fn worker(&self, handling: Handling) -> &Upstream {
        match handling {
            Handling::Async => &self.worker_async,
            Handling::Threadpool => &self.worker_threadpool,
        }
    }
}

pub fn state(cli: &Cli, telemetry: &Telemetry) -> anyhow::Result<web::Data<GatewayState>> {
    for (flag, url) in [
        ("--worker-async-url", &cli.worker_async_url),
        ("--worker-threadpool-url", &cli.worker_threadpool_url),
    ] {
        match reqwest::Url::parse(url) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
            _ => {
                anyhow::bail!("{flag} `{url}` is not an http(s) URL, e.g. http://127.0.0.1:8081");
            }
        }
    }
    if cli.max_work_ms > 0 && cli.max_work_ms < cli.max_fanout as u64 {
        // Not an error: a fan-out of cpu or block then needs ms below 1.
        tracing::warn!(
            max_work_ms = cli.max_work_ms,
            max_fanout = cli.max_fanout,
            "--max-work-ms is below --max-fanout: large cpu/block fan-outs are refused"
        );
    }
    let timeout = Duration::from_millis(cli.upstream_timeout_ms);
    let client = common::upstream::client(timeout).context("cannot build the HTTP client")?;
    let instruments = &telemetry.instruments;
    Ok(web::Data::new(GatewayState {
        client,
        worker_async: Upstream::new(
            "worker-async",
            &cli.worker_async_url,
            timeout,
            instruments.clone(),
        )
        .max_body_bytes(cli.server.upstream_max_body_bytes as usize),
        worker_threadpool: Upstream::new(
            "worker-threadpool",
            &cli.worker_threadpool_url,
            timeout,
            instruments.clone(),
        )
        .max_body_bytes(cli.server.upstream_max_body_bytes as usize),
        budget: Budget::new(cli),
        max_fanout: cli.max_fanout as usize,
        fanout_deadline: Duration::from_millis(cli.fanout_deadline_ms),
    }))
}

pub fn configure(
    state: web::Data<GatewayState>,
) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    move |cfg| {
        cfg.app_data(state.clone())
            .service(get_route("/api/compare", compare))
            .service(get_route("/api/fanout", fanout_route));
        // One route per mode and kind, so metrics, logs and events name the one proxied;
        // the pattern route after them answers 400 for any other mode or kind.
        for &handling in Handling::ALL {
            for &kind in Kind::ALL {
                cfg.service(get_route(
                    &format!("/api/{handling}{}", kind.worker_path()),
                    move |slot: Admitted, state: web::Data<GatewayState>, params: Params| {
                        proxy_to(slot, state, handling, kind, params)
                    },
                ));
            }
        }
        cfg.service(get_route("/api/{handling}/work/{kind}", proxy));
    }
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// `GET /api/compare?kind=io&ms=100`: the same job on both modes at once, both timings back.
async fn compare(
    _slot: Admitted,
    state: web::Data<GatewayState>,
    mut params: Params,
) -> Result<HttpResponse, actix_web::Error> {
    let kind = params.choice("kind", Some(Kind::Io))?;
    // One job on each worker: twice the work.
    let query = state.budget.work_query(&mut params, kind, 2)?;
    params.finish()?;
    let path = format!("{}{query}", kind.worker_path());
    let start = Instant::now();
    let (a, t) = futures_util::join!(
        state.worker_async.get(&state.client, &path),
        state.worker_threadpool.get(&state.client, &path)
    );
    let (a, t) = (a.map_err(ApiError::from)?, t.map_err(ApiError::from)?);
    let both_failed = !(200..300).contains(&a.status) && !(200..300).contains(&t.status);
    let side = |r: &common::upstream::Reply| CompareSide {
        elapsed_ms: millis(r.elapsed),
        result: r.body.clone(),
        status: r.status,
    };
    let body = Compare {
        async_side: side(&a),
        elapsed_ms: millis(start.elapsed()),
        kind,
        path,
        threadpool: side(&t),
    };
    if both_failed {
        // Nothing to compare: the comparison itself failed, and says so in its status.
        let e = a.success(state.worker_async.name).err();
        return Err(e.map_or_else(
            || actix_web::error::ErrorBadGateway("both workers failed"),
            |e| ApiError::Upstream(e).with_details(&body),
        ));
    }
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /api/fanout?n=10&ms=100&mode=limited&limit=5[&handling=async&kind=io]`.
async fn fanout_route(
    _slot: Admitted,
    state: web::Data<GatewayState>,
    mut params: Params,
) -> Result<HttpResponse, actix_web::Error> {
    let n = params.int("n", Some(10), 1..=state.max_fanout)?;
    let mode_name = params.choice("mode", Some(FanoutMode::Concurrent))?;
    let limit = params.optional_int("limit", 1..=state.max_fanout)?;
    let handling = params.choice("handling", Some(Handling::Async))?;
    let kind = params.choice("kind", Some(Kind::Io))?;
    let query = state.budget.work_query(&mut params, kind, n)?;
    params.finish()?;
    let mode = match (mode_name, limit) {
        (FanoutMode::Limited, Some(k)) => Mode::Limited(k),
        (FanoutMode::Limited, None) => {
            return Err(ApiError::bad(
                "limit",
                "mode=limited needs `limit`, the most calls in flight",
            )
            .into());
        }
        (_, Some(_)) => {
            return Err(ApiError::bad("limit", "`limit` applies only to mode=limited").into());
        }
        (FanoutMode::Sequential, None) => Mode::Sequential,
        (FanoutMode::Concurrent, None) => Mode::Concurrent,
    };
    let upstream = state.worker(handling);
    let path = format!("{}{query}", kind.worker_path());
    let start = Instant::now();
    let mut calls = fanout::run(
        mode,
        n,
        upstream,
        &state.client,
        &path,
        state.fanout_deadline,
    )
    .await;
    let elapsed = start.elapsed();
    let failed = calls.iter().filter(|c| c.failure.is_some()).count();
    let first_failure = calls.iter_mut().find_map(|c| c.failure.take());
    let summary = FanoutSummary {
        calls: calls.into_iter().map(|c| c.call).collect(),
        elapsed_ms: millis(elapsed),
        failed,
        handling,
        limit,
        mode: mode_name,
        n,
        ok: n - failed,
        path,
    };
    match first_failure {
        None => Ok(HttpResponse::Ok().json(summary)),
        // Some calls failed: the status says how (502/504), the body keeps every call's outcome.
        Some(e) => Err(ApiError::Upstream(e).with_details(&summary)),
    }
}

/// `GET /api/{handling}/work/{kind}` for a mode or kind with no route of its own: the 400
/// naming the valid ones (valid pairs are served by their own routes, matched first).
async fn proxy(
    slot: Admitted,
    state: web::Data<GatewayState>,
    path: web::Path<(String, String)>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    let (handling, kind) = path.into_inner();
    let handling = common::params::path_choice("handling", &handling)?;
    let kind = common::params::path_choice("kind", &kind)?;
    proxy_to(slot, state, handling, kind, params).await
}

/// `GET /api/{handling}/work/{kind}?ms=N`: one job on one mode; the worker's answer as is.
async fn proxy_to(
    _slot: Admitted,
    state: web::Data<GatewayState>,
    handling: Handling,
    kind: Kind,
    mut params: Params,
) -> Result<HttpResponse, ApiError> {
    let query = state.budget.work_query(&mut params, kind, 1)?;
    params.finish()?;
    let reply = state
        .worker(handling)
        .get(&state.client, &format!("{}{query}", kind.worker_path()))
        .await?;
    // HTTP statuses are 100 to 599; anything else from a worker is a bad answer.
    let status = Some(reply.status)
        .filter(|s| (100..=599).contains(s))
        .and_then(|s| actix_web::http::StatusCode::from_u16(s).ok())
        .unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY);
    Ok(HttpResponse::build(status).json(reply.body))
}

//! The gateway's routes.
use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};
use common::upstream::Upstream;
use common::{ApiError, Params, Telemetry, get};
use serde_json::json;

use crate::Cli;
use crate::fanout::{self, Mode};

const KINDS: &[&str] = &["io", "cpu", "call", "block"];
const HANDLINGS: &[&str] = &["async", "threadpool"];

pub struct GatewayState {
    client: reqwest::Client,
    worker_async: Upstream,
    worker_threadpool: Upstream,
    max_ms: u64,
    max_fanout: usize,
}

impl GatewayState {
    fn worker(&self, handling: &str) -> &Upstream {
        if handling == "threadpool" {
            &self.worker_threadpool
        } else {
            &self.worker_async
        }
    }
}

pub fn state(cli: &Cli, telemetry: &Telemetry) -> Result<web::Data<GatewayState>, String> {
    for (flag, url) in [
        ("--worker-async-url", &cli.worker_async_url),
        ("--worker-threadpool-url", &cli.worker_threadpool_url),
    ] {
        match reqwest::Url::parse(url) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
            _ => {
                return Err(format!(
                    "{flag} `{url}` is not an http(s) URL, e.g. http://127.0.0.1:8081"
                ));
            }
        }
    }
    let timeout = Duration::from_millis(cli.upstream_timeout_ms);
    let client = common::upstream::client(timeout)
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
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
        max_ms: cli.server.max_ms,
        max_fanout: cli.max_fanout as usize,
    }))
}

pub fn configure(
    state: web::Data<GatewayState>,
) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    move |cfg| {
        cfg.app_data(state.clone())
            .service(get("/api/compare", compare))
            .service(get("/api/fanout", fanout_route))
            .service(get("/api/{handling}/work/{kind}", proxy));
    }
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// `ms` as the worker reads it: required, except for `call`.
fn work_query(params: &mut Params, kind: &str, max_ms: u64) -> Result<String, ApiError> {
    let ms = if kind == "call" {
        params.optional_int("ms", 0..=max_ms)?
    } else {
        Some(params.int("ms", None, 0..=max_ms)?)
    };
    Ok(ms.map_or_else(String::new, |ms| format!("?ms={ms}")))
}

/// `GET /api/compare?kind=io&ms=100`: the same job on both modes at once, both timings back.
async fn compare(
    state: web::Data<GatewayState>,
    mut params: Params,
) -> Result<HttpResponse, ApiError> {
    let kind = params.choice("kind", Some("io"), KINDS)?;
    let query = work_query(&mut params, kind, state.max_ms)?;
    params.finish()?;
    let path = format!("/work/{kind}{query}");
    let start = Instant::now();
    let (a, t) = futures_util::join!(
        state.worker_async.get(&state.client, &path),
        state.worker_threadpool.get(&state.client, &path)
    );
    let side = |r: common::upstream::Reply| json!({"status": r.status, "elapsed_ms": millis(r.elapsed), "result": r.body});
    Ok(HttpResponse::Ok().json(json!({
        "kind": kind,
        "path": path,
        "elapsed_ms": millis(start.elapsed()),
        "async": side(a?),
        "threadpool": side(t?),
    })))
}

/// `GET /api/fanout?n=10&ms=100&mode=limited&limit=5[&handling=async&kind=io]`.
async fn fanout_route(
    state: web::Data<GatewayState>,
    mut params: Params,
) -> Result<HttpResponse, actix_web::Error> {
    let n = params.int("n", Some(10), 1..=state.max_fanout)?;
    let mode_name = params.choice(
        "mode",
        Some("concurrent"),
        &["sequential", "concurrent", "limited"],
    )?;
    let limit = params.optional_int("limit", 1..=state.max_fanout)?;
    let handling = params.choice("handling", Some("async"), HANDLINGS)?;
    let kind = params.choice("kind", Some("io"), KINDS)?;
    let query = work_query(&mut params, kind, state.max_ms)?;
    params.finish()?;
    let mode = match (mode_name, limit) {
        ("limited", Some(k)) => Mode::Limited(k),
        ("limited", None) => {
            return Err(ApiError::bad(
                "limit",
                "mode=limited needs `limit`, the most calls in flight",
            )
            .into());
        }
        (_, Some(_)) => {
            return Err(ApiError::bad("limit", "`limit` applies only to mode=limited").into());
        }
        ("sequential", None) => Mode::Sequential,
        _ => Mode::Concurrent,
    };
    let upstream = state.worker(handling);
    let path = format!("/work/{kind}{query}");
    let start = Instant::now();
    let mut calls = fanout::run(mode, n, upstream, &state.client, &path).await;
    let elapsed = start.elapsed();
    let failed = calls.iter().filter(|c| c.failure.is_some()).count();
    let first_failure = calls.iter_mut().find_map(|c| c.failure.take());
    let summary = json!({
        "mode": mode_name,
        "n": n,
        "limit": limit,
        "handling": handling,
        "path": path,
        "elapsed_ms": millis(elapsed),
        "ok": n - failed,
        "failed": failed,
        "calls": calls,
    });
    match first_failure {
        None => Ok(HttpResponse::Ok().json(summary)),
        // Some calls failed: the status says how (502/504), the body keeps every call's outcome.
        Some(e) => Err(ApiError::Upstream(e).with_details(summary)),
    }
}

/// `GET /api/{handling}/work/{kind}?ms=N`: one job on one mode; the worker's answer as is.
async fn proxy(
    state: web::Data<GatewayState>,
    path: web::Path<(String, String)>,
    mut params: Params,
) -> Result<HttpResponse, ApiError> {
    let (handling, kind) = path.into_inner();
    let handling = common::params::path_choice("handling", &handling, HANDLINGS)?;
    let kind = common::params::path_choice("kind", &kind, KINDS)?;
    let query = work_query(&mut params, kind, state.max_ms)?;
    params.finish()?;
    let reply = state
        .worker(handling)
        .get(&state.client, &format!("/work/{kind}{query}"))
        .await?;
    let status = actix_web::http::StatusCode::from_u16(reply.status)
        .unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY);
    Ok(HttpResponse::build(status).json(reply.body))
}

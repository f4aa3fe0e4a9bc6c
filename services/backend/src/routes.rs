//! `GET /query?ms=&dist=&spread=&error_rate=`: every setting can be overridden per request.
use actix_web::{HttpResponse, web};
use chrono::{SecondsFormat, Utc};
use common::{ApiError, Params, get_route};
use contract::BackendReport;
use contract::Distribution;
use rand::Rng;

use crate::Cli;
use crate::latency::Sample;

pub struct BackendState {
    latency_ms: u64,
    dist: Distribution,
    spread: f64,
    error_rate: f64,
    max_ms: u64,
}

pub fn state(cli: &Cli) -> anyhow::Result<web::Data<BackendState>> {
    if cli.latency_ms > cli.server.max_ms {
        anyhow::bail!(
            "--latency-ms {} is above --max-ms {}",
            cli.latency_ms,
            cli.server.max_ms
        );
    }
    Ok(web::Data::new(BackendState {
        latency_ms: cli.latency_ms,
        dist: cli.latency_dist,
        spread: cli.latency_spread,
        error_rate: cli.error_rate,
        max_ms: cli.server.max_ms,
    }))
}

pub fn configure(
    state: web::Data<BackendState>,
) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    move |cfg| {
        cfg.app_data(state.clone())
            .service(get_route("/query", query));
    }
}

async fn query(
    state: web::Data<BackendState>,
    mut params: Params,
) -> Result<HttpResponse, ApiError> {
    let median = params.int("ms", Some(state.latency_ms), 0..=state.max_ms)?;
    let dist: Distribution = params.choice("dist", Some(state.dist))?;
    let spread = params.float("spread", 0.0..=4.0)?.unwrap_or(state.spread);
    let error_rate = params
        .float("error_rate", 0.0..=1.0)?
        .unwrap_or(state.error_rate);
    params.finish()?;

    let (latency, fail) = {
        let mut rng = rand::rng();
        (
            dist.sample(median as f64, spread, state.max_ms, &mut rng),
            rng.random_bool(error_rate),
        )
    };
    let started_at = Utc::now();
    actix_web::rt::time::sleep(latency).await;
    let mut report = BackendReport {
        dist,
        error: None,
        finished_at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        latency_ms: (latency.as_secs_f64() * 1e6).round() / 1e3,
        median_ms: median,
        message: None,
        pid: std::process::id(),
        service: "backend".to_owned(),
        started_at: started_at.to_rfc3339_opts(SecondsFormat::Millis, true),
    };
    if fail {
        // A simulated outage of the dependency, not a bug here: no error attached, so Sentry
        // hears of it from the callers, where it matters.
        report.error = Some("injected_error".to_owned());
        report.message = Some(format!("failed on purpose (error_rate {error_rate})"));
        return Ok(HttpResponse::ServiceUnavailable().json(report));
    }
    Ok(HttpResponse::Ok().json(report))
}

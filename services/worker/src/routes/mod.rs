//! The worker's routes and the state they share.
mod fault;
mod test_only;
mod work;

use std::time::Duration;

use actix_web::web;
use common::metrics::Instruments;
use common::upstream::Upstream;
use common::{Telemetry, get_route};

use anyhow::Context as _;
use contract::{Choice, Handling, Kind};

use crate::Cli;

pub struct WorkerState {
    pub(crate) handling: Handling,
    pub(crate) max_ms: u64,
    pub(crate) instruments: Instruments,
    pub(crate) backend: Upstream,
    /// Async client, for `call` in async mode.
    pub(crate) client: reqwest::Client,
    /// Blocking client, for `call` in threadpool mode, used on pool threads only.
    pub(crate) agent: ureq::Agent,
    /// `--enable-test-routes`: serve the routes only the tests need.
    pub(crate) test_routes: bool,
}

pub fn state(cli: &Cli, telemetry: &Telemetry) -> anyhow::Result<web::Data<WorkerState>> {
    let timeout = Duration::from_millis(cli.upstream_timeout_ms);
    let client = common::upstream::client(timeout).context("cannot build the HTTP client")?;
    url_check(&cli.backend_url).map_err(anyhow::Error::msg)?;
    Ok(web::Data::new(WorkerState {
        handling: cli.handling,
        max_ms: cli.server.max_ms,
        instruments: telemetry.instruments.clone(),
        backend: Upstream::new(
            "backend",
            &cli.backend_url,
            timeout,
            telemetry.instruments.clone(),
        )
        .max_body_bytes(cli.server.upstream_max_body_bytes as usize),
        client,
        agent: common::upstream::agent(),
        test_routes: cli.enable_test_routes,
    }))
}

fn url_check(url: &str) -> Result<(), String> {
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Ok(()),
        _ => Err(format!(
            "--backend-url `{url}` is not an http(s) URL, e.g. http://127.0.0.1:8083"
        )),
    }
}

pub fn configure(
    state: web::Data<WorkerState>,
) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    move |cfg| {
        cfg.app_data(state.clone());
        for &kind in Kind::ALL {
            cfg.service(work::route(kind));
        }
        if state.test_routes {
            cfg.service(get_route("/test/lock", test_only::lock));
        }
        cfg.service(get_route("/work/{kind}", work::unknown_kind))
            .service(get_route("/fault/error", fault::error))
            .service(get_route("/fault/panic", fault::panic))
            .service(get_route("/fault/status/{code}", fault::status));
    }
}

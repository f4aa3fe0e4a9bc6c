//! Liveness and readiness. Readiness is a latch that drops when the drain starts, so a load
//! balancer stops sending before connections close.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::http::Method;
use actix_web::{HttpResponse, web};
use contract::{Probe, ProbeStatus};

#[derive(Clone, Default)]
pub(crate) struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub(crate) fn set_ready(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Probe::new(ProbeStatus::Ok))
}

pub(crate) async fn readyz(readiness: web::Data<Readiness>) -> HttpResponse {
    if readiness.is_ready() {
        HttpResponse::Ok().json(Probe::new(ProbeStatus::Ready))
    } else {
        HttpResponse::ServiceUnavailable().json(Probe::new(ProbeStatus::Draining))
    }
}

/// A GET of the app port's /healthz, for the admin port's /readyz: the admin server runs on
/// a thread of its own, so without it a hung app port (every event loop blocked, say on a
/// log write) would still be reported ready.
#[derive(Clone)]
pub(crate) struct AppProbe {
    url: String,
    client: reqwest::Client,
}

/// How long the app port gets to answer the readiness probe.
const APP_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

impl AppProbe {
    pub(crate) fn new(app: std::net::SocketAddr) -> Result<Self, reqwest::Error> {
        // A wildcard bind (0.0.0.0 in a container) is reached on loopback.
        let mut addr = app;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let client = reqwest::Client::builder()
            .timeout(APP_PROBE_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            url: format!("http://{addr}/healthz"),
            client,
        })
    }

    async fn answers(&self) -> bool {
        self.client
            .get(&self.url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }
}

/// The admin port's /readyz: ready only while not draining and the app port answers.
pub(crate) async fn admin_readyz(
    readiness: web::Data<Readiness>,
    probe: web::Data<AppProbe>,
) -> HttpResponse {
    if !readiness.is_ready() {
        return HttpResponse::ServiceUnavailable().json(Probe::new(ProbeStatus::Draining));
    }
    if probe.answers().await {
        HttpResponse::Ok().json(Probe::new(ProbeStatus::Ready))
    } else {
        HttpResponse::ServiceUnavailable().json(Probe {
            message: Some(format!(
                "the app port did not answer /healthz within {} ms",
                APP_PROBE_TIMEOUT.as_millis()
            )),
            status: ProbeStatus::Unresponsive,
        })
    }
}

/// The probe routes, shared by the app and the admin server.
/// Probes answer GET and HEAD alike (a load balancer may use either) and OPTIONS.
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(probe("/healthz", healthz))
        .service(probe("/readyz", readyz));
}

/// A probe route: GET, HEAD and OPTIONS.
pub(crate) fn probe<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(crate::route::on(Method::GET).to(handler.clone()))
        .route(crate::route::on(Method::HEAD).to(handler))
        .route(crate::route::on(Method::OPTIONS).to(crate::route::options))
        .default_service(web::to(crate::route::method_not_allowed))
}

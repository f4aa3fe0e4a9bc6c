//! The server harness: binds the listeners (port 0 allowed, real ports reported), assembles
//! the middleware stack, runs the admin server on its own thread, and drains on shutdown.
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::Condition;
use actix_web::{App, HttpRequest, web};

use crate::ServiceInfo;
use crate::app_port::AppPort;
use crate::config::{Layer, ServerArgs};
use crate::error::ApiError;
use crate::health::{self, Readiness};
use crate::http_layer_answers::AnswerSink;
use crate::metrics::{Telemetry, metrics_handler};
use crate::request_tracking::RequestTracking;
use crate::sentry::SentryLayer;
use crate::stall::{
    StallDetector, StallMonitor, debug_stalls, precreate_series, register_worker, spawn_lag_probe,
};

/// The admin port's request-head timeout (actix's default): scrapers and probes send at once.
const ADMIN_HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// How long past the grace the drain waits for a worker whose event loop is blocked.
const GRACE_OVERRUN: Duration = Duration::from_millis(500);

pub(crate) struct Application {
    server: Server,
    app_addr: SocketAddr,
    admin: Option<AdminServer>,
    readiness: Readiness,
    grace: Duration,
    delay: Duration,
}

fn bind(what: &str, host: &str, port: u16, flag: &str) -> io::Result<TcpListener> {
    TcpListener::bind((host, port)).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot bind the {what} port {host}:{port}: {e} (is another instance running? choose another with {flag})"),
        )
    })
}

pub(crate) async fn not_found(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound {
        method: crate::params::clip(req.method().as_str()),
        path: crate::params::clip(req.path()),
    })
}

/// The API description (docs/openapi.yaml), compiled in so the binary serves what it was
/// built with.
async fn openapi() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type("application/yaml")
        .body(include_str!("../openapi.yaml"))
}

impl Application {
    /// Binds and starts serving; call inside an actix System. Waits for the admin server
    /// without blocking the System's thread.
    pub(crate) async fn build<C>(
        service: &ServiceInfo,
        args: &ServerArgs,
        telemetry: &Telemetry,
        routes: C,
    ) -> io::Result<Self>
    where
        C: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
    {
        let app_listener = bind(
            "app",
            &args.host,
            args.port.unwrap_or(service.default_port),
            "--port",
        )?;
        let admin_listener = if args.metrics_exposition.admin_port() {
            let port = args.admin_port.unwrap_or(service.default_admin_port);
            Some(bind("admin", &args.host, port, "--admin-port")?)
        } else {
            None
        };
        let app_addr = app_listener.local_addr()?;
        let readiness = Readiness::default();

        let workers = args.workers();
        let instruments = telemetry.instruments.clone();
        let layers = args.layer_states();
        let disabled: Vec<&str> = layers
            .iter()
            .filter(|(_, off)| *off)
            .map(|(name, _)| name.as_str())
            .collect();
        if !disabled.is_empty() {
            tracing::warn!(
                layers = %disabled.join(","),
                "instrumentation layers disabled by --disable-layers: what they measure is missing; benchmarks only"
            );
        }
        instruments.layers(layers.clone());
        instruments.server_workers.record(workers as u64, &[]);
        crate::blocking::configure(
            usize::from(args.blocking_threads),
            args.blocking_queue as usize,
        );
        instruments
            .blocking_threads_max
            .record(workers as u64 * u64::from(args.blocking_threads), &[]);

        // The watchdog and reporter threads run only with the stall layer on.
        let monitor = args
            .layer_on(Layer::Stall)
            .then(|| {
                StallMonitor::start(
                    service,
                    instruments.clone(),
                    args.stall_threshold(),
                    args.stall_capture(),
                    Duration::from_secs(args.sentry.stall_report_interval_secs),
                )
            })
            .transpose()?;
        let detector = monitor.clone().map(|monitor| {
            Arc::new(StallDetector::new(
                args.stall_threshold(),
                instruments.clone(),
                monitor,
            ))
        });
        let http_metrics = telemetry.http.clone();
        let registry = web::Data::new(telemetry.registry.clone());
        let ready = web::Data::new(readiness.clone());
        let mounted = args.metrics_exposition.mounted();
        let lag_interval = Duration::from_millis(args.lag_probe_interval_ms);
        // Every layer is on in production; `--disable-layers` exists for `make bench`.
        let sentry_on = args.layer_on(Layer::Sentry) && sentry::Hub::current().client().is_some();
        let traces_sample_rate = args.sentry.sentry_traces_sample_rate;
        let access_log_on = args.layer_on(Layer::AccessLog);
        let http_metrics_on = args.layer_on(Layer::HttpMetrics);
        let stall_on = args.layer_on(Layer::Stall);
        let in_flight = args
            .layer_on(Layer::InFlight)
            .then(|| instruments.http_in_flight.series());

        let make_app = move || {
            // actix calls this factory on each worker thread, inside that worker's runtime.
            if stall_on {
                spawn_lag_probe(&instruments, lag_interval);
            } else {
                register_worker(&instruments);
            }
            let mut app = App::new()
                .app_data(registry.clone())
                .app_data(ready.clone())
                .configure(health::routes);
            if mounted {
                app = app.route("/metrics", web::get().to(metrics_handler));
            }
            let app = app.configure(routes.clone());
            if stall_on {
                // After `configure`: the routes are declared now (see `crate::get_route`).
                precreate_series(&instruments);
            }
            app.default_service(web::to(not_found))
                // Last wrapped runs first: Sentry sees everything, the guard is nearest the handler.
                .wrap(RequestTracking {
                    detector: detector.clone(),
                    in_flight: in_flight.clone(),
                    access_log: access_log_on,
                })
                .wrap(Condition::new(http_metrics_on, http_metrics.clone()))
                .wrap(Condition::new(
                    sentry_on,
                    SentryLayer { traces_sample_rate },
                ))
        };
        crate::flood_trim::start_trimmer();
        let builder = actix_server::Server::build()
            .workers(workers)
            .worker_max_blocking_threads(usize::from(args.blocking_threads))
            .max_concurrent_connections(args.max_connections_per_worker())
            .disable_signals()
            .shutdown_timeout(args.shutdown_grace_secs);
        let head_timeout = args.client_request_timeout();
        let server = AppPort {
            // actix dates this deadline from a clock its event loop updates: after a stall the
            // clock is stale and requests that waited behind it get a 408 (see the flag).
            client_request_timeout: head_timeout,
            stall_on,
            sink: AnswerSink {
                metrics: http_metrics_on.then(|| telemetry.http.clone()),
                access_log: access_log_on,
                head_timeout,
            },
        }
        .listen(builder, app_listener, make_app)?
        .run();

        let admin = match admin_listener {
            Some(listener) => {
                let probe = health::AppProbe::new(app_addr).map_err(io::Error::other)?;
                Some(
                    AdminServer::start(
                        listener,
                        telemetry.registry.clone(),
                        readiness.clone(),
                        probe,
                        monitor.clone(),
                    )
                    .await?,
                )
            }
            None => None,
        };

        Ok(Self {
            server,
            app_addr,
            admin,
            readiness,
            grace: args.shutdown_grace(),
            delay: Duration::from_secs(args.shutdown_delay_secs),
        })
    }

    pub(crate) fn app_addr(&self) -> SocketAddr {
        self.app_addr
    }

    pub(crate) fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|a| a.addr)
    }

    /// Serves until `shutdown` resolves, then drains: not ready, no new connections,
    /// in-flight requests get the grace period to finish.
    pub(crate) async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let Self {
            server,
            admin,
            readiness,
            grace,
            delay,
            ..
        } = self;
        let handle = server.handle();
        readiness.set_ready(true);
        tokio::pin!(server);
        let result = tokio::select! {
            result = &mut server => result,
            () = shutdown => {
                readiness.set_ready(false);
                if !delay.is_zero() {
                    tracing::info!(delay_secs = delay.as_secs(), "not ready; still serving while load balancers catch up");
                    tokio::select! {
                        result = &mut server => return result,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
                tracing::info!(grace_secs = grace.as_secs(), "draining: not ready, finishing in-flight requests");
                // The stop is carried out by the server future itself: keep polling it while
                // waiting, or `stop` waits forever for a command nobody reads.
                let drained = async { tokio::join!(handle.stop(true), &mut server).1 };
                // Shortly before actix closes what is left, those requests get a 503 instead.
                let grace_end = async {
                    let cut_after = crate::grace_end::cut_after(grace);
                    tokio::time::sleep(cut_after).await;
                    tracing::warn!("shutdown grace ending: requests still running are answered 503");
                    crate::grace_end::reach();
                    // A worker whose event loop is blocked in a handler cannot stop; actix
                    // would wait for it past the grace. Exit without it, like a SIGKILL would.
                    tokio::time::sleep(grace - cut_after + GRACE_OVERRUN).await;
                    tracing::error!(
                        overrun_ms = GRACE_OVERRUN.as_millis() as u64,
                        "an event loop is still blocked after the shutdown grace; exiting without it"
                    );
                    Ok(())
                };
                tokio::select! {
                    result = drained => result,
                    result = grace_end => result,
                }
            }
        };
        if let Some(admin) = admin {
            admin.stop().await;
        }
        tracing::info!("stopped");
        result
    }
}

/// /metrics, /healthz and /readyz on a port and thread of their own, like prometheus_client's
/// `start_http_server`: it answers while every app worker is blocked.
struct AdminServer {
    addr: SocketAddr,
    handle: ServerHandle,
    thread: std::thread::JoinHandle<io::Result<()>>,
}

impl AdminServer {
    async fn start(
        listener: TcpListener,
        registry: crate::metrics::Registry,
        readiness: Readiness,
        probe: health::AppProbe,
        stalls: Option<StallMonitor>,
    ) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("loopscope-admin".into())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let registry = web::Data::new(registry);
                    let ready = web::Data::new(readiness);
                    let stalls = stalls.map(web::Data::new);
                    let probe = web::Data::new(probe);
                    // Through AppPort too: actix-http's own 400/408/431 get our JSON body here
                    // (not counted or logged: the admin port's requests never are).
                    let port = AppPort {
                        client_request_timeout: ADMIN_HEAD_TIMEOUT,
                        stall_on: false,
                        sink: AnswerSink {
                            metrics: None,
                            access_log: false,
                            head_timeout: ADMIN_HEAD_TIMEOUT,
                        },
                    };
                    let builder = actix_server::Server::build()
                        .workers(1)
                        .disable_signals()
                        .shutdown_timeout(1);
                    let make_app = move || {
                        let mut app = App::new();
                        if let Some(stalls) = &stalls {
                            app = app.app_data(stalls.clone());
                        }
                        app.app_data(registry.clone())
                            .app_data(ready.clone())
                            .app_data(probe.clone())
                            .service(health::probe("/healthz", health::healthz))
                            .service(health::probe("/readyz", health::admin_readyz))
                            .route("/debug/stalls", web::get().to(debug_stalls))
                            .route("/metrics", web::get().to(metrics_handler))
                            .route("/openapi.yaml", web::get().to(openapi))
                            .default_service(web::to(not_found))
                    };
                    let server = port.listen(builder, listener, make_app)?.run();
                    let _ = tx.send(server.handle());
                    server.await
                })
            })?;
        let handle = match rx.await {
            Ok(handle) => handle,
            // The thread ended before it could serve: its own error says why.
            Err(_) => {
                return Err(tokio::task::spawn_blocking(move || thread.join())
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .and_then(Result::err)
                    .unwrap_or_else(|| io::Error::other("the admin server failed to start")));
            }
        };
        Ok(Self {
            addr,
            handle,
            thread,
        })
    }

    /// Stops it without blocking the caller's event loop: the stop command goes to the admin
    /// server's own System, and its thread is joined on the blocking pool.
    async fn stop(self) {
        // The admin server has nothing worth draining.
        self.handle.stop(false).await;
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}

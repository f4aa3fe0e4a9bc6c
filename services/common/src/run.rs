//! The whole life of a service process, shared by every `main`.
use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;

use actix_web::web;

use crate::config::ServerArgs;
use crate::metrics::Telemetry;
use crate::server::Application;
use crate::startup::StartupError;
use crate::{ServiceInfo, logging, shutdown};

/// Work a service does beside serving (loadgen's steady traffic): it runs on the actix
/// System's thread from the moment the server listens, and is dropped when shutdown begins.
pub type Background = Pin<Box<dyn Future<Output = ()>>>;

/// Logs and Sentry first, in this synchronous function, before any runtime exists (the
/// Sentry client must be bound before the first request); then the actix System,
/// the server, the drain; then Sentry's flush, bounded by its timeout.
pub fn run<F, C>(service: ServiceInfo, args: ServerArgs, make_routes: F) -> ExitCode
where
    F: FnOnce(&Telemetry) -> anyhow::Result<C>,
    C: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
{
    run_with_background(service, args, |telemetry| {
        Ok((make_routes(telemetry)?, None))
    })
}

/// [`run`], plus a [`Background`] task made with the routes.
pub fn run_with_background<F, C>(service: ServiceInfo, args: ServerArgs, make: F) -> ExitCode
where
    F: FnOnce(&Telemetry) -> anyhow::Result<(C, Option<Background>)>,
    C: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
{
    // Held to the end: dropping it flushes the log lines still queued.
    let _log_writer = logging::init(args.log_format);
    let sentry = crate::sentry::init(&service, &args.sentry);
    let result = Telemetry::new(&service)
        .map_err(StartupError::from)
        .and_then(|telemetry| {
            let made = make(&telemetry).map_err(StartupError::Settings)?;
            Ok((made, telemetry))
        })
        .and_then(|((routes, background), telemetry)| {
            actix_web::rt::System::new()
                .block_on(async {
                    let signals = shutdown::Signals::install().map_err(StartupError::Signals)?;
                    let app = Application::build(&service, &args, &telemetry, routes)
                        .await
                        .map_err(StartupError::Serve)?;
                    tracing::info!(
                        service = service.name,
                        handling = service.handling.unwrap_or("-"),
                        app_addr = %app.app_addr(),
                        admin_addr = %app.admin_addr().map_or_else(|| "-".to_owned(), |a| a.to_string()),
                        workers = args.workers(),
                        "listening"
                    );
                    let background = background.map(actix_web::rt::spawn);
                    app.run_until_stopped(async {
                        let signal = signals.recv().await;
                        tracing::info!(signal, "shutdown requested");
                        if let Some(task) = &background {
                            task.abort();
                        }
                    })
                    .await
                    .map_err(StartupError::Serve)
                })
        });
    // Flushes queued events, waiting at most the Sentry timeout.
    if let Some(sentry) = sentry {
        sentry.close();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let why = crate::error::error_chain(&e);
            tracing::error!(error = %why, "{} failed", service.name);
            eprintln!("{}: {why}", service.name);
            ExitCode::FAILURE
        }
    }
}

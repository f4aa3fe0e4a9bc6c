//! The Sentry client: set up in the synchronous `main`, before any runtime, with rustls and a
//! transport whose HTTP client times out (a Sentry host that accepts and never answers would
//! otherwise hang every flush), our in-app rules, and our panic hook instead of sentry-panic.
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sentry::{ClientInitGuard, ClientOptions};

use super::transaction::Constant;
use crate::ServiceInfo;
use crate::config::SentryArgs;

/// Our crates: their frames are in-app, and the top in-app frame is an issue's culprit.
const IN_APP: &[&str] = &[
    "common::",
    "worker::",
    "gateway::",
    "backend::",
    "loadgen::",
];
/// Never in-app, even when a closure of ours is generic over them.
const NOT_IN_APP: &[&str] = &[
    "std::",
    "core::",
    "alloc::",
    "tokio::",
    "actix",
    "sentry",
    "futures",
    "backtrace::",
    "hyper::",
    "reqwest::",
    "h2::",
    "ureq::",
    "<alloc::",
    "<core::",
    "<std::",
];

/// `loopscope@0.1.0+3f2a9c1b7e0d`: Sentry groups events and regressions by it.
pub(crate) fn release_name() -> String {
    format!("loopscope@{}+{}", crate::VERSION, crate::REVISION)
}

/// The client, flushed (within its timeout) when dropped by [`Reporting::close`].
pub(crate) struct Reporting {
    guard: ClientInitGuard,
    timeout: Duration,
}

impl Reporting {
    /// Flushes queued events and stops, waiting at most the Sentry timeout in all: the
    /// transport's own shutdown can take a request timeout plus a flush timeout.
    pub(crate) fn close(self) {
        super::transaction::uninstall();
        let Self { guard, timeout } = self;
        let (done, closed) = std::sync::mpsc::channel();
        let closing = std::thread::Builder::new()
            .name("loopscope-sentry-close".into())
            .spawn(move || {
                drop(guard);
                let _ = done.send(());
            });
        if closing.is_ok() && closed.recv_timeout(timeout).is_err() {
            tracing::warn!(
                timeout_ms = timeout.as_millis() as u64,
                "Sentry did not take the last events in time; exiting without them"
            );
        }
    }
}

/// Returns `None` (Sentry off, and the start-up log says so) when no DSN is set.
pub(crate) fn init(service: &ServiceInfo, args: &SentryArgs) -> Option<Reporting> {
    let Some(dsn) = args.dsn() else {
        tracing::info!(reason = "no --sentry-dsn / SENTRY_DSN", "sentry off");
        return None;
    };
    let timeout = Duration::from_millis(args.sentry_timeout_ms);
    let agent = super::transport::agent(timeout);
    // The transport's queue, for our transactions (`super::transaction`): they skip the
    // client, so they reach the transport this way.
    let transactions = Arc::new(OnceLock::new());
    let factory = super::transport::Factory {
        agent,
        timeout,
        transactions: transactions.clone(),
    };
    let release = args
        .sentry_release
        .clone()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(release_name);
    let mut options = ClientOptions::new()
        .dsn(&dsn.to_string())
        .release(release.clone())
        .environment(args.sentry_environment.clone())
        .traces_sample_rate(args.sentry_traces_sample_rate)
        .shutdown_timeout(timeout)
        .transport(factory);
    options.in_app_include = IN_APP.to_vec();
    options.in_app_exclude = NOT_IN_APP.to_vec();
    options.before_send = Some(Arc::new(super::breadcrumbs::keep_own));
    let guard = sentry::init(options);
    let mut tags = vec![("service", service.name)];
    if let Some(handling) = service.handling {
        tags.push(("handling", handling));
    }
    sentry::configure_scope(|scope| {
        for (key, value) in &tags {
            scope.set_tag(key, value);
        }
    });
    if let (Some(queue), Some(client)) = (transactions.get(), sentry::Hub::current().client()) {
        let constant = Constant::of(&client, &tags);
        super::transaction::install(queue.clone(), constant);
    }
    super::panic::install();
    super::breadcrumbs::enable();
    tracing::info!(
        dsn_host = dsn.host(),
        environment = %args.sentry_environment,
        release = %release,
        traces_sample_rate = args.sentry_traces_sample_rate,
        timeout_ms = args.sentry_timeout_ms,
        "sentry on"
    );
    Some(Reporting { guard, timeout })
}

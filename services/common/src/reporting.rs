//! Sentry: set up in the synchronous `main`, before the actix System starts (sentry-actix
//! needs the client bound first), with rustls and a transport whose HTTP client times out.
//! Without that timeout a Sentry host that accepts the connection and never answers hangs
//! the flush at shutdown forever.
use std::sync::Arc;
use std::time::Duration;

use sentry::transports::ReqwestHttpTransportOptions;
use sentry::{ClientInitGuard, ClientOptions};

use crate::ServiceInfo;
use crate::config::SentryArgs;

/// `loopscope@0.1.0+3f2a9c1b7e0d`: Sentry groups events and regressions by it.
pub fn release_name() -> String {
    format!("loopscope@{}+{}", crate::VERSION, crate::REVISION)
}

/// Returns `None` (Sentry off, silently) when no DSN is set.
pub fn init(service: &ServiceInfo, args: &SentryArgs) -> Option<ClientInitGuard> {
    let dsn = args.dsn()?;
    let timeout = Duration::from_millis(args.sentry_timeout_ms);
    // sentry's reqwest transport posts envelopes with no Content-Type. sentry.io accepts
    // that, but Spotlight (the local receiver) drops such a payload ("No content type").
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::CONTENT_TYPE,
        reqwest::header::HeaderValue::from_static("application/x-sentry-envelope"),
    );
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .ok()?;
    let factory = move |options: &ClientOptions| -> Arc<dyn sentry::Transport> {
        let general = sentry::TransportOptions::try_from_client_options(options)
            .expect("the transport factory only runs when a DSN is set");
        Arc::new(
            ReqwestHttpTransportOptions::from(general)
                .with_client(http.clone())
                .build(),
        )
    };
    let options = ClientOptions::new()
        .dsn(&dsn.to_string())
        .release(
            args.sentry_release
                .clone()
                .filter(|r| !r.is_empty())
                .unwrap_or_else(release_name),
        )
        .environment(args.sentry_environment.clone())
        .traces_sample_rate(args.sentry_traces_sample_rate)
        .shutdown_timeout(timeout)
        .transport(factory);
    let guard = sentry::init(options);
    sentry::configure_scope(|scope| {
        scope.set_tag("service", service.name);
        if let Some(handling) = service.handling {
            scope.set_tag("handling", handling);
        }
    });
    Some(guard)
}

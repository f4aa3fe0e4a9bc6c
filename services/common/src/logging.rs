//! Logs through `tracing`: JSON lines for machines, text for people; RUST_LOG filters
//! (`access=warn` silences the access log). Each request gets one access-log event with its
//! request id (see middleware.rs).
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    // A second init (e.g. two services in one test process) keeps the first subscriber.
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .finish()
            .with(crate::sentry::Breadcrumbs)
            .try_init(),
        // Colours only on a terminal: `make up` writes these logs to files.
        LogFormat::Text => builder
            .compact()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .finish()
            .with(crate::sentry::Breadcrumbs)
            .try_init(),
    };
}

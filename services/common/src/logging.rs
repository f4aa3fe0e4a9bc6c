//! Logs through `tracing`: JSON lines for machines, text for people; RUST_LOG filters
//! (`access=warn` silences the access log). Each request gets one access-log event with its
//! request id (see request_tracking.rs and access_log.rs).
//!
//! Lines go through our own bounded line writer (log_writer.rs): an event loop formats the
//! line and appends it to a buffer that one thread of its own writes to stdout every 10 ms
//! while lines come.
//! When stdout is not drained (a full pipe, a stuck log shipper) the buffer fills and further
//! lines are dropped and counted in `loopscope_log_lines_dropped_total`, instead of the write
//! blocking the event loop, which is the bug loopscope exists to show.
use std::sync::OnceLock;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;
use crate::log_writer::{Drainer, LineWriter};

/// The process's writer and its format, set by `init`.
static WRITER: OnceLock<(LineWriter, LogFormat)> = OnceLock::new();

/// Lines dropped because stdout did not keep up (0 before `init`).
pub(crate) fn dropped_lines() -> u64 {
    WRITER.get().map_or(0, |(writer, _)| writer.dropped_lines())
}

/// The writer the access log appends its JSON lines to (none before `init`, or with text
/// logs, where the line goes through `tracing`).
pub(crate) fn json_writer() -> Option<&'static LineWriter> {
    match WRITER.get() {
        Some((writer, LogFormat::Json)) => Some(writer),
        _ => None,
    }
}

/// How long the exit waits for pending lines to reach stdout.
const FLUSH_AT_EXIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Keep it until the process ends: dropping it writes the pending lines, waiting at most
/// [`FLUSH_AT_EXIT`], so a process whose stdout nobody reads still exits on SIGTERM.
pub(crate) struct LogWriterGuard {
    _drainer: Option<Drainer>,
}

/// Installs the subscriber.
pub(crate) fn init(format: LogFormat) -> LogWriterGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, drainer) = match crate::log_writer::spawn(std::io::stdout(), FLUSH_AT_EXIT) {
        Ok(spawned) => spawned,
        Err(e) => {
            eprintln!("loopscope: cannot start the log thread ({e}); no logs will be written");
            return LogWriterGuard { _drainer: None };
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer.clone());
    // A second init (e.g. two services in one test process) keeps the first subscriber.
    let installed = match format {
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
    if installed.is_err() {
        return LogWriterGuard { _drainer: None };
    }
    let _ = WRITER.set((writer, format));
    LogWriterGuard {
        _drainer: Some(drainer),
    }
}

//! Logs through `tracing`: JSON lines for machines, text for people; RUST_LOG filters
//! (`access=warn` silences the access log). Each request gets one access-log event with its
//! request id (see request_tracking.rs and access_log.rs).
//!
//! Lines go through tracing-appender's non-blocking writer: an event loop formats the line
//! and hands it to a bounded queue; one thread of its own writes to stdout. When stdout is
//! not drained (a full pipe, a stuck log shipper) the queue fills and further lines are
//! dropped and counted in `loopscope_log_lines_dropped_total`, instead of the write blocking
//! the event loop, which is the bug loopscope exists to show.
use std::sync::OnceLock;

use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// Lines the queue holds before dropping: ~16 k lines is a few MB of JSON at most, and at
/// 10 k requests/s a second or two of stdout not keeping up.
const LOG_QUEUE_LINES: usize = 16 * 1024;

/// The log thread gathers queued lines into writes of up to this many bytes, and writes
/// what it has as soon as the queue is empty (tracing-appender flushes after draining it):
/// under load one `write` carries ~15 lines instead of one each, and a line is never held
/// back while the process is quiet. PIPE_BUF, so a write to a pipe stays atomic.
const LOG_WRITE_BYTES: usize = 4096;

/// The dropped-line count of the process's writer, read by the metric at scrape time.
static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();

/// Lines dropped because stdout did not keep up (0 before `init`).
pub(crate) fn dropped_lines() -> u64 {
    DROPPED.get().map_or(0, |c| c.dropped_lines() as u64)
}

/// How long the exit waits for queued lines to reach stdout.
const FLUSH_AT_EXIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Keep it until the process ends: dropping it flushes the queued lines, for at most
/// [`FLUSH_AT_EXIT`]. tracing-appender's own guard waits 1.1 s and then `println!`s a
/// complaint, which blocks forever on the very stdout that is stuck, so a process whose
/// stdout nobody reads would never exit on SIGTERM. The flush runs on a thread of its own
/// and the exit goes on without it when stdout does not move.
pub(crate) struct LogWriterGuard(Option<WorkerGuard>);

impl Drop for LogWriterGuard {
    fn drop(&mut self) {
        let Some(guard) = self.0.take() else { return };
        let (done, flushed) = std::sync::mpsc::channel();
        let flusher = std::thread::Builder::new()
            .name("loopscope-log-flush".into())
            .spawn(move || {
                drop(guard);
                let _ = done.send(());
            });
        if flusher.is_ok() {
            let _ = flushed.recv_timeout(FLUSH_AT_EXIT);
        }
    }
}

/// Installs the subscriber.
pub(crate) fn init(format: LogFormat) -> LogWriterGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .thread_name("loopscope-log")
        .finish(std::io::BufWriter::with_capacity(
            LOG_WRITE_BYTES,
            std::io::stdout(),
        ));
    let counter = writer.error_counter();
    if format == LogFormat::Json {
        crate::access_log::set_json_sink(writer.clone());
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
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
    LogWriterGuard(installed.ok().map(|()| {
        let _ = DROPPED.set(counter);
        guard
    }))
}

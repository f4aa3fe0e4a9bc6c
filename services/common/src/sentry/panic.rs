//! Panics, reported without holding the event loop. sentry-panic's hook flushes the client
//! on the panicking thread (an actix worker) for up to the Sentry timeout, and symbolicates
//! there: with a Sentry that hangs, each panic froze its event loop for seconds.
//!
//! Our hook only takes what must be taken on the spot: an unresolved backtrace (addresses),
//! the message and location, and the request's snapshot. The route wrapper then answers 500
//! at once; a background thread resolves the symbols, builds the event and hands it to the
//! transport, which sends it from its own thread. Nothing here ever flushes.
use std::panic::{Location, PanicHookInfo};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use backtrace::Backtrace;
use sentry::protocol::{Addr, Event, Exception, Frame, Level, Mechanism, Stacktrace};

use super::event::RequestSnapshot;

/// Panics waiting for symbolication; more are dropped (and logged), never waited for.
const QUEUE: usize = 32;
/// Frames kept, innermost first; function names cut to this many characters (one generic
/// async closure's name can be 30 kB).
const MAX_FRAMES: usize = 64;
const MAX_FUNCTION_CHARS: usize = 200;

struct PanicReport {
    message: String,
    file: String,
    line: u32,
    /// `None` while the symbol tables load: the event then has the panicking line only.
    backtrace: Option<Backtrace>,
    /// `Some` when the panic happened serving a routed request: caught and answered 500.
    request: Option<RequestSnapshot>,
    thread: String,
}

static QUEUED: OnceLock<SyncSender<PanicReport>> = OnceLock::new();
static SYMBOLS_LOADED: AtomicBool = AtomicBool::new(false);

/// Replaces the panic hook (once, when Sentry is on).
pub(crate) fn install() {
    let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
    if QUEUED.set(tx).is_err() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("loopscope-sentry-panics".into())
        .spawn(move || {
            // Load the symbol tables now, not while the first panic waits for them.
            let started = std::time::Instant::now();
            let _ = symbolicate(&Backtrace::new_unresolved());
            SYMBOLS_LOADED.store(true, Ordering::Release);
            tracing::info!(
                took_ms = started.elapsed().as_millis() as u64,
                "panic reporter ready: symbols loaded"
            );
            report_all(&rx);
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the panic reporter; panics are logged only");
    }
    std::panic::set_hook(Box::new(hook));
}

fn message(info: &PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "Box<dyn Any>".to_owned())
}

thread_local! {
    /// A panic of a request's job on this blocking-pool thread, until `run_blocking` takes it
    /// back to the request's event loop, where the request is known.
    static POOL_PANIC: std::cell::RefCell<Option<PanicReport>> = const { std::cell::RefCell::new(None) };
}

/// A request's pool job panicked: the report waits for the request's snapshot. Dropped
/// unreported (the request went away first), it is sent without one.
pub(crate) struct PoolPanic(Option<PanicReport>);

/// On the pool thread, right after the job unwound: the panic the hook kept for it.
pub(crate) fn take_pool_panic() -> PoolPanic {
    PoolPanic(POOL_PANIC.with_borrow_mut(Option::take))
}

impl PoolPanic {
    /// On the request's event loop: logs the panic with the request and queues its event.
    pub(crate) fn report(mut self) {
        let Some(mut report) = self.0.take() else {
            return;
        };
        report.request = RequestSnapshot::current();
        log(&report);
        to_reporter(report);
    }
}

impl Drop for PoolPanic {
    fn drop(&mut self) {
        if let Some(report) = self.0.take() {
            log(&report);
            to_reporter(report);
        }
    }
}

fn log(report: &PanicReport) {
    tracing::error!(
        target: "panic",
        panic = %report.message,
        location = %format_args!("{}:{}", report.file, report.line),
        thread = %report.thread,
        request_id = report.request.as_ref().and_then(|r| r.tags.iter().find(|(k, _)| *k == "request_id").map(|(_, v)| v.as_str())),
        "a handler panicked"
    );
}

fn hook(info: &PanicHookInfo<'_>) {
    let message = message(info);
    let (file, line) = info
        .location()
        .map_or(("?", 0), |l: &Location<'_>| (l.file(), l.line()));
    let on_pool = super::context::on_pool_thread();
    let request = if on_pool {
        None
    } else {
        RequestSnapshot::current()
    };
    let thread = std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .to_owned();
    // Until the symbol tables are loaded, the resolver holds the backtrace lock (a second or
    // more with full debug info): capturing then would make this event loop wait for it.
    let backtrace = SYMBOLS_LOADED
        .load(Ordering::Acquire)
        .then(Backtrace::new_unresolved);
    let report = PanicReport {
        message,
        file: file.to_owned(),
        line,
        backtrace,
        request,
        thread,
    };
    if on_pool {
        // `run_blocking` catches this unwind and reports it from the request's event loop.
        POOL_PANIC.with_borrow_mut(|kept| *kept = Some(report));
        return;
    }
    log(&report);
    queue(report);
}

/// Hands `report` to the reporter thread; a panic outside any request is built here.
fn queue(report: PanicReport) {
    if report.request.is_none() {
        // Not a request: the thread (or process) may be about to end, and it is not serving
        // anyone. Build the event here; the transport still sends it from its own thread.
        capture(report);
        return;
    }
    to_reporter(report);
}

/// Hands `report` to the reporter thread, never waiting: a pool job's panic is reported from
/// the request's event loop, which must not symbolicate, whether or not the request is known.
fn to_reporter(report: PanicReport) {
    let Some(queue) = QUEUED.get() else { return };
    match queue.try_send(report) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            tracing::warn!("panic reporter busy; this panic is not sent to Sentry");
        }
        Err(TrySendError::Disconnected(_)) => {}
    }
}

fn report_all(rx: &Receiver<PanicReport>) {
    for report in rx {
        capture(report);
    }
}

/// Resolves `bt` one address at a time. The backtrace crate serialises capture and
/// resolution behind one lock: resolving a whole backtrace at once (hundreds of ms with full
/// debug info) would make the next panic's capture, on an event loop, wait for all of it.
fn symbolicate(bt: &Backtrace) -> Stacktrace {
    let mut frames = Vec::new();
    for frame in bt.frames() {
        let ip = frame.ip();
        let before = frames.len();
        backtrace::resolve(ip, |symbol| {
            let abs_path = symbol.filename().map(|f| f.display().to_string());
            // Ours by its file, whatever its (in release, often short inlined) name; else
            // the SDK decides from the function name (in_app_include / in_app_exclude).
            let ours = abs_path
                .as_deref()
                .is_some_and(crate::stall::is_our_source)
                .then_some(true);
            frames.push(Frame {
                function: symbol.name().map(|n| format!("{n:#}")),
                in_app: ours,
                abs_path,
                filename: symbol
                    .filename()
                    .and_then(|f| f.file_name())
                    .map(|f| f.to_string_lossy().into_owned()),
                lineno: symbol.lineno().map(u64::from),
                colno: symbol.colno().map(u64::from),
                instruction_addr: Some(Addr(ip as u64)),
                ..Default::default()
            });
        });
        if frames.len() == before {
            frames.push(Frame {
                instruction_addr: Some(Addr(ip as u64)),
                ..Default::default()
            });
        }
    }
    // Innermost first from the unwinder; Sentry wants the oldest first.
    frames.reverse();
    Stacktrace {
        frames,
        ..Default::default()
    }
}

fn capture(report: PanicReport) {
    let stacktrace = Some(match &report.backtrace {
        Some(bt) => trim(symbolicate(bt), &report.file, report.line),
        None => only_the_panicking_line(&report.file, report.line),
    });
    let caught = report.request.is_some();
    let mut event = Event {
        // Caught and answered 500: an error, handled. Elsewhere the thread is lost: fatal.
        level: if caught { Level::Error } else { Level::Fatal },
        exception: vec![Exception {
            ty: "panic".to_owned(),
            value: Some(report.message),
            stacktrace,
            mechanism: Some(Mechanism {
                ty: "panic".to_owned(),
                handled: Some(caught),
                ..Default::default()
            }),
            ..Default::default()
        }]
        .into(),
        ..Default::default()
    };
    event
        .extra
        .insert("thread".to_owned(), report.thread.into());
    if let Some(request) = report.request {
        request.with_tag("status", "500").apply(&mut event);
    }
    sentry::Hub::main().capture_event(event);
}

fn only_the_panicking_line(file: &str, line: u32) -> Stacktrace {
    Stacktrace {
        frames: vec![Frame {
            filename: file.rsplit('/').next().map(str::to_owned),
            abs_path: Some(file.to_owned()),
            lineno: Some(u64::from(line)),
            in_app: Some(true),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Drops the frames of the panic machinery (everything newer than the panicking line), keeps
/// the innermost [`MAX_FRAMES`], and cuts huge generic function names.
fn trim(mut st: Stacktrace, file: &str, line: u32) -> Stacktrace {
    // Frames are oldest first: the panicking line is the last frame at that file:line.
    let panicking = st.frames.iter().rposition(|f| {
        f.lineno == Some(u64::from(line))
            && f.abs_path
                .as_deref()
                .or(f.filename.as_deref())
                .is_some_and(|p| p.ends_with(file) || file.ends_with(p))
    });
    match panicking {
        Some(i) => st.frames.truncate(i + 1),
        None => {
            // No line tables: cut at the last frame of the panic machinery instead.
            if let Some(i) = st.frames.iter().position(|f| {
                f.function.as_deref().is_some_and(|name| {
                    name.starts_with("std::panicking")
                        || name.starts_with("core::panicking")
                        || name.starts_with("rust_begin_unwind")
                })
            }) {
                st.frames.truncate(i);
            }
        }
    }
    let excess = st.frames.len().saturating_sub(MAX_FRAMES);
    st.frames.drain(..excess);
    for frame in &mut st.frames {
        for name in [&mut frame.function, &mut frame.symbol]
            .into_iter()
            .flatten()
        {
            if name.len() > MAX_FUNCTION_CHARS {
                let mut cut = MAX_FUNCTION_CHARS;
                while !name.is_char_boundary(cut) {
                    cut -= 1;
                }
                name.truncate(cut);
                name.push('…');
            }
        }
    }
    st
}

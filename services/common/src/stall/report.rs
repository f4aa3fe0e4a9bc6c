//! The stall reporter: one plain thread that turns captures (from the watchdog) and finished
//! long polls (from the workers) into stall records: symbolized, classified, kept in a ring
//! for `/debug/stalls`, counted, logged once and sent to Sentry once per stall.
use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use serde::Serialize;

use super::classify::Classification;
use super::context::RequestContext;
use super::sentry_event::SentryStallReporter;
use super::slot::{self, now_ns};
use super::symbolize::{StackFrame, symbolize};
use crate::metrics::Instruments;
use crate::metrics::names::{LABEL_ENDPOINT, LABEL_OUTCOME, LABEL_WORKER};

/// Stalls kept for `/debug/stalls`.
const RING: usize = 32;
/// A captured stall still running after this is reported anyway (a deadlock never ends).
const REPORT_RUNNING_AFTER: Duration = Duration::from_secs(1);
/// A stall with no stack waits this long for its request's route (known when it ends).
const REPORT_UNROUTED_AFTER: Duration = Duration::from_secs(30);
/// A finished stall with no capture yet waits this long for the watchdog's message.
const CAPTURE_GRACE: Duration = Duration::from_millis(200);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CaptureOutcome {
    Captured,
    Unsupported,
    Failed,
    RateLimited,
    /// `--stall-capture-ms 0`: not attempted (not counted in the captures metric).
    Off,
}

impl CaptureOutcome {
    pub(crate) const COUNTED: [Self; 4] = [
        Self::Captured,
        Self::Unsupported,
        Self::Failed,
        Self::RateLimited,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Captured => "captured",
            Self::Unsupported => "unsupported",
            Self::Failed => "failed",
            Self::RateLimited => "rate_limited",
            Self::Off => "off",
        }
    }
}

pub(crate) struct Capture {
    pub(crate) worker: String,
    pub(crate) tid: i32,
    pub(crate) started_ns: u64,
    pub(crate) captured_ns: u64,
    pub(crate) request: Option<Arc<RequestContext>>,
    /// Read by the watchdog just after the capture, while the request still runs.
    pub(crate) trace: Option<sentry::protocol::TraceContext>,
    pub(crate) addresses: Vec<u64>,
    pub(crate) classification: Classification,
    pub(crate) outcome: CaptureOutcome,
    pub(crate) error: Option<String>,
}

pub(crate) struct Finished {
    pub(crate) worker: String,
    pub(crate) tid: i32,
    /// Only when no capture told it (capture off): read on the worker as the poll ends.
    pub(crate) trace: Option<sentry::protocol::TraceContext>,
    pub(crate) started_ns: u64,
    pub(crate) blocked: Duration,
    pub(crate) request: Arc<RequestContext>,
}

pub(crate) enum Message {
    Captured(Capture),
    Finished(Finished),
}

/// One stall, as the monitor keeps it (`/debug/stalls` shows it as a `contract::Stall`).
#[derive(Clone)]
pub(crate) struct StallRecord {
    pub route: Option<String>,
    pub method: Option<String>,
    pub worker: String,
    pub thread_id: i32,
    pub request_id: Option<String>,
    pub trace_id: Option<String>,
    pub started_at: String,
    /// Still running now (the poll that stalled has not returned).
    pub in_progress: bool,
    /// How long the poll had run when the stack was taken.
    pub captured_after_ms: Option<f64>,
    /// How long it has run so far (in progress) or in total (finished).
    pub running_ms: f64,
    /// The whole poll, once it returned.
    pub blocked_ms: Option<f64>,
    pub classification: Classification,
    pub capture: CaptureOutcome,
    pub capture_error: Option<String>,
    /// False while the stack is being symbolized (the first time in a process can take a
    /// second or more in a debug build: it loads the debug info).
    pub symbolized: bool,
    /// Innermost first: the blocking call, then its callers.
    pub frames: Vec<StackFrame>,
    pub(crate) started_ns: u64,
    pub(crate) trace: Option<sentry::protocol::TraceContext>,
    pub(crate) request: Option<Arc<RequestContext>>,
    report_at: Option<Instant>,
    captured: bool,
    /// Counted, logged and sent already: once per stall, whatever arrives later.
    reported: bool,
}

impl StallRecord {
    /// As `/debug/stalls` shows it (the contract's type).
    fn into_view(self) -> contract::Stall {
        contract::Stall {
            route: self.route,
            method: self.method,
            worker: self.worker,
            thread_id: self.thread_id,
            request_id: self.request_id,
            trace_id: self.trace_id,
            started_at: self.started_at,
            in_progress: self.in_progress,
            captured_after_ms: self.captured_after_ms,
            running_ms: self.running_ms,
            blocked_ms: self.blocked_ms,
            classification: self.classification.as_str().to_owned(),
            capture: self.capture.as_str().to_owned(),
            capture_error: self.capture_error,
            symbolized: self.symbolized,
            frames: self
                .frames
                .into_iter()
                .map(|f| contract::StallFrame {
                    function: f.function,
                    file: f.file,
                    line: f.line,
                    in_app: f.in_app,
                    address: f.address,
                })
                .collect(),
        }
    }

    fn new(worker: String, thread_id: i32, started_ns: u64, outcome: CaptureOutcome) -> Self {
        let ago = Duration::from_nanos(now_ns().saturating_sub(started_ns));
        let started_at = chrono::Utc::now() - chrono::Duration::from_std(ago).unwrap_or_default();
        Self {
            route: None,
            method: None,
            worker,
            thread_id,
            request_id: None,
            trace_id: None,
            started_at: started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            in_progress: true,
            captured_after_ms: None,
            running_ms: 0.0,
            blocked_ms: None,
            classification: Classification::Unknown,
            capture: outcome,
            capture_error: None,
            symbolized: false,
            frames: Vec::new(),
            started_ns,
            trace: None,
            request: None,
            report_at: None,
            captured: false,
            reported: false,
        }
    }

    fn set_request(
        &mut self,
        request: &Arc<RequestContext>,
        trace: Option<sentry::protocol::TraceContext>,
    ) {
        if self.request.is_some() {
            return;
        }
        self.route = Some(request.route.to_string());
        self.method = Some(request.method.to_string());
        self.request_id = Some(request.request_id.as_str().to_owned());
        self.trace = trace;
        self.trace_id = self.trace.as_ref().map(|t| t.trace_id.to_string());
        self.request = Some(request.clone());
    }

    fn matches(&self, worker: &str, started_ns: u64) -> bool {
        self.started_ns == started_ns && self.worker == worker
    }

    /// The top in-app frames, `function (file:line)`, for the log line.
    pub(crate) fn top_in_app(&self, n: usize) -> Vec<String> {
        self.frames
            .iter()
            .filter(|f| f.in_app)
            .take(n)
            .map(|f| match (&f.file, f.line) {
                (Some(file), Some(line)) => format!("{} ({file}:{line})", f.function),
                _ => f.function.clone(),
            })
            .collect()
    }
}

/// What `/debug/stalls` reads: the ring, newest last.
#[derive(Default)]
pub(crate) struct StallLog {
    pub(crate) records: VecDeque<StallRecord>,
}

pub(crate) struct Settings {
    pub(crate) capture: Option<Duration>,
    pub(crate) report_interval: Duration,
    pub(crate) service: &'static str,
    pub(crate) handling: Option<&'static str>,
}

/// The handle the server keeps: where workers send finished stalls, what the admin route reads.
#[derive(Clone)]
pub(crate) struct StallMonitor {
    pub(crate) log: Arc<Mutex<StallLog>>,
    pub(crate) tx: Sender<Message>,
    pub(crate) capture: Option<Duration>,
    pub(crate) blocked_threshold: Duration,
}

impl StallMonitor {
    /// Starts the reporter thread, and the watchdog when `capture` is set.
    pub(crate) fn start(
        service: &crate::ServiceInfo,
        instruments: Instruments,
        blocked_threshold: Duration,
        capture: Option<Duration>,
        report_interval: Duration,
    ) -> std::io::Result<Self> {
        super::slot::mark_panics();
        let (tx, rx) = channel();
        let log: Arc<Mutex<StallLog>> = Arc::default();
        let settings = Settings {
            capture,
            report_interval,
            service: service.name,
            handling: service.handling,
        };
        let shared = log.clone();
        std::thread::Builder::new()
            .name("loopscope-stall-reporter".into())
            .spawn(move || Reporter::new(shared, instruments, settings).run(rx))?;
        if let Some(threshold) = capture {
            super::watchdog::spawn(threshold, tx.clone())?;
        }
        Ok(Self {
            log,
            tx,
            capture,
            blocked_threshold,
        })
    }

    /// Polls this long or longer are reported (a stack is taken from those still running).
    pub(crate) fn report_threshold(&self) -> Duration {
        self.capture.unwrap_or(self.blocked_threshold)
    }

    pub(crate) fn finished(&self, finished: Finished) {
        let _ = self.tx.send(Message::Finished(finished));
    }
}

/// At most one warning line per route per this long; the next says how many were skipped.
const LOG_INTERVAL: Duration = Duration::from_secs(1);

struct Reporter {
    log: Arc<Mutex<StallLog>>,
    /// Per route: the last warning line, and the stalls not logged since.
    logged: HashMap<String, (Instant, u64)>,
    instruments: Instruments,
    settings: Settings,
    sentry: SentryStallReporter,
}

impl Reporter {
    fn new(log: Arc<Mutex<StallLog>>, instruments: Instruments, settings: Settings) -> Self {
        let sentry = SentryStallReporter::new(
            settings.report_interval,
            settings.service,
            settings.handling,
        );
        Self {
            log,
            logged: HashMap::new(),
            instruments,
            settings,
            sentry,
        }
    }

    fn run(mut self, rx: Receiver<Message>) {
        super::signal::lower_this_thread_priority();
        // Parse the debug info now, not when the first stall is waiting to be shown.
        if self.settings.capture.is_some() {
            let started = Instant::now();
            let _ = symbolize(&[warm_up as *const () as u64]);
            tracing::info!(
                warm_up_ms = ms(started.elapsed()),
                "stall capture ready: debug info loaded for symbolization"
            );
        }
        loop {
            // Asleep until a stall arrives or a report falls due: no wake-ups while idle.
            let message = match self.next_due() {
                Some(due) => rx.recv_timeout(due.saturating_duration_since(Instant::now())),
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match message {
                Ok(Message::Captured(c)) => self.captured(c),
                Ok(Message::Finished(f)) => self.finished(f),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            self.report_due();
        }
    }

    /// When the next report waiting in the log is due.
    fn next_due(&self) -> Option<Instant> {
        let log = self.lock();
        log.records
            .iter()
            .filter(|r| !r.reported)
            .filter_map(|r| r.report_at)
            .min()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StallLog> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Finds the record of this poll or makes one (evicting, and reporting, the oldest).
    fn with_record(
        &mut self,
        worker: &str,
        tid: i32,
        started_ns: u64,
        f: impl FnOnce(&mut StallRecord),
    ) {
        let outcome = if self.settings.capture.is_some() {
            CaptureOutcome::Failed
        } else {
            CaptureOutcome::Off
        };
        let mut evicted = None;
        {
            let mut log = self.lock();
            if let Some(r) = log
                .records
                .iter_mut()
                .find(|r| r.matches(worker, started_ns))
            {
                f(r);
                return;
            }
            if log.records.len() >= RING {
                evicted = log.records.pop_front();
            }
            let mut record = StallRecord::new(worker.to_owned(), tid, started_ns, outcome);
            f(&mut record);
            log.records.push_back(record);
        }
        if let Some(mut old) = evicted
            && old.report_at.is_some()
            && !old.reported
        {
            self.report(&mut old);
        }
    }

    fn captured(&mut self, c: Capture) {
        let after_ms = ms(Duration::from_nanos(
            c.captured_ns.saturating_sub(c.started_ns),
        ));
        let routed = c.request.is_some();
        // Shown at once (route, request, classification); the frames follow once symbolized.
        self.with_record(&c.worker, c.tid, c.started_ns, |r| {
            if let Some(request) = &c.request {
                r.set_request(request, c.trace);
            }
            r.classification = c.classification;
            r.capture = c.outcome;
            r.capture_error = c.error;
            r.captured_after_ms = Some(after_ms);
            r.running_ms = r.running_ms.max(after_ms);
        });
        // Outside the lock: the first symbolization parses the debug info.
        let started = Instant::now();
        let frames = symbolize(&c.addresses);
        tracing::debug!(
            frames = frames.len(),
            took_ms = ms(started.elapsed()),
            "stall stack symbolized"
        );
        if frames.iter().any(|f| is_panic_machinery(&f.function)) {
            // A handler panicking: the panic hook (backtrace, Sentry) holds the loop before
            // unwinding. That is a panic, reported as one, not a blocked event loop.
            self.lock()
                .records
                .retain(|r| !r.matches(&c.worker, c.started_ns));
            return;
        }
        self.with_record(&c.worker, c.tid, c.started_ns, |r| {
            r.frames = frames;
            r.symbolized = true;
            r.captured = true;
            if r.blocked_ms.is_some() {
                r.report_at = Some(Instant::now());
            } else if r.report_at.is_none() {
                let wait = if routed {
                    REPORT_RUNNING_AFTER
                } else {
                    REPORT_UNROUTED_AFTER
                };
                r.report_at = Some(Instant::now() + wait);
            }
        });
    }

    fn finished(&mut self, f: Finished) {
        let capture_on = self.settings.capture.is_some();
        self.with_record(&f.worker, f.tid, f.started_ns, |r| {
            r.set_request(&f.request, f.trace);
            r.blocked_ms = Some(ms(f.blocked));
            r.running_ms = ms(f.blocked);
            r.in_progress = false;
            let wait = if r.captured || !capture_on {
                Duration::ZERO
            } else {
                if r.capture_error.is_none() {
                    r.capture_error = Some("the poll ended before the watchdog saw it".into());
                }
                CAPTURE_GRACE
            };
            let at = Instant::now() + wait;
            r.report_at = Some(r.report_at.map_or(at, |t| t.min(at)));
        });
    }

    fn report_due(&mut self) {
        let now = Instant::now();
        let due: Vec<StallRecord> = {
            let mut log = self.lock();
            log.records
                .iter_mut()
                .filter(|r| !r.reported && r.report_at.is_some_and(|t| t <= now))
                .map(|r| {
                    r.report_at = None;
                    r.reported = true;
                    r.clone()
                })
                .collect()
        };
        for mut record in due {
            self.report(&mut record);
        }
    }

    /// Once per stall: the counters, one warning log line, one Sentry event (rate-limited).
    fn report(&mut self, record: &mut StallRecord) {
        record.report_at = None;
        record.reported = true;
        if record.in_progress {
            record.running_ms = ms(Duration::from_nanos(
                now_ns().saturating_sub(record.started_ns),
            ));
        }
        let route = record.route.clone().unwrap_or_else(|| "UNKNOWN".to_owned());
        self.instruments.stalls.add(
            1,
            &[
                KeyValue::new(LABEL_ENDPOINT, route.clone()),
                KeyValue::new(LABEL_WORKER, record.worker.clone()),
                KeyValue::new(LABEL_CLASSIFICATION, record.classification.as_str()),
            ],
        );
        if record.capture != CaptureOutcome::Off {
            self.instruments.stall_captures.add(
                1,
                &[
                    KeyValue::new(LABEL_ENDPOINT, route.clone()),
                    KeyValue::new(LABEL_OUTCOME, record.capture.as_str()),
                ],
            );
        }
        // A route that blocks on every request would otherwise write a line per request.
        let now = Instant::now();
        let suppressed = match self.logged.get_mut(&route) {
            Some((at, skipped)) if now.duration_since(*at) < LOG_INTERVAL => {
                *skipped += 1;
                None
            }
            Some((at, skipped)) => {
                *at = now;
                Some(std::mem::take(skipped))
            }
            None => {
                self.logged.insert(route.clone(), (now, 0));
                Some(0)
            }
        };
        if let Some(suppressed) = suppressed {
            self.log_line(record, &route, suppressed);
        }
        self.sentry.report(record);
    }

    fn log_line(&self, record: &StallRecord, route: &str, suppressed: u64) {
        tracing::warn!(
            route = %route,
            worker = %record.worker,
            request_id = record.request_id.as_deref().unwrap_or("-"),
            trace_id = record.trace_id.as_deref().unwrap_or("-"),
            blocked_ms = record.running_ms,
            still_blocked = record.in_progress,
            classification = record.classification.as_str(),
            capture = record.capture.as_str(),
            frames = %record.top_in_app(5).join(" <- "),
            suppressed_since_last = suppressed,
            "event loop blocked: a handler held its worker's event loop"
        );
    }
}

use crate::metrics::names::LABEL_CLASSIFICATION;

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn warm_up() {}

/// Frames of std's panic path, between a `panic!` and the unwinding.
fn is_panic_machinery(function: &str) -> bool {
    [
        "panic_with_hook",
        "begin_panic_handler",
        "core::panicking::panic_fmt",
        "std::panicking::begin_panic",
    ]
    .iter()
    .any(|p| function.contains(p))
}

impl StallMonitor {
    pub(crate) fn view(&self) -> contract::StallsView {
        let now = now_ns();
        let threshold = self.report_threshold();
        let slots = slot::all();
        let running: Vec<(String, i32, u64, Duration)> = slots
            .iter()
            .filter_map(|s| {
                let (started, _) = s.running()?;
                let age = s.running_for(now);
                (age >= threshold).then(|| (s.worker.clone(), s.tid, started, age))
            })
            .collect();
        let mut stalls: Vec<StallRecord> = {
            let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
            log.records.iter().rev().cloned().collect()
        };
        for r in &mut stalls {
            if let Some((_, _, _, age)) = running
                .iter()
                .find(|(w, _, started, _)| *w == r.worker && *started == r.started_ns)
            {
                r.in_progress = true;
                r.running_ms = ms(*age);
            } else if r.blocked_ms.is_none() {
                // Ended, and its end not processed yet: no longer running.
                r.in_progress = false;
            }
        }
        contract::StallsView {
            capture_threshold_ms: self.capture.map(|c| c.as_millis() as u64),
            blocked_threshold_ms: self.blocked_threshold.as_millis() as u64,
            running: running
                .into_iter()
                .map(|(worker, thread_id, _, age)| contract::RunningPoll {
                    worker,
                    thread_id,
                    running_ms: ms(age),
                })
                .collect(),
            stalls: stalls.into_iter().map(StallRecord::into_view).collect(),
        }
    }
}

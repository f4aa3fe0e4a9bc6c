//! Counting while the load runs ([`Tally`]) and the result of a run ([`Summary`]).
//!
//! Latency goes into an HDR histogram in microseconds, for every *answered* request,
//! whatever its status: a fast 503 and a slow 200 are both the server's answer time. Requests
//! that got no answer (refused, timed out, reset) have no latency; they are counted by kind.
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::outcome::ErrorKind;
use super::{Model, Plan, Stop};

/// Highest latency the histogram resolves: one hour, in µs; longer ones count as one hour.
const MAX_MICROS: u64 = 3_600_000_000;

fn new_histogram() -> Histogram<u64> {
    // 3 significant digits: 0.1 % resolution at any magnitude.
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("constant, valid bounds")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// The running count, shared by the request tasks, the progress display and the summary.
#[derive(Default)]
pub(crate) struct Live(Mutex<Tally>);

impl Live {
    /// The count; a panicked holder cannot have left it half-updated in a way that matters.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Tally> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records one request's end: its status, or why it failed.
    pub(crate) fn record(&self, result: Result<u16, ErrorKind>, latency: Duration) {
        let mut tally = self.lock();
        match result {
            Ok(status) => tally.answered(status, latency),
            Err(kind) => tally.failed(kind),
        }
    }

    /// Takes the count out, leaving an empty one.
    pub(crate) fn take(&self) -> Tally {
        std::mem::take(&mut *self.lock())
    }
}

/// The running count, behind the engine's mutex.
#[derive(Debug, Clone)]
pub(crate) struct Tally {
    histogram: Histogram<u64>,
    pub(crate) sent: u64,
    pub(crate) ok: u64,
    pub(crate) errors: u64,
    statuses: BTreeMap<u16, u64>,
    error_kinds: BTreeMap<ErrorKind, u64>,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            histogram: new_histogram(),
            sent: 0,
            ok: 0,
            errors: 0,
            statuses: BTreeMap::new(),
            error_kinds: BTreeMap::new(),
        }
    }
}

impl Tally {
    /// An answer with `status`, `latency` after it was sent (or meant to be).
    pub(crate) fn answered(&mut self, status: u16, latency: Duration) {
        self.histogram.saturating_record(micros(latency));
        *self.statuses.entry(status).or_default() += 1;
        if (200..300).contains(&status) {
            self.ok += 1;
        } else {
            self.failed(ErrorKind::Status(status));
        }
    }

    /// A request that failed; for [`ErrorKind::Status`] call [`Tally::answered`] instead.
    pub(crate) fn failed(&mut self, kind: ErrorKind) {
        self.errors += 1;
        *self.error_kinds.entry(kind).or_default() += 1;
    }

    pub(crate) fn done(&self) -> u64 {
        self.ok + self.errors
    }

    pub(crate) fn percentile_ms(&self, q: f64) -> f64 {
        ms(&self.histogram, q)
    }
}

/// `q` as a quantile (0.99) or, above 1, a percentile (99.0).
fn ms(histogram: &Histogram<u64>, q: f64) -> f64 {
    if histogram.is_empty() {
        return 0.0;
    }
    let quantile = if q > 1.0 { q / 100.0 } else { q };
    histogram.value_at_quantile(quantile.clamp(0.0, 1.0)) as f64 / 1e3
}

/// Latency of the answered requests, in milliseconds (0 when nothing was answered).
#[derive(Serialize, Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    /// How many requests were answered (any status): the histogram's sample count.
    pub count: u64,
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// The result of a run. Serialized as the `--json` output.
#[derive(Serialize, Debug, Clone)]
pub struct Summary {
    /// `open` or `closed`.
    pub model: &'static str,
    /// Open model: the requested rate (per second).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Closed model: requests in flight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    pub urls: Vec<String>,
    sent: u64,
    ok: u64,
    /// Every request that did not end in a 2xx: non-2xx answers and failures.
    errors: u64,
    /// Sent but neither answered nor failed when the run was interrupted.
    unfinished: u64,
    elapsed_s: f64,
    /// 2xx answers per second of `elapsed_s`.
    throughput: f64,
    latency_ms: Latency,
    /// Answers by status code.
    statuses: BTreeMap<u16, u64>,
    /// Errors by kind: `connect_refused`, `timeout`, `status_503`, ...
    error_kinds: BTreeMap<String, u64>,
    /// Whether the run was cancelled (Ctrl-C) before its end.
    interrupted: bool,
    #[serde(skip)]
    histogram: Histogram<u64>,
}

impl Summary {
    pub(crate) fn new(plan: &Plan, tally: Tally, elapsed: Duration, interrupted: bool) -> Self {
        let (model, rate, concurrency) = match plan.model {
            Model::Open { rate } => ("open", Some(rate), None),
            Model::Closed { concurrency } => ("closed", None, Some(concurrency)),
        };
        let h = &tally.histogram;
        let latency_ms = Latency {
            count: h.len(),
            min: if h.is_empty() {
                0.0
            } else {
                h.min() as f64 / 1e3
            },
            mean: if h.is_empty() { 0.0 } else { h.mean() / 1e3 },
            p50: ms(h, 0.5),
            p90: ms(h, 0.9),
            p99: ms(h, 0.99),
            p999: ms(h, 0.999),
            max: if h.is_empty() {
                0.0
            } else {
                h.max() as f64 / 1e3
            },
        };
        let secs = elapsed.as_secs_f64();
        Self {
            model,
            rate,
            concurrency,
            urls: plan.urls.clone(),
            sent: tally.sent,
            ok: tally.ok,
            errors: tally.errors,
            unfinished: tally.sent.saturating_sub(tally.done()),
            elapsed_s: secs,
            throughput: if secs > 0.0 {
                tally.ok as f64 / secs
            } else {
                0.0
            },
            latency_ms,
            statuses: tally.statuses,
            error_kinds: tally
                .error_kinds
                .into_iter()
                .map(|(k, n)| (k.label(), n))
                .collect(),
            interrupted,
            histogram: tally.histogram,
        }
    }

    /// An empty summary, for a plan that fails validation.
    pub(crate) fn empty(plan: &Plan) -> Self {
        Self::new(plan, Tally::default(), Duration::ZERO, false)
    }

    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Answers with a 2xx status.
    pub fn ok(&self) -> u64 {
        self.ok
    }

    /// Every request that did not end in a 2xx (non-2xx answers included).
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// Sent, not finished when the run was interrupted.
    pub fn unfinished(&self) -> u64 {
        self.unfinished
    }

    /// Requests that got an answer, any status: the latency samples.
    pub fn answered(&self) -> u64 {
        self.latency_ms.count
    }

    pub fn error_kinds(&self) -> BTreeMap<String, u64> {
        self.error_kinds.clone()
    }

    pub fn statuses(&self) -> BTreeMap<u16, u64> {
        self.statuses.clone()
    }

    pub fn elapsed(&self) -> Duration {
        Duration::from_secs_f64(self.elapsed_s)
    }

    /// 2xx answers per second.
    pub fn throughput(&self) -> f64 {
        self.throughput
    }

    pub fn interrupted(&self) -> bool {
        self.interrupted
    }

    /// Whether requests failed and none succeeded (an interrupted run whose requests are
    /// all unfinished has not failed: it was stopped).
    pub fn all_failed(&self) -> bool {
        self.errors > 0 && self.ok == 0
    }

    /// Latency at `q`, in ms, over answered requests: `q` as a quantile (0.99) or as a
    /// percentile above 1 (99.0, 99.9); 0 when nothing was answered.
    pub fn percentile_ms(&self, q: f64) -> f64 {
        ms(&self.histogram, q)
    }

    pub fn max_ms(&self) -> f64 {
        self.latency_ms.max
    }

    pub fn min_ms(&self) -> f64 {
        self.latency_ms.min
    }

    pub fn mean_ms(&self) -> f64 {
        self.latency_ms.mean
    }

    /// The fixed set of figures `--json` prints: p50, p90, p99, p99.9, max, ...
    pub fn latency(&self) -> Latency {
        self.latency_ms
    }

    /// The histogram itself (µs), for merging or finer quantiles.
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.histogram
    }

    pub(crate) fn model_description(&self) -> String {
        match (self.rate, self.concurrency) {
            (Some(rate), _) => format!("open model, {rate} req/s"),
            (_, Some(c)) => format!("closed model, {c} in flight"),
            _ => self.model.to_owned(),
        }
    }
}

/// `10s`, `1.5s`, `250ms`: how a stop reads in messages.
pub(crate) fn describe_stop(stop: Stop) -> String {
    match stop {
        Stop::Count(n) => format!("{n} requests"),
        Stop::After(d) if d.subsec_millis() == 0 => format!("{}s", d.as_secs()),
        Stop::After(d) => format!("{}ms", d.as_millis()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            model: Model::Open { rate: 50.0 },
            stop: Stop::Count(100),
            urls: vec!["http://x/".to_owned()],
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn counts_statuses_errors_and_latency() {
        let mut t = Tally::default();
        for i in 1..=98u64 {
            t.sent += 1;
            t.answered(200, Duration::from_millis(i));
        }
        t.sent += 3;
        t.answered(503, Duration::from_millis(1000));
        t.failed(ErrorKind::ConnectRefused);
        let s = Summary::new(&plan(), t, Duration::from_secs(2), true);
        assert_eq!(
            (s.sent(), s.ok(), s.errors(), s.unfinished()),
            (101, 98, 2, 1)
        );
        assert_eq!(s.answered(), 99);
        assert_eq!(s.statuses(), BTreeMap::from([(200, 98), (503, 1)]));
        assert_eq!(
            s.error_kinds(),
            BTreeMap::from([
                ("connect_refused".to_owned(), 1),
                ("status_503".to_owned(), 1)
            ])
        );
        assert_eq!(s.throughput(), 49.0);
        assert_eq!(s.elapsed(), Duration::from_secs(2));
        // 0.5 and 50 are the same question; 3 significant digits.
        assert!(
            (s.percentile_ms(0.5) - 50.0).abs() < 0.1,
            "{}",
            s.percentile_ms(0.5)
        );
        assert_eq!(s.percentile_ms(0.5), s.percentile_ms(50.0));
        assert!((s.max_ms() - 1000.0).abs() < 1.0);
        assert_eq!(s.percentile_ms(1.0), s.percentile_ms(100.0));
        assert!(!s.all_failed());
        let json = serde_json::to_value(&s).expect("json");
        assert_eq!(json["error_kinds"]["connect_refused"], 1);
        assert_eq!(json["statuses"]["503"], 1);
        assert_eq!(json["model"], "open");
        assert!(json["latency_ms"]["p99"].as_f64().is_some());
        assert!(json.get("histogram").is_none());
    }

    #[test]
    fn an_open_run_against_a_stall_shows_it_at_p99() {
        // 100 requests at 50/s; the server stalls the first second: those meant for
        // 0..1000 ms are all answered at 1000 ms, the rest in 2 ms.
        let mut t = Tally::default();
        for i in 0..100u64 {
            let intended = super::super::schedule::intended_offset(i, 50.0);
            let answered = if intended < Duration::from_secs(1) {
                Duration::from_secs(1)
            } else {
                intended + Duration::from_millis(2)
            };
            t.sent += 1;
            t.answered(200, super::super::schedule::latency(intended, answered));
        }
        let s = Summary::new(&plan(), t, Duration::from_secs(2), false);
        assert!(s.percentile_ms(0.99) >= 979.0, "{}", s.percentile_ms(0.99));
        assert!(s.percentile_ms(0.5) <= 20.0, "{}", s.percentile_ms(0.5));
    }

    #[test]
    fn nothing_answered_is_all_zero_not_a_panic() {
        let mut t = Tally {
            sent: 2,
            ..Tally::default()
        };
        t.failed(ErrorKind::Timeout);
        t.failed(ErrorKind::Timeout);
        let s = Summary::new(&plan(), t, Duration::ZERO, false);
        assert!(s.all_failed());
        assert_eq!(
            (s.percentile_ms(0.99), s.max_ms(), s.throughput()),
            (0.0, 0.0, 0.0)
        );
        assert_eq!(describe_stop(Stop::After(Duration::from_secs(10))), "10s");
        assert_eq!(
            describe_stop(Stop::After(Duration::from_millis(1500))),
            "1500ms"
        );
    }
}

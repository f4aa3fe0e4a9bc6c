//! What an experiment produces: the verdict and the data its charts are drawn from. The HTML
//! report and `--json` both read these; nothing is computed twice.
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct ExperimentOutcome {
    /// Short name, as on the command line: `blocking`.
    pub name: String,
    /// One line for people: "A blocking call in an async handler stalls its event loop".
    pub title: String,
    /// The seed document it reproduces ("002"), if any.
    pub seed: Option<String>,
    /// What the seed predicts, in a sentence or two.
    pub prediction: String,
    pub checks: Vec<Check>,
    pub passed: bool,
    pub data: ExperimentData,
}

/// One predicted-vs-measured line of the comparison table.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Check {
    pub label: String,
    pub predicted: String,
    pub measured: String,
    /// The tolerance the verdict used, in words ("ratio > 4").
    pub tolerance: String,
    pub pass: bool,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExperimentData {
    /// Experiment 1: every request on a time axis, one lane per thread.
    Timeline { scenarios: Vec<TimelineScenario> },
    /// Experiments 2 and 3: one bar per variant, predicted and measured.
    Bars { unit: String, bars: Vec<Bar> },
    /// Experiments 4 and 5: latency percentiles per series.
    Percentiles {
        unit: String,
        series: Vec<PercentileSeries>,
    },
    /// Experiment 6: per mode, one point per arrival-rate step.
    Sweep { modes: Vec<SweepSeries> },
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct TimelineScenario {
    /// "threadpool: blocking sleep on the pool".
    pub name: String,
    pub requests: Vec<TimelineRequest>,
    /// The stack of the request that blocked the event loop, as the worker's stall watchdog
    /// took it while it blocked (`/debug/stalls`); `None` where nothing blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub culprit: Option<CulpritStack>,
}

/// A stall the worker caught, as its `/debug/stalls` lists it.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct CulpritStack {
    pub route: String,
    pub request_id: Option<String>,
    /// Why the thread was stuck: `sleep`, `cpu`, `lock`, `io`, `starved`, `unknown`.
    pub classification: String,
    pub blocked_ms: Option<f64>,
    /// Requests the worker counted as delayed behind this route during the scenario
    /// (`loopscope_event_loop_delayed_requests_total{culprit}`).
    pub victims: Option<f64>,
    /// Innermost first.
    pub frames: Vec<CulpritFrame>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct CulpritFrame {
    pub function: String,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub in_app: bool,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct TimelineRequest {
    /// 1-based, in sending order.
    pub index: usize,
    /// The path asked for, e.g. `/work/block?ms=1000`.
    pub path: String,
    /// Where it ran: the thread's name and OS id, and the event loop that accepted it.
    pub thread: String,
    pub thread_id: i64,
    pub event_loop: String,
    /// Milliseconds from the scenario start: sent by the client, started and finished on
    /// the server (server clock, aligned to the client's by the first request), answered.
    pub sent_ms: f64,
    pub started_ms: f64,
    pub finished_ms: f64,
    pub answered_ms: f64,
    /// Whether this request is the slow one the scenario injects.
    pub injected: bool,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub predicted: f64,
    pub measured: f64,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct PercentileSeries {
    pub name: String,
    pub count: u64,
    pub errors: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct SweepSeries {
    /// `async` or `threadpool`.
    pub mode: String,
    pub steps: Vec<SweepStep>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct SweepStep {
    /// Offered load, requests per second.
    pub rate: f64,
    /// Answered successfully per second.
    pub throughput: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    /// The worker's process_threads and process_resident_memory_bytes at the step's end.
    pub threads: f64,
    pub rss_mb: f64,
}

/// The whole `experiment` run, as written to `report.json`.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct RunReport {
    pub generated_at: String,
    pub loopscope_version: String,
    pub stack: serde_json::Value,
    pub experiments: Vec<ExperimentOutcome>,
}

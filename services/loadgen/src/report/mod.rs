//! The experiment report: `report.json` (the `RunReport` as is) and `index.html`, one page
//! that needs nothing but a browser: inline CSS, charts as inline SVG drawn by plotters, no
//! script, no font or file fetched from anywhere.
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::model::RunReport;

mod charts;
mod culprit;
mod html;
mod table;

pub use html::escape;

/// The file name of the page in the report directory.
pub const HTML_FILE: &str = "index.html";
/// The file name of the data, next to the page (the page links to it).
pub const JSON_FILE: &str = "report.json";

/// Creates `dir` (and its parents) and writes `report.json` and `index.html` into it;
/// returns the path of `index.html`.
pub fn write(report: &RunReport, dir: &Path) -> io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    let mut json = serde_json::to_string_pretty(report).map_err(io::Error::other)?;
    json.push('\n');
    fs::write(dir.join(JSON_FILE), json)?;
    let path = dir.join(HTML_FILE);
    fs::write(&path, render(report))?;
    Ok(path)
}

/// The whole page, as written to `index.html`.
pub fn render(report: &RunReport) -> String {
    html::page(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    fn outcome(name: &str, data: ExperimentData) -> ExperimentOutcome {
        ExperimentOutcome {
            name: name.into(),
            title: name.into(),
            seed: None,
            prediction: String::new(),
            checks: Vec::new(),
            passed: true,
            data,
        }
    }

    /// Crowded, degenerate and broken data: every chart is still drawn.
    #[test]
    fn awkward_data_still_draws_every_chart() {
        // 12 requests at once on one event loop (they stack in rows), 20 pool threads, a thread
        // name far too long, and a request with no timing at all.
        let mut requests: Vec<TimelineRequest> = (1..=12)
            .map(|i| TimelineRequest {
                index: i,
                path: "/work/io?ms=100".into(),
                thread: "actix-rt|system:0|arbiter:0".into(),
                thread_id: 100,
                event_loop: "0".into(),
                sent_ms: i as f64,
                started_ms: i as f64 + 0.5,
                finished_ms: i as f64 + 100.5,
                answered_ms: i as f64 + 101.0,
                injected: i == 1,
            })
            .collect();
        requests.extend((13..=32).map(|i| TimelineRequest {
            index: i,
            path: "/work/cpu?ms=5".into(),
            thread: format!("a-very-long-thread-name-from-some-runtime-worker-{i}"),
            thread_id: 200 + i as i64,
            event_loop: (i % 3).to_string(),
            sent_ms: 5.0 * i as f64,
            started_ms: 5.0 * i as f64 + 1.0,
            finished_ms: 5.0 * i as f64 + 6.0,
            answered_ms: 5.0 * i as f64 + 7.0,
            injected: false,
        }));
        requests.push(TimelineRequest {
            index: 33,
            path: "/work/io".into(),
            thread: String::new(),
            thread_id: 0,
            event_loop: String::new(),
            sent_ms: f64::NAN,
            started_ms: f64::NAN,
            finished_ms: f64::INFINITY,
            answered_ms: f64::NAN,
            injected: false,
        });
        let nan_bar = Bar {
            label: "nan".into(),
            predicted: f64::NAN,
            measured: 3.0,
        };
        let report = RunReport {
            generated_at: "2026-11-22T04:00:20Z".into(),
            loopscope_version: "test".into(),
            stack: serde_json::json!(["not", "an", "object"]),
            experiments: vec![
                outcome(
                    "t",
                    ExperimentData::Timeline {
                        scenarios: vec![
                            TimelineScenario {
                                name: "crowded".into(),
                                requests,
                                culprit: None,
                            },
                            TimelineScenario {
                                name: "empty".into(),
                                requests: Vec::new(),
                                culprit: None,
                            },
                        ],
                    },
                ),
                outcome(
                    "b",
                    ExperimentData::Bars {
                        unit: "ms".into(),
                        bars: (0..12)
                            .map(|i| Bar {
                                label: format!("variant number {i} with a long name"),
                                predicted: 0.0,
                                measured: -(i as f64),
                            })
                            .chain([nan_bar])
                            .collect(),
                    },
                ),
                outcome(
                    "p",
                    ExperimentData::Percentiles {
                        unit: "ms".into(),
                        series: vec![PercentileSeries {
                            name: "zeros".into(),
                            count: 0,
                            errors: 0,
                            p50: 0.0,
                            p90: 0.0,
                            p99: 1e6,
                            max: f64::NAN,
                        }],
                    },
                ),
                outcome(
                    "s",
                    ExperimentData::Sweep {
                        modes: vec![SweepSeries {
                            mode: "async".into(),
                            steps: vec![SweepStep {
                                rate: 10.0,
                                throughput: 10.0,
                                p50_ms: 0.0,
                                p99_ms: 0.0,
                                errors: 1,
                                threads: 4.0,
                                rss_mb: 10.0,
                            }],
                        }],
                    },
                ),
            ],
        };
        let page = render(&report);
        if let Some(dir) = std::env::var_os("LOOPSCOPE_REPORT_OUT") {
            // To look at it: LOOPSCOPE_REPORT_OUT=/tmp/awkward cargo test -p loadgen --lib report
            write(&report, Path::new(&dir)).expect("write the report");
        }
        assert!(!page.contains("class=\"chart-error\""), "a chart failed");
        assert_eq!(page.matches("<figure class=\"chart").count(), 2 + 1 + 1 + 3);
        assert_eq!(page.matches("<svg ").count(), 7);
    }
}

#[cfg(test)]
mod read_back_tests;

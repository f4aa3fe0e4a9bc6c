//! The experiment report: [`super::write`] on a hand-made run with every kind of data, then
//! the files read back as a browser and a script would. In-process, in milliseconds (it was a
//! cross-service test once, for no process it needs).
// Test code unwraps on purpose: a bad answer should fail the test loudly.
#![allow(clippy::unwrap_used)]
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::model::{
    Bar, Check, CulpritFrame, CulpritStack, ExperimentData, ExperimentOutcome, PercentileSeries,
    RunReport, SweepSeries, SweepStep, TimelineRequest, TimelineScenario,
};
use scraper::{ElementRef, Html, Selector};

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn text(e: ElementRef<'_>) -> String {
    e.text()
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A fresh directory under the system's temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("loopscope-report-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn check(label: &str, predicted: &str, measured: &str, tolerance: &str, pass: bool) -> Check {
    Check {
        label: label.into(),
        predicted: predicted.into(),
        measured: measured.into(),
        tolerance: tolerance.into(),
        pass,
    }
}

#[allow(clippy::too_many_arguments)]
fn req(
    index: usize,
    path: &str,
    thread: &str,
    thread_id: i64,
    event_loop: &str,
    sent_ms: f64,
    started_ms: f64,
    finished_ms: f64,
    injected: bool,
) -> TimelineRequest {
    TimelineRequest {
        index,
        path: path.into(),
        thread: thread.into(),
        thread_id,
        event_loop: event_loop.into(),
        sent_ms,
        started_ms,
        finished_ms,
        answered_ms: finished_ms + 0.8,
        injected,
    }
}

fn series(name: &str, count: u64, errors: u64, p: [f64; 4]) -> PercentileSeries {
    PercentileSeries {
        name: name.into(),
        count,
        errors,
        p50: p[0],
        p90: p[1],
        p99: p[2],
        max: p[3],
    }
}

fn step(
    rate: f64,
    throughput: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    threads: f64,
    rss_mb: f64,
) -> SweepStep {
    SweepStep {
        rate,
        throughput,
        p50_ms,
        p99_ms,
        errors,
        threads,
        rss_mb,
    }
}

/// Six experiments as `loadgen experiment` reports them, one of them failed.
fn sample() -> RunReport {
    const LOOP0: &str = "actix-rt|system:0|arbiter:0";
    const LOOP1: &str = "actix-rt|system:0|arbiter:1";
    const POOL: &str = "actix-web-blocking";
    let block = "/work/block?ms=1000";
    let io = "/work/io?ms=10";
    let async_scenario = TimelineScenario {
        name: "async: blocking sleep in the handler".into(),
        requests: vec![
            req(1, block, LOOP0, 14450, "0", 0.0, 1.2, 1001.6, true),
            req(2, io, LOOP1, 14451, "1", 50.1, 50.6, 61.0, false),
            req(3, io, LOOP0, 14450, "0", 100.3, 1001.9, 1012.2, false),
            req(4, io, LOOP1, 14451, "1", 150.2, 150.7, 161.1, false),
            req(5, io, LOOP0, 14450, "0", 200.4, 1002.1, 1012.5, false),
            req(6, io, LOOP1, 14451, "1", 250.0, 250.4, 260.9, false),
        ],
        culprit: Some(CulpritStack {
            route: "/work/block".into(),
            request_id: Some("cf3e945994844baca03d5f19fcdc182f".into()),
            classification: "sleep".into(),
            blocked_ms: Some(1001.6),
            victims: Some(0.0),
            frames: [
                ("__GI___clock_nanosleep", None, false),
                (
                    "std::thread::functions::sleep",
                    Some("library/std/src/thread/functions.rs"),
                    false,
                ),
                (
                    "worker::work::perform::{{closure}}",
                    Some("services/worker/src/work.rs"),
                    true,
                ),
            ]
            .into_iter()
            .map(|(function, file, in_app)| CulpritFrame {
                function: function.into(),
                file: file.map(Into::into),
                line: file.map(|_| 115),
                in_app,
            })
            .collect(),
        }),
    };
    let pool_scenario = TimelineScenario {
        name: "threadpool: blocking sleep on the pool".into(),
        requests: vec![
            req(1, block, POOL, 14460, "0", 0.0, 1.6, 1002.0, true),
            req(2, io, POOL, 14461, "1", 50.2, 50.9, 61.2, false),
            req(3, io, POOL, 14462, "0", 100.1, 100.8, 111.1, false),
            req(4, io, POOL, 14461, "1", 150.3, 150.9, 161.3, false),
            req(5, io, POOL, 14462, "0", 200.2, 200.8, 211.0, false),
            req(6, io, POOL, 14461, "1", 250.1, 250.6, 260.9, false),
        ],
        culprit: None,
    };
    let experiments = vec![
        ExperimentOutcome {
            name: "blocking".into(),
            title: "A blocking call in an async handler stalls its event loop".into(),
            seed: Some("002".into()),
            prediction: "On the async worker, io requests accepted by the blocked event loop wait for the \
                         1000 ms sleep to end; on the thread pool nothing waits."
                .into(),
            checks: vec![
                check("async: wait of the io requests behind the block", "≈ 1000 ms", "901.6 ms", "> 800 ms", true),
                check("async: io requests on the other loop", "≈ 10 ms", "10.4 ms", "< 50 ms", true),
                check("threadpool: wait of any io request", "≈ 0 ms", "0.7 ms", "< 50 ms", true),
            ],
            passed: true,
            data: ExperimentData::Timeline { scenarios: vec![async_scenario, pool_scenario] },
        },
        ExperimentOutcome {
            name: "fanout".into(),
            title: "Ten calls one after another, all at once, or five at a time".into(),
            seed: Some("003".into()),
            prediction: "Sequential takes n × latency, concurrent one latency, limited n / limit latencies.".into(),
            checks: vec![
                check("sequential", "1000 ms", "1043.2 ms", "±15%", true),
                check("concurrent", "100 ms", "112.5 ms", "±25%", true),
                check("limited (5)", "200 ms", "214.9 ms", "±25%", true),
            ],
            passed: true,
            data: ExperimentData::Bars {
                unit: "ms".into(),
                bars: vec![
                    Bar { label: "sequential".into(), predicted: 1000.0, measured: 1043.2 },
                    Bar { label: "concurrent".into(), predicted: 100.0, measured: 112.5 },
                    Bar { label: "limited (5)".into(), predicted: 200.0, measured: 214.9 },
                ],
            },
        },
        ExperimentOutcome {
            name: "pool-size".into(),
            title: "A pool of 5 vs a pool of 30 for 30 calls of 100 ms".into(),
            seed: Some("003".into()),
            prediction: "A pool of 5 needs six rounds (600 ms), a pool of 30 one (100 ms).".into(),
            checks: vec![
                check("pool of 5", "600 ms", "655.0 ms", "±20%", true),
                check("pool of 30", "100 ms", "131.0 ms", "±25%", false),
            ],
            passed: false,
            data: ExperimentData::Bars {
                unit: "ms".into(),
                bars: vec![
                    Bar { label: "pool of 5".into(), predicted: 600.0, measured: 655.0 },
                    Bar { label: "pool of 30".into(), predicted: 100.0, measured: 131.0 },
                ],
            },
        },
        ExperimentOutcome {
            name: "io-modes".into(),
            title: "io work: the event loop, the thread pool, and the blocking bug".into(),
            seed: Some("001".into()),
            prediction: "Async and threadpool serve 100 ms io at ~100 ms; a blocking handler queues requests \
                         behind each other."
                .into(),
            checks: vec![
                check("async p99", "≈ 100 ms", "105.8 ms", "< 150 ms", true),
                check("threadpool p99", "≈ 100 ms", "180.0 ms", "< 250 ms", true),
                check("block p50 / async p50", "> 5", "9.7", "ratio > 4", true),
            ],
            passed: true,
            data: ExperimentData::Percentiles {
                unit: "ms".into(),
                series: vec![
                    series("async io", 2000, 0, [100.9, 102.3, 105.8, 131.0]),
                    series("threadpool io", 2000, 0, [101.2, 104.0, 180.0, 420.0]),
                    series("async block", 400, 3, [980.0, 1890.0, 2400.0, 2611.0]),
                ],
            },
        },
        ExperimentOutcome {
            name: "exposition".into(),
            title: "/metrics on its own port keeps answering while the event loop is blocked".into(),
            seed: Some("004".into()),
            prediction: "start_http_server's thread answers at once; make_asgi_app's route waits for the loop."
                .into(),
            checks: vec![
                check("admin port p99", "< 10 ms", "3.4 ms", "< 20 ms", true),
                check("mounted p99", "≈ 1000 ms", "990.0 ms", "> 500 ms", true),
            ],
            passed: true,
            data: ExperimentData::Percentiles {
                unit: "ms".into(),
                series: vec![
                    series("admin port", 200, 0, [1.2, 2.1, 3.4, 6.0]),
                    series("mounted", 200, 0, [480.0, 950.0, 990.0, 1002.0]),
                ],
            },
        },
        ExperimentOutcome {
            name: "sweep".into(),
            title: "Open-model sweep: where each mode saturates and what it costs".into(),
            seed: None,
            prediction: "The thread pool saturates when rate × latency exceeds its threads; async keeps up.".into(),
            checks: vec![
                check("async throughput at 800/s", "≈ 800/s", "796.3/s", "±5%", true),
                check("threadpool threads at 800/s", "> 100", "514", "> 100", true),
            ],
            passed: true,
            data: ExperimentData::Sweep {
                modes: vec![
                    SweepSeries {
                        mode: "async".into(),
                        steps: vec![
                            step(50.0, 49.9, 100.8, 103.1, 0, 6.0, 12.4),
                            step(100.0, 99.8, 100.9, 104.0, 0, 6.0, 13.0),
                            step(200.0, 199.7, 101.0, 105.2, 0, 6.0, 14.1),
                            step(400.0, 399.1, 101.3, 109.9, 0, 6.0, 16.8),
                            step(800.0, 796.3, 102.0, 121.5, 0, 6.0, 21.2),
                        ],
                    },
                    SweepSeries {
                        mode: "threadpool".into(),
                        steps: vec![
                            step(50.0, 49.9, 101.1, 106.0, 0, 14.0, 13.1),
                            step(100.0, 99.7, 101.4, 109.0, 0, 22.0, 14.6),
                            step(200.0, 199.2, 102.2, 131.0, 0, 40.0, 17.9),
                            step(400.0, 391.0, 140.0, 640.0, 0, 78.0, 26.4),
                            step(800.0, 502.4, 850.0, 2400.0, 37, 514.0, 81.0),
                        ],
                    },
                ],
            },
        },
    ];
    RunReport {
        generated_at: "2026-11-22T04:00:20.834Z".into(),
        loopscope_version: "0.1.0".into(),
        stack: serde_json::json!({
            "target": "local",
            "async": "http://127.0.0.1:8081",
            "threadpool": "http://127.0.0.1:8082",
            "workers": 2,
            "blocking_threads": 512,
        }),
        experiments,
    }
}

fn write(report: &RunReport, dir: &Path) -> (String, Html) {
    let index = super::write(report, dir).unwrap();
    assert_eq!(index, dir.join("index.html"));
    let page = std::fs::read_to_string(&index).unwrap();
    let doc = Html::parse_document(&page);
    (page, doc)
}

#[test]
fn report_is_a_self_contained_page_with_every_chart_and_the_json_numbers() {
    let tmp = TempDir::new("full");
    let report = sample();
    let dir = tmp.0.join("nested/out");
    let (page, doc) = write(&report, &dir);
    // To look at the page: LOOPSCOPE_REPORT_OUT=/tmp/report cargo test -p loadgen report_is_a_self_contained_page
    if let Some(out) = std::env::var_os("LOOPSCOPE_REPORT_OUT") {
        super::write(&report, Path::new(&out)).unwrap();
    }

    // report.json is the report as is, and reads back as one.
    let json = std::fs::read_to_string(dir.join("report.json")).unwrap();
    assert!(
        json.trim_end() == serde_json::to_string_pretty(&report).unwrap(),
        "report.json differs"
    );
    let back: RunReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back.experiments.len(), report.experiments.len());

    // Parses as HTML; nothing is fetched from anywhere.
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert_eq!(doc.select(&sel("title")).count(), 1);
    for attr in ["src", "href"] {
        for e in doc.select(&sel(&format!("[{attr}]"))) {
            let v = e.value().attr(attr).unwrap();
            assert!(
                !v.contains("//") && !v.starts_with("data:"),
                "{attr}={v:?} fetches something"
            );
        }
        assert!(
            !page.contains(&format!("{attr}=\"http")),
            "{attr}=\"http in the page"
        );
    }
    assert_eq!(
        doc.select(&sel("script, link, iframe, img, object, embed"))
            .count(),
        0
    );
    assert!(!page.contains("@import") && !page.contains("url("));
    assert!(
        doc.select(&sel("a[href='report.json']")).next().is_some(),
        "no link to report.json"
    );

    // The header's overall verdict.
    let overall = text(doc.select(&sel("#overall")).next().unwrap());
    assert!(overall.contains("5 of 6 passed"), "{overall}");

    // One figure per chart, each with an SVG drawn inside.
    let expected: BTreeSet<(String, String)> = [
        ("blocking", "timeline"),
        ("blocking", "timeline"),
        ("fanout", "bars"),
        ("pool-size", "bars"),
        ("io-modes", "percentiles"),
        ("exposition", "percentiles"),
        ("sweep", "sweep-latency"),
        ("sweep", "sweep-throughput"),
        ("sweep", "sweep-resources"),
    ]
    .iter()
    .map(|(e, c)| (e.to_string(), c.to_string()))
    .collect();
    let figures: Vec<ElementRef<'_>> = doc.select(&sel("figure.chart")).collect();
    assert_eq!(figures.len(), 9);
    let found: BTreeSet<(String, String)> = figures
        .iter()
        .map(|f| {
            let v = f.value();
            (
                v.attr("data-experiment").unwrap().to_owned(),
                v.attr("data-chart").unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(found, expected);
    for f in &figures {
        let svg = f
            .select(&sel("svg"))
            .next()
            .unwrap_or_else(|| panic!("no svg in {}", f.html()));
        assert!(
            svg.select(&sel("rect, path, polyline, line, circle"))
                .count()
                > 5,
            "empty chart"
        );
        assert!(f.select(&sel(".chart-error")).next().is_none());
    }
    let scenarios: Vec<&str> = doc
        .select(&sel("figure[data-chart='timeline']"))
        .map(|f| f.value().attr("data-scenario").unwrap())
        .collect();
    assert_eq!(scenarios, ["1", "2"]);
    // The timeline's lanes and request numbers are drawn as text in the SVG.
    let timeline = text(
        doc.select(&sel("figure[data-chart='timeline']"))
            .next()
            .unwrap(),
    );
    assert!(
        timeline.contains("#14450 (loop 0)") && timeline.contains("#3"),
        "{timeline}"
    );

    // Summary: one row per experiment with its verdict.
    let rows: Vec<ElementRef<'_>> = doc.select(&sel("table.summary tbody tr")).collect();
    assert_eq!(rows.len(), report.experiments.len());
    for (row, e) in rows.iter().zip(&report.experiments) {
        let t = text(*row);
        assert!(t.contains(&e.name), "{t}");
        assert!(t.ends_with(if e.passed { "PASS" } else { "FAIL" }), "{t}");
    }

    // Each experiment: its section, verdict, prediction, and every check as a table row.
    for e in &back.experiments {
        let section = doc
            .select(&sel(&format!("section[data-experiment='{}']", e.name)))
            .next()
            .unwrap_or_else(|| panic!("no section for {}", e.name));
        let head = text(section.select(&sel(".exp-head")).next().unwrap());
        assert!(head.contains(&e.title), "{head}");
        assert!(
            head.ends_with(if e.passed { "PASS" } else { "FAIL" }),
            "{head}"
        );
        if let Some(seed) = &e.seed {
            assert!(text(section).contains(&format!("seed {seed}")));
        }
        assert!(text(section.select(&sel(".prediction")).next().unwrap()).contains(&e.prediction));
        let rows: Vec<Vec<String>> = section
            .select(&sel("table.checks tbody tr"))
            .map(|r| r.select(&sel("td")).map(text).collect())
            .collect();
        let expected: Vec<Vec<String>> = e
            .checks
            .iter()
            .map(|c| {
                vec![
                    c.label.clone(),
                    c.predicted.clone(),
                    c.measured.clone(),
                    c.tolerance.clone(),
                    if c.pass { "PASS" } else { "FAIL" }.to_owned(),
                ]
            })
            .collect();
        assert_eq!(rows, expected, "checks of {}", e.name);
    }

    // Beside the async timeline, and only there: the culprit's stack as the worker caught it.
    let culprits: Vec<ElementRef<'_>> = doc.select(&sel("aside.culprit")).collect();
    assert_eq!(culprits.len(), 1, "one culprit stack");
    let culprit = text(culprits[0]);
    assert!(
        culprit.contains("/work/block")
            && culprit.contains("sleep")
            && culprit.contains("services/worker/src/work.rs:115"),
        "{culprit}"
    );
    let app: Vec<String> = culprits[0].select(&sel("li.app")).map(text).collect();
    assert_eq!(app.len(), 1, "{app:?}");
    assert!(app[0].starts_with("worker::work::perform"), "{app:?}");
    let previous = culprits[0]
        .prev_siblings()
        .find_map(ElementRef::wrap)
        .unwrap();
    assert_eq!(
        previous.value().name(),
        "figure",
        "the stack follows its timeline"
    );

    // The stack is described.
    let stack = text(doc.select(&sel("#stack")).next().unwrap());
    assert!(
        stack.contains("blocking_threads") && stack.contains("512"),
        "{stack}"
    );
}

#[test]
fn text_from_the_model_is_escaped() {
    let tmp = TempDir::new("escape");
    let mut report = sample();
    let evil = "<script>alert(\"x\")</script> & 'q'";
    report.loopscope_version = evil.into();
    report.stack = serde_json::json!({ "<img src=x>": evil });
    let e = &mut report.experiments[1];
    e.name = "fan\"out<b>".into();
    e.title = evil.into();
    e.prediction = evil.into();
    e.checks[0].label = evil.into();
    e.checks[0].measured = "<i>1043.2 ms</i>".into();
    if let ExperimentData::Bars { unit, bars } = &mut e.data {
        *unit = "<u>ms</u>".into();
        bars[0].label = evil.into();
    }
    if let ExperimentData::Timeline { scenarios } = &mut report.experiments[0].data {
        scenarios[0].name = evil.into();
        scenarios[0].requests[0].thread = "<script>bad()</script>".into();
    }
    let (page, doc) = write(&report, &tmp.0);

    assert!(!page.contains("<script"), "unescaped <script> in the page");
    assert!(
        !page.contains("<img")
            && !page.contains("<b>")
            && !page.contains("<i>")
            && !page.contains("<u>")
    );
    assert_eq!(doc.select(&sel("script, img, b, i, u")).count(), 0);
    // The text survives, as text.
    let section = doc.select(&sel("section.experiment")).nth(1).unwrap();
    assert_eq!(section.value().attr("data-experiment"), Some("fan\"out<b>"));
    let first_check: Vec<String> = section
        .select(&sel("table.checks tbody tr td"))
        .map(text)
        .collect();
    assert_eq!(first_check[0], evil);
    assert_eq!(first_check[2], "<i>1043.2 ms</i>");
    assert!(text(doc.select(&sel("#stack")).next().unwrap()).contains("<img src=x>"));
    // Still every chart, each with its SVG.
    assert_eq!(doc.select(&sel("figure.chart svg")).count(), 9);
}

#[test]
fn empty_run_still_writes_a_page() {
    let tmp = TempDir::new("empty");
    let report = RunReport {
        generated_at: "not a date".into(),
        loopscope_version: "0.1.0".into(),
        stack: serde_json::Value::Null,
        experiments: vec![ExperimentOutcome {
            name: "nothing".into(),
            title: "No data at all".into(),
            seed: None,
            prediction: String::new(),
            checks: Vec::new(),
            passed: false,
            data: ExperimentData::Sweep { modes: Vec::new() },
        }],
    };
    let (_, doc) = write(&report, &tmp.0);
    assert!(text(doc.select(&sel("#overall")).next().unwrap()).contains("0 of 1 passed"));
    assert_eq!(doc.select(&sel("figure.chart svg")).count(), 3);
}

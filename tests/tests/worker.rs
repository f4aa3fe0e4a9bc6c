//! The worker, started for real: response fields, the seed 002 shape, the blocking pool,
//! stall detection, faults and bad input.
use std::time::Duration;

use contract::{
    BackendReport, Choice, ErrorBody, FaultStatus, Handling, Kind, Probe, ProbeStatus, WorkReport,
};
use loopscope_tests::metrics::sample;
use loopscope_tests::{assert_bad_request, get_concurrently, read_as, start};
use serde_json::Value;

fn epoch_ms(s: &str) -> f64 {
    // "2026-11-22T04:00:20.833Z": seconds of the day are enough within one test.
    let time = &s[11..s.len() - 1];
    let mut parts = time.split(':');
    let h: f64 = parts.next().unwrap().parse().unwrap();
    let m: f64 = parts.next().unwrap().parse().unwrap();
    let sec: f64 = parts.next().unwrap().parse().unwrap();
    ((h * 60.0 + m) * 60.0 + sec) * 1e3
}

#[test]
fn work_responses_say_where_and_when_the_work_ran() {
    let _machine = loopscope_tests::machine::shared();
    for &handling in Handling::ALL {
        let svc = start(
            "worker",
            &["--handling", handling.as_str(), "--workers", "1"],
        );
        for kind in [Kind::Io, Kind::Cpu, Kind::Block] {
            // The contract's type: every member there, with its type.
            let (status, report): (_, WorkReport) =
                svc.get_as(&format!("{}?ms=30", kind.worker_path()));
            assert_eq!(status, 200, "{handling} {kind}: {report:?}");
            let body = format!("{report:?}");
            assert_eq!(report.service, "worker");
            assert_eq!(report.handling, handling);
            assert_eq!(report.kind, kind);
            assert_eq!(report.requested_ms, Some(30));
            assert!(!report.thread.is_empty(), "{body}");
            assert!(report.thread_id > 0, "{body}");
            assert_eq!(report.event_loop, "0", "{body}");
            assert!(report.pid > 0, "{body}");
            assert!(report.queued_ms >= 0.0);
            assert!(report.service_ms >= 29.0, "{handling} {kind}: {body}");
            let took = epoch_ms(&report.finished_at) - epoch_ms(&report.started_at);
            assert!(
                took >= 29.0,
                "{handling} {kind}: started/finished {took} ms apart: {body}"
            );
        }
        // Where the work ran: the event loop in async mode (and for `block` in both), a pool
        // thread in threadpool mode.
        let (_, io): (_, WorkReport) = svc.get_as("/work/io?ms=1");
        let (_, block): (_, WorkReport) = svc.get_as("/work/block?ms=1");
        let on_pool = io.thread_id != block.thread_id;
        assert_eq!(
            on_pool,
            handling == Handling::Threadpool,
            "io {io:?} vs block {block:?}"
        );
    }
}

#[test]
fn async_io_overlaps_on_one_event_loop_while_block_serializes() {
    let _machine = loopscope_tests::machine::shared();
    // The seed 002 experiment, in milliseconds: one actix worker, five requests of 300 ms.
    let svc = start("worker", &["--handling", "async", "--workers", "1"]);
    let run = |kind: &str| {
        let urls: Vec<String> = (0..5)
            .map(|_| svc.url(&format!("/work/{kind}?ms=300")))
            .collect();
        let results = get_concurrently(&urls);
        assert!(
            results.iter().all(|(s, _, _)| *s == 200),
            "{kind}: {results:?}"
        );
        let wall = results.iter().map(|(_, _, t)| *t).max().unwrap();
        let mut spans: Vec<(f64, f64)> = results
            .iter()
            .map(|(_, b, _)| read_as::<WorkReport>(b))
            .map(|r| (epoch_ms(&r.started_at), epoch_ms(&r.finished_at)))
            .collect();
        spans.sort_by(|a, b| a.0.total_cmp(&b.0));
        (wall, spans)
    };

    let (io_wall, io_spans) = run("io");
    assert!(
        io_wall < Duration::from_millis(900),
        "5 × 300 ms io took {io_wall:?}: they did not overlap"
    );
    let overlapping = io_spans.windows(2).filter(|w| w[1].0 < w[0].1).count();
    assert!(overlapping >= 3, "io spans should overlap: {io_spans:?}");

    let (block_wall, block_spans) = run("block");
    assert!(
        block_wall >= Duration::from_millis(1400),
        "5 × 300 ms block took only {block_wall:?}"
    );
    for w in block_spans.windows(2) {
        // Each starts once the previous one finished: the event loop was held.
        assert!(
            w[1].0 >= w[0].1 - 5.0,
            "block spans overlap: {block_spans:?}"
        );
    }
}

#[test]
fn threadpool_jobs_queue_when_the_pool_is_smaller_than_the_concurrency() {
    let _machine = loopscope_tests::machine::shared();
    let svc = start(
        "worker",
        &[
            "--handling",
            "threadpool",
            "--workers",
            "1",
            "--blocking-threads",
            "2",
        ],
    );
    let urls: Vec<String> = (0..6).map(|_| svc.url("/work/io?ms=200")).collect();
    let results = get_concurrently(&urls);
    assert!(results.iter().all(|(s, _, _)| *s == 200), "{results:?}");
    let mut queued: Vec<f64> = results
        .iter()
        .map(|(_, b, _)| read_as::<WorkReport>(b).queued_ms)
        .collect();
    queued.sort_by(f64::total_cmp);
    // Two run at once: two start at once, two wait ~200 ms, two wait ~400 ms.
    assert!(
        queued[1] < 100.0,
        "the first two should not queue: {queued:?}"
    );
    assert!(
        queued[5] >= 300.0,
        "the last two should wait for two rounds: {queued:?}"
    );
    let distinct_threads: std::collections::HashSet<_> = results
        .iter()
        .map(|(_, b, _)| read_as::<WorkReport>(b).thread_id)
        .collect();
    assert!(
        distinct_threads.len() <= 2,
        "at most 2 pool threads: {distinct_threads:?}"
    );

    let page = svc.metrics();
    let count = sample(&page, "loopscope_blocking_queue_wait_seconds_count", &[]).unwrap();
    assert!(count >= 6.0, "queue wait recorded for each job: {count}");
    assert_eq!(
        sample(&page, "loopscope_blocking_threads_max", &[]),
        Some(2.0)
    );
    assert_eq!(
        sample(&page, "loopscope_blocking_tasks_in_flight", &[]),
        Some(0.0)
    );
}

#[test]
fn the_stall_detector_counts_block_and_not_io() {
    let _machine = loopscope_tests::machine::shared();
    let svc = start(
        "worker",
        &[
            "--handling",
            "async",
            "--workers",
            "1",
            "--stall-threshold-ms",
            "20",
        ],
    );
    let blocked = |page: &str, route: &str| {
        sample(
            page,
            "loopscope_event_loop_blocked_polls_total",
            &[("endpoint", route), ("worker", "0")],
        )
    };
    // Every route's series exists from the start, at zero.
    assert_eq!(blocked(&svc.metrics(), "/work/block"), Some(0.0));
    for _ in 0..3 {
        assert_eq!(svc.get("/work/io?ms=100").0, 200);
    }
    assert_eq!(
        blocked(&svc.metrics(), "/work/io"),
        Some(0.0),
        "io never holds the loop"
    );
    assert_eq!(svc.get("/work/block?ms=300").0, 200);
    let page = svc.metrics();
    assert_eq!(blocked(&page, "/work/block"), Some(1.0));
    assert_eq!(blocked(&page, "/work/io"), Some(0.0));
    let seconds = sample(
        &page,
        "loopscope_event_loop_blocked_seconds_total",
        &[("endpoint", "/work/block")],
    )
    .unwrap();
    assert!((0.29..2.0).contains(&seconds), "blocked seconds {seconds}");
    // The lag probe (every 100 ms) on that worker was due during the 300 ms block, so it
    // woke at least 200 ms late.
    let lag_sum = sample(
        &page,
        "loopscope_event_loop_lag_seconds_sum",
        &[("worker", "0")],
    )
    .unwrap();
    assert!(lag_sum >= 0.15, "lag probe saw {lag_sum} s");
    // The stall reporter thread logs it, just after the poll returned.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !svc.logs().iter().any(|l| l.contains("event loop blocked")) {
        assert!(
            std::time::Instant::now() < deadline,
            "no warning logged: {:#?}",
            svc.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn faults_answer_json_and_the_worker_keeps_serving() {
    let _machine = loopscope_tests::machine::shared();
    let svc = start("worker", &["--handling", "async", "--workers", "1"]);
    let (status, body): (_, ErrorBody) = svc.get_as("/fault/error");
    assert_eq!(status, 500);
    assert_eq!(body.error, "injected_fault");
    let (status, body): (_, ErrorBody) = svc.get_as("/fault/panic");
    assert_eq!(status, 500, "{body:?}");
    assert_eq!(body.error, "internal_error");
    assert!(body.request_id.is_some());
    for _ in 0..3 {
        assert_eq!(svc.get("/fault/panic").0, 500);
    }
    assert_eq!(
        svc.get("/work/io?ms=1").0,
        200,
        "the only worker survived the panics"
    );
    let (status, body): (_, FaultStatus) = svc.get_as("/fault/status/418");
    assert_eq!((status, body.status), (418, 418));
    assert_eq!(svc.get("/fault/status/503").0, 503);
}

#[test]
fn call_reports_the_backend_and_fails_typed_when_it_is_down() {
    let _machine = loopscope_tests::machine::shared();
    let backend = start("backend", &["--latency-ms", "20", "--workers", "1"]);
    for handling in ["async", "threadpool"] {
        let svc = start(
            "worker",
            &[
                "--handling",
                handling,
                "--workers",
                "1",
                "--backend-url",
                &backend.base_url(),
            ],
        );
        let (status, report): (_, WorkReport) = svc.get_as("/work/call?ms=40");
        assert_eq!(status, 200, "{report:?}");
        let backend: BackendReport = read_as(report.backend.as_ref().expect("backend"));
        assert_eq!(
            (backend.service.as_str(), backend.median_ms),
            ("backend", 40)
        );
        assert!(report.service_ms >= 39.0, "{report:?}");
        let (status, report): (_, WorkReport) = svc.get_as("/work/call");
        let backend: BackendReport = read_as(report.backend.as_ref().expect("backend"));
        assert_eq!(
            (status, backend.median_ms, report.requested_ms),
            (200, 20, None),
            "backend default: {report:?}"
        );
    }
    drop(backend);
    let down = loopscope_tests::closed_port_url();
    let svc = start(
        "worker",
        &[
            "--handling",
            "threadpool",
            "--workers",
            "1",
            "--backend-url",
            &down,
        ],
    );
    let (status, body): (_, ErrorBody) = svc.get_as("/work/call?ms=1");
    assert_eq!(
        (status, body.error.as_str()),
        (502, "upstream_unavailable"),
        "{body:?}"
    );
    let page = svc.metrics();
    let unreachable = sample(
        &page,
        "loopscope_upstream_requests_total",
        &[("upstream", "backend"), ("outcome", "unreachable")],
    );
    assert_eq!(unreachable, Some(1.0));
}

#[test]
fn every_bad_input_gets_a_4xx_json_naming_the_problem() {
    let _machine = loopscope_tests::machine::shared();
    let svc = start(
        "worker",
        &["--handling", "async", "--workers", "1", "--max-ms", "5000"],
    );
    assert_bad_request(&svc, "/work/io", "ms");
    assert_bad_request(&svc, "/work/io?ms=abc", "ms");
    assert_bad_request(&svc, "/work/io?ms=-5", "ms");
    assert_bad_request(&svc, "/work/io?ms=5001", "ms");
    assert_bad_request(&svc, "/work/io?ms=1e3", "ms");
    assert_bad_request(&svc, "/work/io?ms=99999999999999999999999", "ms");
    assert_bad_request(&svc, "/work/call?ms=x", "ms");
    assert_bad_request(&svc, "/work/teleport?ms=1", "kind");
    assert_bad_request(&svc, "/work/io?ms=1&msec=2", "query");
    assert_bad_request(&svc, "/work/io?ms=1&ms=2", "query");
    assert_bad_request(&svc, "/work/io?ms=%ZZ", "ms");
    assert_bad_request(&svc, "/fault/status/abc", "code");
    assert_bad_request(&svc, "/fault/status/99", "code");
    assert_bad_request(&svc, "/fault/status/600", "code");

    let (status, body): (_, ErrorBody) = svc.get_as("/no/such/route");
    assert_eq!(
        (status, body.error.as_str()),
        (404, "not_found"),
        "{body:?}"
    );
    let res = loopscope_tests::client(Duration::from_secs(5))
        .post(svc.url("/work/io?ms=1"))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 405);
    assert_eq!(res.headers()["allow"], "GET, HEAD, OPTIONS");
    let body: ErrorBody = res.json().unwrap();
    assert_eq!(body.error, "method_not_allowed");

    // HEAD is a GET without the body; OPTIONS says what is allowed; probes answer both,
    // on the app and the admin port.
    let http = loopscope_tests::client(Duration::from_secs(5));
    let res = http.head(svc.url("/work/io?ms=1")).send().unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.bytes().unwrap().is_empty(), "HEAD sent a body");
    let res = http
        .request(reqwest::Method::OPTIONS, svc.url("/work/io"))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 204);
    assert_eq!(res.headers()["allow"], "GET, HEAD, OPTIONS");
    for url in [
        svc.url("/healthz"),
        svc.url("/readyz"),
        svc.admin_url("/healthz"),
        svc.admin_url("/readyz"),
    ] {
        let (status, probe): (_, Probe) = loopscope_tests::get_as(&url);
        let want = if url.ends_with("/healthz") {
            ProbeStatus::Ok
        } else {
            ProbeStatus::Ready
        };
        assert_eq!((status, probe), (200, Probe::new(want)), "GET {url}");
        let res = http.head(&url).send().unwrap();
        assert_eq!(res.status().as_u16(), 200, "HEAD {url}");
        let res = http.request(reqwest::Method::OPTIONS, &url).send().unwrap();
        assert_eq!(res.status().as_u16(), 204, "OPTIONS {url}");
    }

    // Unmatched paths share one label value: no series per random path.
    for i in 0..5 {
        svc.get(&format!("/random/{i}"));
    }
    let page = svc.metrics();
    assert_eq!(
        sample(
            &page,
            "loopscope_http_requests_total",
            &[("endpoint", "UNMATCHED"), ("status", "404")]
        ),
        Some(6.0)
    );
    assert!(!page.contains("/random/"), "raw paths leaked into labels");
}

#[test]
fn each_request_gets_an_id_in_its_header_error_body_and_access_log() {
    let _machine = loopscope_tests::machine::shared();
    let svc = start("worker", &["--handling", "async", "--workers", "1"]);
    let res = loopscope_tests::client(Duration::from_secs(5))
        .get(svc.url("/work/io?ms=abc"))
        .send()
        .unwrap();
    let header = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: ErrorBody = res.json().unwrap();
    assert_eq!(body.request_id.as_deref(), Some(header.as_str()));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let line = loop {
        let found = svc
            .logs()
            .into_iter()
            .find(|l| l.contains(&header) && l.contains("\"access\""));
        if let Some(line) = found {
            break line;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no access-log line for {header}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["route"], "/work/io");
    assert_eq!(event["status"], 400);
    assert_eq!(event["method"], "GET");
}

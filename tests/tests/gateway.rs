//! The gateway in front of real workers and a real backend.
use std::time::{Duration, Instant};

use contract::{BackendReport, Compare, ErrorBody, FanoutSummary, Handling, Kind, WorkReport};
use loopscope_tests::stack::Stack;
use loopscope_tests::{assert_bad_request, black_hole, closed_port_url, read_as, start};

#[test]
fn compare_runs_one_job_on_both_modes_at_once() {
    let _machine = loopscope_tests::machine::shared();
    let s = Stack::small();
    let (status, body): (_, Compare) = s.gateway.get_as("/api/compare?kind=io&ms=200");
    assert_eq!(status, 200, "{body:?}");
    assert_eq!(body.kind, Kind::Io);
    for (side, handling) in [
        (&body.async_side, Handling::Async),
        (&body.threadpool, Handling::Threadpool),
    ] {
        assert_eq!(side.status, 200, "{body:?}");
        let report = side.report().expect("a work report");
        assert_eq!(report.handling, handling);
        assert!(report.service_ms >= 199.0, "{body:?}");
    }
    // Both at once: the whole takes about one job, not two.
    assert!(
        body.elapsed_ms < 380.0,
        "compare took {} ms",
        body.elapsed_ms
    );

    let (status, body): (_, Compare) = s.gateway.get_as("/api/compare?kind=call&ms=30");
    assert_eq!(status, 200, "{body:?}");
    let report = body.threadpool.report().expect("a work report");
    let backend: BackendReport = read_as(&report.backend.expect("the backend's answer"));
    assert_eq!(backend.service, "backend");
}

#[test]
fn fanout_reproduces_seed_003() {
    let _machine = loopscope_tests::machine::shared();
    let s = Stack::small();
    let run = |q: &str| {
        let (status, body): (_, FanoutSummary) =
            s.gateway.get_as(&format!("/api/fanout?n=10&ms=100&{q}"));
        assert_eq!(status, 200, "{q}: {body:?}");
        assert_eq!((body.ok, body.failed), (10, 0), "{body:?}");
        let indexes: Vec<_> = body.calls.iter().map(|c| c.index).collect();
        assert_eq!(indexes, (0..10).collect::<Vec<_>>(), "in call order");
        assert!(body.calls.iter().all(|c| c.thread_id.is_some()), "{body:?}");
        body.elapsed_ms
    };
    let sequential = run("mode=sequential");
    let concurrent = run("mode=concurrent");
    let pool5 = run("mode=limited&limit=5");
    let pool30 = run("mode=limited&limit=30");
    // Seed 003: ≈1000, ≈100, ≈200 and ≈100 ms. Orderings and ratios, not absolute times.
    assert!(sequential >= 1000.0, "sequential {sequential}");
    assert!(
        sequential / concurrent > 4.0,
        "sequential {sequential} vs concurrent {concurrent}"
    );
    assert!(pool5 >= 200.0, "limit 5 must take two rounds: {pool5}");
    assert!(
        pool5 / concurrent > 1.4,
        "limit 5 {pool5} vs concurrent {concurrent}"
    );
    assert!(
        sequential / pool5 > 2.5,
        "sequential {sequential} vs limit 5 {pool5}"
    );
    assert!(pool30 < pool5, "limit 30 {pool30} vs limit 5 {pool5}");
}

#[test]
fn proxy_returns_the_workers_answer() {
    let _machine = loopscope_tests::machine::shared();
    let s = Stack::small();
    let (status, body): (_, WorkReport) = s.gateway.get_as("/api/threadpool/work/cpu?ms=5");
    assert_eq!(
        (status, body.handling, body.kind),
        (200, Handling::Threadpool, Kind::Cpu)
    );
    let (status, body): (_, WorkReport) = s.gateway.get_as("/api/async/work/io?ms=5");
    assert_eq!((status, body.handling), (200, Handling::Async), "{body:?}");
}

#[test]
fn bad_input_is_refused_before_any_call() {
    let _machine = loopscope_tests::machine::shared();
    let s = Stack::small();
    let g = &s.gateway;
    assert_bad_request(g, "/api/compare?kind=teleport&ms=1", "kind");
    assert_bad_request(g, "/api/compare?kind=io", "ms");
    assert_bad_request(g, "/api/compare?kind=io&ms=-1", "ms");
    assert_bad_request(g, "/api/compare?kind=io&ms=1&extra=1", "query");
    assert_bad_request(g, "/api/fanout?n=0&ms=1", "n");
    assert_bad_request(g, "/api/fanout?n=101&ms=1", "n");
    assert_bad_request(g, "/api/fanout?n=ten&ms=1", "n");
    assert_bad_request(g, "/api/fanout?n=2&ms=1&mode=parallel", "mode");
    assert_bad_request(g, "/api/fanout?n=2&ms=1&mode=limited", "limit");
    assert_bad_request(g, "/api/fanout?n=2&ms=1&mode=limited&limit=0", "limit");
    assert_bad_request(g, "/api/fanout?n=2&ms=1&mode=concurrent&limit=2", "limit");
    assert_bad_request(g, "/api/fanout?n=2&ms=1&handling=gevent", "handling");
    assert_bad_request(g, "/api/sync/work/io?ms=1", "handling");
    assert_bad_request(g, "/api/async/work/sleep?ms=1", "kind");
    assert_bad_request(g, "/api/async/work/io?ms=1.5", "ms");
    let (status, body): (_, ErrorBody) = g.get_as("/api/nothing");
    assert_eq!((status, body.error.as_str()), (404, "not_found"));
}

#[test]
fn a_worker_that_is_down_or_hangs_gives_502_or_504_within_the_timeout() {
    let _machine = loopscope_tests::machine::shared();
    let (_hole, hung) = black_hole();
    let down = closed_port_url();
    let gateway = start(
        "gateway",
        &[
            "--workers",
            "1",
            "--upstream-timeout-ms",
            "800",
            "--worker-async-url",
            &down,
            "--worker-threadpool-url",
            &hung,
        ],
    );
    let timed = |path: &str| {
        let started = Instant::now();
        let out = gateway.get_as::<ErrorBody>(path);
        (out, started.elapsed())
    };
    let ((status, body), took) = timed("/api/async/work/io?ms=1");
    assert_eq!(
        (status, body.error.as_str()),
        (502, "upstream_unavailable"),
        "{body:?}"
    );
    assert!(
        took < Duration::from_secs(2),
        "refused connection answered in {took:?}"
    );

    let ((status, body), took) = timed("/api/threadpool/work/io?ms=1");
    assert_eq!(
        (status, body.error.as_str()),
        (504, "upstream_timeout"),
        "{body:?}"
    );
    assert!(
        took >= Duration::from_millis(750) && took < Duration::from_secs(3),
        "timeout after {took:?}"
    );

    let ((status, body), took) = timed("/api/compare?kind=io&ms=1");
    assert!(status == 502 || status == 504, "{status} {body:?}");
    assert!(
        took < Duration::from_secs(3),
        "compare answered in {took:?}"
    );

    let ((status, body), took) = timed("/api/fanout?n=4&ms=1&handling=threadpool&mode=concurrent");
    assert_eq!(status, 504, "{body:?}");
    let summary: FanoutSummary = read_as(body.details.as_ref().expect("details"));
    assert_eq!(
        (summary.failed, summary.calls.len()),
        (4, 4),
        "each call's outcome is kept: {summary:?}"
    );
    assert!(
        summary.calls.iter().all(|c| c.error.is_some()),
        "{summary:?}"
    );
    assert!(took < Duration::from_secs(3), "fanout answered in {took:?}");

    let page = gateway.metrics();
    let timeouts = loopscope_tests::metrics::sample(
        &page,
        "loopscope_upstream_requests_total",
        &[("upstream", "worker-threadpool"), ("outcome", "timeout")],
    );
    assert!(
        timeouts.is_some_and(|n| n >= 6.0),
        "timeouts counted: {timeouts:?}"
    );
}

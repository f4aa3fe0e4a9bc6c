//! Sentry, end to end: the real services report to Spotlight (Sentry's local receiver, from
//! `make tools`), and the tests assert on the events and transactions it received. Plus the
//! two ways Sentry must never hurt a service: a Sentry host that hangs, and no DSN at all.
use std::net::TcpListener;
use std::time::{Duration, Instant};

use loopscope_tests::spotlight::{self, Spotlight, exception, request_url, tag, trace};
use loopscope_tests::{Service, start};
use serde_json::Value;

/// How long an event may take to reach Spotlight on a busy machine (it usually takes ms).
const EVENT_WAIT: Duration = Duration::from_secs(20);

fn is_event(item: &Value) -> bool {
    item["type"] == "event"
}

fn is_transaction(item: &Value) -> bool {
    item["type"] == "transaction"
}

fn url_ends_with(item: &Value, suffix: &str) -> bool {
    request_url(item).is_some_and(|u| u.ends_with(suffix))
}

fn is_stall_report(item: &Value) -> bool {
    is_event(item) && exception(item).is_some_and(|(ty, _)| ty == "EventLoopBlocked")
}

/// A worker reporting to `spotlight`, every request traced.
fn worker(spotlight: &Spotlight, extra: &[&str]) -> Service {
    let dsn = spotlight.dsn();
    start(
        "worker",
        &traced(&dsn, &[&["--handling", "async"], extra].concat()),
    )
}

/// `args`, reporting to `dsn` with every request traced.
fn traced<'a>(dsn: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    [
        args,
        &["--sentry-dsn", dsn, "--sentry-traces-sample-rate", "1.0"],
    ]
    .concat()
}

fn assert_worker_tags(item: &Value) {
    let s = spotlight::summary(item);
    assert_eq!(tag(item, "service"), Some("worker"), "{s}");
    assert_eq!(tag(item, "handling"), Some("async"), "{s}");
}

/// `loopscope@<crate version>+<git revision>`.
fn assert_release(item: &Value) {
    let release = item["release"].as_str().unwrap_or_default();
    let prefix = format!("loopscope@{}+", env!("CARGO_PKG_VERSION"));
    let revision = release.strip_prefix(&prefix);
    assert!(
        revision.is_some_and(|r| !r.is_empty()),
        "release {release:?} is not {prefix}<revision>"
    );
}

#[test]
fn an_error_response_reaches_sentry_with_exception_tags_and_release() {
    let spotlight = Spotlight::start();
    let svc = worker(&spotlight, &["--sentry-environment", "sentry-e2e"]);

    let (status, body) = svc.get("/fault/error");
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"], "injected_fault", "{body}");

    let event = spotlight.wait_for("error event of GET /fault/error", EVENT_WAIT, |i| {
        is_event(i) && url_ends_with(i, "/fault/error")
    });
    let s = spotlight::summary(&event);
    let (kind, value) = exception(&event).unwrap_or_else(|| panic!("no exception: {s}"));
    assert_eq!(kind, "Injected", "{s}");
    assert!(
        value.contains("injected fault") && value.contains("/fault/error"),
        "{s}"
    );
    // `error` is the default level, which the SDK leaves out.
    assert_eq!(event["level"].as_str().unwrap_or("error"), "error", "{s}");
    assert_worker_tags(&event);
    assert_release(&event);
    assert_eq!(event["environment"], "sentry-e2e", "{s}");
    // Captured inside the request's transaction, so it is linked to its trace.
    assert!(
        trace(&event, "trace_id").is_some_and(|t| t.len() == 32),
        "{s}"
    );
}

#[test]
fn a_panic_reaches_sentry_and_the_worker_keeps_serving() {
    let spotlight = Spotlight::start();
    // One event loop: the request after the panic is served by the thread that panicked.
    let svc = worker(&spotlight, &["--workers", "1"]);

    let (status, body) = svc.get("/fault/panic");
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"], "internal_error", "{body}");

    let event = spotlight.wait_for("panic event", EVENT_WAIT, |i| {
        is_event(i) && exception(i).is_some_and(|(kind, _)| kind == "panic")
    });
    let s = spotlight::summary(&event);
    let (_, value) = exception(&event).expect("exception");
    assert!(value.contains("injected panic"), "{s}");
    assert_eq!(event["level"], "fatal", "{s}");
    assert_eq!(
        event["exception"]["values"][0]["mechanism"]["handled"], false,
        "{s}"
    );
    assert!(url_ends_with(&event, "/fault/panic"), "{s}");
    assert_worker_tags(&event);
    assert_release(&event);
    assert_eq!(event["environment"], "local", "{s}");

    let (status, body) = svc.get("/work/io?ms=1");
    assert_eq!(
        status, 200,
        "the worker stopped serving after a panic: {body}"
    );
    assert_eq!(body["kind"], "io", "{body}");
}

#[test]
fn a_blocked_event_loop_is_reported_and_awaited_io_is_not() {
    let spotlight = Spotlight::start();
    let svc = worker(&spotlight, &["--stall-threshold-ms", "10"]);

    // io first, as long as the block: awaited, it never holds the loop. A report would
    // leave within a second of the stall (see the stall reporter); wait that long too.
    let (status, body) = svc.get("/work/io?ms=300");
    assert_eq!(status, 200, "{body}");
    spotlight.wait_for("transaction of GET /work/io", EVENT_WAIT, |i| {
        is_transaction(i) && url_ends_with(i, "/work/io?ms=300")
    });
    std::thread::sleep(Duration::from_millis(1500));
    let reports: Vec<String> = spotlight
        .items()
        .iter()
        .filter(|i| is_stall_report(i))
        .map(spotlight::summary)
        .collect();
    assert!(
        reports.is_empty(),
        "awaited io was reported as a blocked event loop: {reports:#?}"
    );

    let (status, body) = svc.get("/work/block?ms=300");
    assert_eq!(status, 200, "{body}");
    let event = spotlight.wait_for("blocked-event-loop report", EVENT_WAIT, is_stall_report);
    let s = spotlight::summary(&event);
    let blocked_ms = event["extra"]["blocked_ms"].as_f64().unwrap_or_default();
    assert!(blocked_ms >= 300.0, "{s}");
    assert_eq!(tag(&event, "route"), Some("/work/block"), "{s}");
    assert_eq!(event["level"], "warning", "{s}");
    assert!(url_ends_with(&event, "/work/block?ms=300"), "{s}");
    assert_worker_tags(&event);
    assert_release(&event);
}

#[test]
fn one_trace_spans_gateway_worker_and_backend() {
    let spotlight = Spotlight::start();
    let dsn = spotlight.dsn();
    let backend = start("backend", &traced(&dsn, &[]));
    let backend_url = backend.base_url();
    let worker_async = start(
        "worker",
        &traced(
            &dsn,
            &["--handling", "async", "--backend-url", &backend_url],
        ),
    );
    let worker_threadpool = start(
        "worker",
        &traced(
            &dsn,
            &["--handling", "threadpool", "--backend-url", &backend_url],
        ),
    );
    let (async_url, threadpool_url) = (worker_async.base_url(), worker_threadpool.base_url());
    let gateway = start(
        "gateway",
        &traced(
            &dsn,
            &[
                "--worker-async-url",
                &async_url,
                "--worker-threadpool-url",
                &threadpool_url,
            ],
        ),
    );

    let mut traces = Vec::new();
    for handling in ["async", "threadpool"] {
        let path = format!("/api/{handling}/work/call?ms=5");
        let (status, body) = gateway.get(&path);
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["backend"]["service"], "backend", "{path}: {body}");

        let root = spotlight.wait_for(&format!("gateway transaction of {path}"), EVENT_WAIT, |i| {
            is_transaction(i) && tag(i, "service") == Some("gateway") && url_ends_with(i, &path)
        });
        let trace_id = trace(&root, "trace_id").expect("trace_id").to_owned();
        assert_eq!(
            trace(&root, "parent_span_id"),
            None,
            "the gateway starts the trace: {}",
            spotlight::summary(&root)
        );
        let in_trace = |service: &str, item: &Value| {
            is_transaction(item)
                && tag(item, "service") == Some(service)
                && trace(item, "trace_id") == Some(&trace_id)
        };
        let worker = spotlight.wait_for(
            &format!("worker transaction in the gateway's trace {trace_id} ({handling})"),
            EVENT_WAIT,
            |i| in_trace("worker", i),
        );
        let backend = spotlight.wait_for(
            &format!("backend transaction in the gateway's trace {trace_id} ({handling})"),
            EVENT_WAIT,
            |i| in_trace("backend", i),
        );
        let w = spotlight::summary(&worker);
        assert_eq!(tag(&worker, "handling"), Some(handling), "{w}");
        assert!(url_ends_with(&worker, "/work/call?ms=5"), "{w}");
        assert_eq!(
            trace(&worker, "parent_span_id"),
            trace(&root, "span_id"),
            "the worker's transaction is a child of the gateway's: {w}"
        );
        let b = spotlight::summary(&backend);
        assert!(url_ends_with(&backend, "/query?ms=5"), "{b}");
        assert_eq!(
            trace(&backend, "parent_span_id"),
            trace(&worker, "span_id"),
            "the backend's transaction is a child of the worker's: {b}"
        );
        for tx in [&root, &worker, &backend] {
            assert_release(tx);
        }
        traces.push(trace_id);
    }
    assert_ne!(traces[0], traces[1], "two requests, two traces");
}

#[test]
fn a_sentry_host_that_never_answers_does_not_slow_requests_or_the_shutdown() {
    let (black_hole, _) = loopscope_tests::black_hole();
    let dsn = format!(
        "http://public@{}/0",
        black_hole.local_addr().expect("black hole address")
    );
    let mut svc = start(
        "worker",
        &[
            "--handling",
            "async",
            "--sentry-dsn",
            &dsn,
            "--sentry-traces-sample-rate",
            "1.0",
            "--sentry-timeout-ms",
            "1000",
            "--shutdown-grace-secs",
            "2",
        ],
    );

    for _ in 0..3 {
        let started = Instant::now();
        let (status, body) = svc.get("/fault/error");
        let took = started.elapsed();
        assert_eq!(status, 500, "{body}");
        assert_eq!(body["error"], "injected_fault", "{body}");
        assert!(
            took < Duration::from_secs(1),
            "/fault/error took {took:?}: reporting to a hung Sentry host delays the response"
        );
    }
    let (status, body) = svc.get("/work/io?ms=1");
    assert_eq!(status, 200, "{body}");

    // The worker did try to report: its transport is connected to the black hole and waiting.
    // Keep the accepted connections open, or the worker's requests would fail fast instead.
    let _held = await_connection(&black_hole, EVENT_WAIT);

    let signalled = Instant::now();
    svc.signal(libc::SIGTERM);
    let limit = Duration::from_secs(8);
    let status = svc.wait_exit(limit);
    let took = signalled.elapsed();
    let status = status.unwrap_or_else(|| {
        panic!(
            "no exit within {limit:?} of SIGTERM (grace 2 s + Sentry timeout 1 s); last logs:\n{}",
            last_logs(&svc)
        )
    });
    assert!(
        status.success(),
        "exit status {status}; logs:\n{}",
        last_logs(&svc)
    );
    assert!(took < limit, "exit took {took:?}");
}

#[test]
fn without_a_dsn_faults_still_answer_json_and_nothing_breaks() {
    let mut svc = start("worker", &["--handling", "async"]);
    let (status, body) = svc.get("/fault/error");
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"], "injected_fault", "{body}");
    assert!(
        body["request_id"].as_str().is_some_and(|r| !r.is_empty()),
        "{body}"
    );
    let (status, body) = svc.get("/fault/panic");
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"], "internal_error", "{body}");
    // The stall reporter has no client to report to: the request must not care.
    let (status, body) = svc.get("/work/block?ms=20");
    assert_eq!(status, 200, "{body}");
    let (status, body) = svc.get("/work/io?ms=1");
    assert_eq!(status, 200, "{body}");

    svc.signal(libc::SIGTERM);
    let status = svc.wait_exit(Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| s.success()),
        "exit after SIGTERM: {status:?}; logs:\n{}",
        last_logs(&svc)
    );
}

/// Waits until `listener` has a connection and returns every connection accepted by then.
fn await_connection(listener: &TcpListener, limit: Duration) -> Vec<std::net::TcpStream> {
    listener.set_nonblocking(true).expect("nonblocking");
    let deadline = Instant::now() + limit;
    let mut held = Vec::new();
    loop {
        match listener.accept() {
            Ok((stream, _)) => held.push(stream),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if !held.is_empty() {
                    return held;
                }
                assert!(
                    Instant::now() < deadline,
                    "the worker never connected to its Sentry host within {limit:?}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

fn last_logs(svc: &Service) -> String {
    let logs = svc.logs();
    logs[logs.len().saturating_sub(30)..].join("\n")
}

#[test]
fn sentry_release_overrides_the_build_stamped_release() {
    // The chart sets SENTRY_RELEASE to the image tag.
    let spotlight = Spotlight::start();
    let svc = worker(&spotlight, &["--sentry-release", "loopscope@1.2.3-chart"]);
    assert_eq!(svc.get("/fault/error").0, 500);
    let event = spotlight.wait_for("error event of GET /fault/error", EVENT_WAIT, |i| {
        is_event(i) && url_ends_with(i, "/fault/error")
    });
    assert_eq!(
        event["release"],
        "loopscope@1.2.3-chart",
        "{}",
        spotlight::summary(&event)
    );
}

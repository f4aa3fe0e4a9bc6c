//! Sentry, end to end: the real services report to Spotlight (Sentry's local receiver, from
//! `make tools`), and the tests assert on the events and transactions it received. Plus the
//! two ways Sentry must never hurt a service: a Sentry host that hangs, and no DSN at all.
use std::net::TcpListener;
use std::time::{Duration, Instant};

use contract::{BackendReport, ErrorBody, Kind, WorkReport};
use loopscope_tests::spotlight::{self, Spotlight, exception, request_url, tag, trace};
use loopscope_tests::{
    Reply, Service, black_hole, closed_port_url, dsn_at, get_reply, read_as, reporting_to, start,
};
use serde_json::Value;

/// The worker's fault routes, to find the lines events must point at.
const FAULT_RS: &str = include_str!("../../services/worker/src/routes/fault.rs");

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
    reporting_to(dsn, "1.0", args)
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
fn an_error_response_reaches_sentry_with_route_tags_request_id_trace_and_stack() {
    let _machine = loopscope_tests::machine::shared();
    let spotlight = Spotlight::start();
    let svc = worker(&spotlight, &["--sentry-environment", "sentry-e2e"]);

    // A caller's request id is kept; a secret in the query never leaves the process.
    let Reply {
        status,
        headers,
        body,
    } = get_reply(
        &svc.url("/fault/error?token=hunter2&ms=5"),
        Duration::from_secs(30),
        &[("x-request-id", "caller-id-42")],
    );
    let body: ErrorBody = read_as(&body);
    assert_eq!(status, 500, "{body:?}");
    assert_eq!(body.error, "injected_fault", "{body:?}");
    assert_eq!(headers["x-request-id"], "caller-id-42");
    assert_eq!(body.request_id.as_deref(), Some("caller-id-42"), "{body:?}");

    let event = spotlight.wait_for("error event of GET /fault/error", EVENT_WAIT, |i| {
        is_event(i) && url_contains(i, "/fault/error")
    });
    let s = spotlight::summary(&event);
    let (kind, value) = exception(&event).unwrap_or_else(|| panic!("no exception: {s}"));
    assert_eq!(kind, "InjectedFault", "{s}");
    assert_eq!(value, "injected fault: GET /fault/error was called", "{s}");
    // `error` is the default level, which the SDK leaves out.
    assert_eq!(event["level"].as_str().unwrap_or("error"), "error", "{s}");
    assert_request_event(&event, "GET", "/fault/error", "500", "caller-id-42");
    assert_eq!(tag(&event, "kind"), None, "{s}");
    assert_release(&event);
    assert_eq!(event["environment"], "sentry-e2e", "{s}");
    // Where it came from: the line of fault.rs that raised it.
    let top = top_in_app_frame(&event).unwrap_or_else(|| panic!("no in-app frame: {s}"));
    assert!(
        frame_file(&top).ends_with("routes/fault.rs"),
        "top frame {top} of {s}"
    );
    assert_eq!(
        top["lineno"],
        line_of(FAULT_RS, "ApiError::injected("),
        "{top}"
    );
    // Redacted, and nowhere else in the event either.
    let url = request_url(&event).unwrap_or_default();
    assert!(
        url.contains("token=[Filtered]") && url.contains("ms=5"),
        "{url}"
    );
    assert!(
        !event.to_string().contains("hunter2"),
        "the secret was sent: {event}"
    );
    // The event and the access-log line name the same trace.
    let trace_id = trace(&event, "trace_id").unwrap_or_else(|| panic!("no trace id: {s}"));
    assert_eq!(trace_id.len(), 32, "{s}");
    assert_eq!(
        access_log(&svc, "caller-id-42")["trace_id"],
        trace_id,
        "the access-log line of the request names another trace"
    );
}

#[test]
fn an_invalid_or_oversized_request_id_is_replaced() {
    let _machine = loopscope_tests::machine::shared();
    let svc = start("worker", &["--handling", "async"]);
    for bad in ["a b", &"x".repeat(65), "caf\u{e9}"] {
        let Reply {
            status, headers, ..
        } = get_reply(
            &svc.url("/work/io?ms=0"),
            Duration::from_secs(30),
            &[("x-request-id", bad)],
        );
        assert_eq!(status, 200);
        let id = headers["x-request-id"].to_str().expect("ascii");
        assert!(id != bad && id.len() == 32, "{bad:?} kept as {id:?}");
    }
    let Reply { headers, .. } = get_reply(
        &svc.url("/work/io?ms=0"),
        Duration::from_secs(30),
        &[("x-request-id", "ok-id_1.2")],
    );
    assert_eq!(headers["x-request-id"], "ok-id_1.2");
}

/// A panic in a job on the blocking pool: answered 500 (not a 503 "shutting down", as when
/// the pool's own error stood for it), and its event names the request like any other, with
/// the pool thread's stack.
#[test]
fn a_panic_on_a_pool_thread_is_answered_500_and_reported_with_its_request() {
    let _machine = loopscope_tests::machine::shared();
    let spotlight = Spotlight::start();
    let dsn = spotlight.dsn();
    let svc = start(
        "worker",
        &traced(&dsn, &["--handling", "threadpool", "--workers", "1"]),
    );
    loopscope_tests::wait_for_log(&svc, "panic reporter ready: symbols loaded");

    let Reply {
        status,
        headers,
        body,
    } = get_reply(&svc.url("/fault/panic"), Duration::from_secs(30), &[]);
    assert_eq!(status, 500, "{body}");
    assert_eq!(
        read_as::<ErrorBody>(&body).error,
        "internal_error",
        "{body}"
    );
    let request_id = headers["x-request-id"].to_str().expect("id").to_owned();
    let event = spotlight.wait_for("pool panic event", EVENT_WAIT, |i| {
        is_event(i) && exception(i).is_some_and(|(kind, _)| kind == "panic")
    });
    let s = spotlight::summary(&event);
    assert_eq!(
        event["exception"]["values"][0]["mechanism"]["handled"], true,
        "{s}"
    );
    assert_eq!(event["transaction"], "GET /fault/panic", "{s}");
    assert_eq!(tag(&event, "handling"), Some("threadpool"), "{s}");
    assert_eq!(tag(&event, "route"), Some("/fault/panic"), "{s}");
    assert_eq!(tag(&event, "status"), Some("500"), "{s}");
    assert_eq!(tag(&event, "request_id"), Some(request_id.as_str()), "{s}");
    assert!(url_contains(&event, "/fault/panic"), "{s}");
    let top = top_in_app_frame(&event).unwrap_or_else(|| panic!("no in-app frame: {s}"));
    assert!(frame_file(&top).ends_with("routes/fault.rs"), "{top}");
    assert_eq!(
        top["lineno"],
        line_of(FAULT_RS, "panic!(\"injected panic"),
        "{top}"
    );
    assert!(
        !event["extra"]["thread"]
            .as_str()
            .unwrap_or_default()
            .starts_with("actix-rt|system"),
        "the stack is the pool thread's: {s}"
    );
    assert_eq!(svc.get("/work/io?ms=1").0, 200, "the worker keeps serving");
}

#[test]
fn a_panic_is_caught_answered_and_reported_with_its_line_and_no_false_stall() {
    let _machine = loopscope_tests::machine::shared();
    let spotlight = Spotlight::start();
    // One event loop: the request after the panic is served by the thread that panicked.
    let svc = worker(
        &spotlight,
        &["--workers", "1", "--stall-threshold-ms", "10"],
    );
    // Symbols load in the background after start; until then a panic has its line only.
    loopscope_tests::wait_for_log(&svc, "panic reporter ready: symbols loaded");

    let Reply {
        status,
        headers,
        body,
    } = get_reply(&svc.url("/fault/panic"), Duration::from_secs(30), &[]);
    assert_eq!(status, 500, "{body}");
    assert_eq!(
        read_as::<ErrorBody>(&body).error,
        "internal_error",
        "{body}"
    );
    let request_id = headers["x-request-id"].to_str().expect("id").to_owned();

    let event = spotlight.wait_for("panic event", EVENT_WAIT, |i| {
        is_event(i) && exception(i).is_some_and(|(kind, _)| kind == "panic")
    });
    let s = spotlight::summary(&event);
    let (_, value) = exception(&event).expect("exception");
    assert!(value.contains("injected panic"), "{s}");
    // Caught and answered: an error (the default level, left out), handled; not a crash.
    assert_eq!(event["level"].as_str().unwrap_or("error"), "error", "{s}");
    let mechanism = &event["exception"]["values"][0]["mechanism"];
    assert_eq!(mechanism["type"], "panic", "{s}");
    assert_eq!(mechanism["handled"], true, "{s}");
    assert_request_event(&event, "GET", "/fault/panic", "500", &request_id);
    assert_release(&event);
    assert_eq!(event["environment"], "local", "{s}");

    // The culprit is the panicking line, and no SDK, std, tokio or actix frame is in-app.
    let top = top_in_app_frame(&event).unwrap_or_else(|| panic!("no in-app frame: {s}"));
    assert!(
        frame_file(&top).ends_with("routes/fault.rs"),
        "top in-app frame {top}"
    );
    assert_eq!(
        top["lineno"],
        line_of(FAULT_RS, "panic!(\"injected panic"),
        "{top}"
    );
    let frames = event["exception"]["values"][0]["stacktrace"]["frames"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        (3..=64).contains(&frames.len()),
        "{} frames: {s}",
        frames.len()
    );
    for frame in &frames {
        let function = frame["function"].as_str().unwrap_or_default();
        let foreign = [
            "std::", "core::", "tokio::", "actix", "sentry", "<core::", "<std::",
        ]
        .iter()
        .any(|p| function.starts_with(p));
        assert!(
            !(foreign && frame["in_app"] == true),
            "{function} is marked in-app"
        );
        assert!(function.chars().count() <= 201, "{function}");
    }
    assert_eq!(
        access_log(&svc, &request_id)["trace_id"].as_str(),
        trace(&event, "trace_id"),
        "{s}"
    );

    let (status, body): (_, WorkReport) = svc.get_as("/work/io?ms=1");
    assert_eq!(
        status, 200,
        "the worker stopped serving after a panic: {body:?}"
    );
    assert_eq!(body.kind, Kind::Io, "{body:?}");
    // Reported off the event loop: the panic did not hold it past the stall threshold.
    spotlight.wait_for("transaction of GET /work/io", EVENT_WAIT, |i| {
        is_transaction(i) && url_contains(i, "/work/io?ms=1")
    });
    let stalls: Vec<String> = spotlight
        .items()
        .iter()
        .filter(|i| is_stall_report(i))
        .map(spotlight::summary)
        .collect();
    assert!(
        stalls.is_empty(),
        "a panic was reported as a blocked event loop: {stalls:#?}"
    );
}

#[test]
fn a_blocked_event_loop_is_reported_and_awaited_io_is_not() {
    let _machine = loopscope_tests::machine::shared();
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
    // A stall event names the request by route, request id and trace (tests/tests/stall.rs),
    // not by URL: the watchdog reports it from its own thread.
    assert_worker_tags(&event);
    assert_release(&event);
}

#[test]
fn one_trace_spans_gateway_worker_and_backend() {
    let _machine = loopscope_tests::machine::shared();
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
        let (status, body): (_, WorkReport) = gateway.get_as(&path);
        assert_eq!(status, 200, "{path}: {body:?}");
        let backend: BackendReport = read_as(body.backend.as_ref().expect("backend"));
        assert_eq!(backend.service, "backend", "{path}: {body:?}");

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
        let name = worker["transaction"].as_str().unwrap_or_default();
        assert!(
            name == "GET /work/call" || name == "GET /work/{kind}",
            "{w}"
        );
        // Each callee's transaction hangs under the caller's span of the call.
        let call = span(&root, "http.client").unwrap_or_else(|| panic!("no call span in {root}"));
        assert_eq!(
            trace(&worker, "parent_span_id"),
            call["span_id"].as_str(),
            "the worker's transaction is a child of the gateway's call span: {w}"
        );
        let b = spotlight::summary(&backend);
        assert!(url_ends_with(&backend, "/query?ms=5"), "{b}");
        let call =
            span(&worker, "http.client").unwrap_or_else(|| panic!("no call span in {worker}"));
        assert_eq!(
            trace(&backend, "parent_span_id"),
            call["span_id"].as_str(),
            "the backend's transaction is a child of the worker's call span: {b}"
        );
        assert_eq!(
            call["parent_span_id"].as_str(),
            trace(&worker, "span_id"),
            "{call}"
        );
        assert!(span(&worker, "work").is_some(), "no work span in {worker}");
        if handling == "threadpool" {
            for op in ["pool.wait", "pool.job"] {
                assert!(span(&worker, op).is_some(), "no {op} span in {worker}");
            }
        }
        // One request id along the chain.
        let id = tag(&root, "request_id").expect("request_id").to_owned();
        assert_eq!(tag(&worker, "request_id"), Some(id.as_str()), "{w}");
        assert_eq!(tag(&backend, "request_id"), Some(id.as_str()), "{b}");
        for tx in [&root, &worker, &backend] {
            assert_release(tx);
        }
        traces.push(trace_id);
    }
    assert_ne!(traces[0], traces[1], "two requests, two traces");
}

#[test]
fn a_sentry_host_that_never_answers_does_not_slow_requests_or_the_shutdown() {
    let _machine = loopscope_tests::machine::shared();
    let (black_hole, _) = loopscope_tests::black_hole();
    let dsn = dsn_at(black_hole.local_addr().expect("black hole address"));
    let mut svc = start(
        "worker",
        &traced(
            &dsn,
            &[
                "--handling",
                "async",
                "--sentry-timeout-ms",
                "1000",
                "--shutdown-grace-secs",
                "2",
            ],
        ),
    );

    for _ in 0..3 {
        let started = Instant::now();
        let (status, body): (_, ErrorBody) = svc.get_as("/fault/error");
        let took = started.elapsed();
        assert_eq!(status, 500, "{body:?}");
        assert_eq!(body.error, "injected_fault", "{body:?}");
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
    let _machine = loopscope_tests::machine::shared();
    let mut svc = start("worker", &["--handling", "async"]);
    let (status, body): (_, ErrorBody) = svc.get_as("/fault/error");
    assert_eq!(status, 500, "{body:?}");
    assert_eq!(body.error, "injected_fault", "{body:?}");
    assert!(
        body.request_id.as_ref().is_some_and(|r| !r.is_empty()),
        "{body:?}"
    );
    let (status, body): (_, ErrorBody) = svc.get_as("/fault/panic");
    assert_eq!(status, 500, "{body:?}");
    assert_eq!(body.error, "internal_error", "{body:?}");
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
    let _machine = loopscope_tests::machine::shared();
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

#[test]
fn upstream_failures_are_typed_stable_and_name_the_dependency_without_internals() {
    let _machine = loopscope_tests::machine::shared();
    let spotlight = Spotlight::start();
    let dsn = spotlight.dsn();
    let (hung, hung_url) = black_hole();
    let healthy = start("worker", &["--handling", "threadpool"]);
    let backend = start("backend", &traced(&dsn, &["--error-rate", "1"]));
    let worker = start(
        "worker",
        &traced(
            &dsn,
            &["--handling", "async", "--backend-url", &backend.base_url()],
        ),
    );
    let down = closed_port_url();
    let gateway_502 = start(
        "gateway",
        &traced(
            &dsn,
            &[
                "--worker-async-url",
                &down,
                "--worker-threadpool-url",
                &healthy.base_url(),
            ],
        ),
    );
    let gateway_504 = start(
        "gateway",
        &traced(
            &dsn,
            &[
                "--worker-async-url",
                &healthy.base_url(),
                "--worker-threadpool-url",
                &hung_url,
                "--upstream-timeout-ms",
                "300",
            ],
        ),
    );

    // (service, path, status, exception type, upstream, outcome, stable value, body says)
    let cases = [
        (
            &gateway_502,
            "/api/async/work/io?ms=",
            502,
            "UpstreamUnreachable",
            "worker-async",
            "unreachable",
            "worker-async is unreachable (connection refused)",
            "gateway",
        ),
        (
            &gateway_504,
            "/api/threadpool/work/io?ms=",
            504,
            "UpstreamTimeout",
            "worker-threadpool",
            "timeout",
            "worker-threadpool did not answer within 300 ms",
            "gateway",
        ),
        (
            &worker,
            "/work/call?ms=",
            502,
            "UpstreamBadStatus",
            "backend",
            "server_error",
            "backend failed with status 503",
            "worker",
        ),
    ];
    let mut worker_ids = Vec::new();
    for (svc, path, status, ty, upstream, outcome, value, service) in cases {
        let mut values = Vec::new();
        // Two requests differing only in the query: one issue in Sentry, not two.
        for ms in [5, 6] {
            let url = svc.url(&format!("{path}{ms}"));
            let Reply {
                status: got,
                headers,
                body,
            } = get_reply(&url, Duration::from_secs(30), &[]);
            assert_eq!(got, status, "{url}: {body}");
            let text = body.to_string();
            assert!(
                text.contains(upstream),
                "the body does not name {upstream}: {text}"
            );
            for internal in ["127.0.0.1", "http://", "os error", "?ms"] {
                assert!(
                    !text.contains(internal),
                    "the body leaks {internal:?}: {text}"
                );
            }
            let id = headers["x-request-id"].to_str().expect("id").to_owned();
            let event = spotlight.wait_for(&format!("{ty} event of {url}"), EVENT_WAIT, |i| {
                is_event(i) && exception(i).is_some() && tag(i, "request_id") == Some(id.as_str())
            });
            let s = spotlight::summary(&event);
            let (kind, got_value) =
                exception(&event).unwrap_or_else(|| panic!("no exception: {s}"));
            assert_eq!(kind, ty, "{s}");
            assert_eq!(tag(&event, "service"), Some(service), "{s}");
            assert_eq!(tag(&event, "upstream"), Some(upstream), "{s}");
            assert_eq!(tag(&event, "outcome"), Some(outcome), "{s}");
            assert_eq!(
                tag(&event, "status"),
                Some(status.to_string().as_str()),
                "{s}"
            );
            assert!(
                tag(&event, "route").is_some_and(|r| r.contains("/work/")),
                "{s}"
            );
            assert!(tag(&event, "kind").is_some(), "{s}");
            let top = top_in_app_frame(&event).unwrap_or_else(|| panic!("no frame: {s}"));
            assert!(frame_file(&top).ends_with(".rs"), "{top}");
            // Its warnings are breadcrumbs, and only its own.
            let crumbs = event["breadcrumbs"]["values"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert!(
                crumbs.iter().any(|c| c["message"] == "upstream call failed"
                    && c["data"]["request_id"] == id.as_str()
                    && c["data"]["outcome"] == outcome),
                "no breadcrumb of the failed call: {crumbs:?} in {event}"
            );
            assert!(
                crumbs
                    .iter()
                    .all(|c| c["data"]["request_id"].is_null()
                        || c["data"]["request_id"] == id.as_str()),
                "another request's breadcrumbs: {crumbs:?}"
            );
            values.push(got_value.to_owned());
            if std::ptr::eq(svc, &worker) {
                worker_ids.push(id);
            }
        }
        assert_eq!(values, [value, value], "{path}");
    }
    // The worker forwarded its request id to the backend, whose access log shows it. Both
    // logs are awaited: a line reaches stdout up to a drain period after the response.
    assert_eq!(worker_ids.len(), 2, "{worker_ids:?}");
    for id in &worker_ids {
        let line = access_log(&worker, id);
        assert_eq!(line["route"], "/work/call", "{line}");
        let line = access_log(&backend, id);
        assert_eq!(line["route"], "/query", "{line}");
    }
    drop(hung);
}

#[test]
fn unsampled_requests_send_no_transaction_but_their_errors_keep_the_trace() {
    let _machine = loopscope_tests::machine::shared();
    let spotlight = Spotlight::start();
    let dsn = spotlight.dsn();
    let svc = start("worker", &reporting_to(&dsn, "0", &["--handling", "async"]));
    // Probes and unsampled requests first: the transport sends in order, so any transaction
    // of theirs would arrive before the error event awaited below.
    for path in ["/healthz", "/readyz", "/work/io?ms=1"] {
        assert_eq!(svc.get(path).0, 200, "{path}");
    }
    let Reply {
        status, headers, ..
    } = get_reply(&svc.url("/fault/error"), Duration::from_secs(30), &[]);
    assert_eq!(status, 500);
    let id = headers["x-request-id"].to_str().expect("id").to_owned();
    let event = spotlight.wait_for("error event", EVENT_WAIT, |i| {
        is_event(i) && exception(i).is_some() && tag(i, "request_id") == Some(id.as_str())
    });
    let trace_id = trace(&event, "trace_id").expect("trace id on an unsampled error");
    assert_eq!(access_log(&svc, &id)["trace_id"], trace_id);
    let transactions: Vec<String> = spotlight
        .transactions()
        .iter()
        .map(spotlight::summary)
        .collect();
    assert!(
        transactions.is_empty(),
        "unsampled requests sent {transactions:#?}"
    );

    // An incoming decision wins over the local rate: the caller sampled, so we trace.
    let caller_trace = "0123456789abcdef0123456789abcdef";
    let Reply { status, .. } = get_reply(
        &svc.url("/work/io?ms=1"),
        Duration::from_secs(30),
        &[(
            "sentry-trace",
            &format!("{caller_trace}-0123456789abcdef-1"),
        )],
    );
    assert_eq!(status, 200);
    let tx = spotlight.wait_for(
        "transaction continuing the caller's trace",
        EVENT_WAIT,
        is_transaction,
    );
    assert_eq!(
        trace(&tx, "trace_id"),
        Some(caller_trace),
        "{}",
        spotlight::summary(&tx)
    );
    assert_eq!(trace(&tx, "parent_span_id"), Some("0123456789abcdef"));
}

#[test]
fn probes_are_not_traced_and_the_startup_log_says_where_sentry_goes() {
    let _machine = loopscope_tests::machine::shared();
    let spotlight = Spotlight::start();
    let svc = worker(&spotlight, &["--metrics-exposition", "both"]);
    for path in ["/healthz", "/readyz", "/metrics", "/work/io?ms=1"] {
        assert_eq!(svc.get(path).0, 200, "{path}");
    }
    spotlight.wait_for("transaction of /work/io", EVENT_WAIT, |i| {
        is_transaction(i) && url_contains(i, "/work/io")
    });
    let probes: Vec<String> = spotlight
        .transactions()
        .iter()
        .filter(|t| !url_contains(t, "/work/io"))
        .map(spotlight::summary)
        .collect();
    assert!(probes.is_empty(), "probes were traced: {probes:#?}");
    let on = log_line(&svc, "sentry on");
    assert_eq!(on["dsn_host"], "127.0.0.1", "{on}");
    assert_eq!(on["environment"], "local", "{on}");
    assert_eq!(on["traces_sample_rate"], 1.0, "{on}");
    assert!(
        on["release"]
            .as_str()
            .is_some_and(|r| r.starts_with("loopscope@")),
        "{on}"
    );

    let off = start("worker", &["--handling", "async"]);
    log_line(&off, "sentry off");
}

/// Our own transactions (not the SDK's: see `common::sentry::transaction`) say what the
/// SDK's said, read back here as Spotlight received them.
#[test]
fn a_sampled_transaction_carries_what_a_triager_reads() {
    let _machine = loopscope_tests::machine::shared();
    let spotlight = Spotlight::start();
    let svc = worker(&spotlight, &[]);
    let get = |path: &str, request_id: &str| {
        get_reply(
            &svc.url(path),
            Duration::from_secs(30),
            &[("x-request-id", request_id)],
        )
        .status
    };
    assert_eq!(get("/work/io?ms=1", "tx-fields-ok"), 200);
    // A rejected parameter: its secret value must not leave the process either.
    assert_eq!(get("/work/io?ms=1&token=hunter2", "tx-fields-400"), 400);
    let transaction_of = |request_id: &str| {
        spotlight.wait_for(&format!("transaction {request_id}"), EVENT_WAIT, |i| {
            is_transaction(i) && tag(i, "request_id") == Some(request_id)
        })
    };

    let tx = transaction_of("tx-fields-ok");
    let s = spotlight::summary(&tx);
    assert_eq!(tx["transaction"], "GET /work/io", "{s}");
    assert_eq!(tx["transaction_info"]["source"], "route", "{s}");
    assert_worker_tags(&tx);
    assert_release(&tx);
    assert_eq!(tx["environment"], "local", "{s}");
    for (key, value) in [("route", "/work/io"), ("status", "200"), ("kind", "io")] {
        assert_eq!(tag(&tx, key), Some(value), "{key}: {s}");
    }
    assert!(tag(&tx, "worker").is_some_and(|w| !w.is_empty()), "{s}");
    assert_eq!(tx["request"]["method"], "GET", "{s}");
    let url = request_url(&tx).unwrap_or_default();
    assert!(
        url.starts_with("http://") && url.ends_with("/work/io?ms=1"),
        "{url}"
    );
    assert_eq!(tx["request"]["query_string"], "ms=1", "{s}");
    let trace = &tx["contexts"]["trace"];
    assert_eq!(trace["op"], "http.server", "{s}");
    assert_eq!(trace["status"], "ok", "{s}");
    assert_eq!(trace["trace_id"].as_str().map(str::len), Some(32), "{s}");
    let work = span(&tx, "work").unwrap_or_else(|| panic!("no work span: {s}"));
    assert_eq!(work["description"], "io", "{s}");
    assert_eq!(work["parent_span_id"], trace["span_id"], "{s}");
    assert_eq!(work["trace_id"], trace["trace_id"], "{s}");
    // The start in seconds, the end in RFC 3339 (as the SDK writes them): 0 to 30 s apart.
    let start = tx["start_timestamp"].as_f64().unwrap_or_default();
    let end = tx["timestamp"].as_str().unwrap_or_default();
    let took =
        seconds_of_day(end).map(|end| (end - start.rem_euclid(86_400.0)).rem_euclid(86_400.0));
    assert!(
        start > 1.7e9 && end.ends_with('Z') && took.is_some_and(|t| t < 30.0),
        "{start} .. {end}: {s}"
    );

    let rejected = transaction_of("tx-fields-400");
    let s = spotlight::summary(&rejected);
    assert_eq!(tag(&rejected, "status"), Some("400"), "{s}");
    assert_eq!(
        rejected["contexts"]["trace"]["status"], "invalid_argument",
        "{s}"
    );
    assert_eq!(
        rejected["request"]["query_string"], "ms=1&token=[Filtered]",
        "{s}"
    );
    assert!(
        !rejected.to_string().contains("hunter2"),
        "a secret left the process: {s}"
    );
}

/// The time of day of an RFC 3339 UTC timestamp (`2026-12-01T02:30:40.565004Z`), in seconds.
fn seconds_of_day(rfc3339: &str) -> Option<f64> {
    let time = rfc3339.split_once('T')?.1.strip_suffix('Z')?;
    let mut parts = time.split(':');
    let (h, m, sec) = (parts.next()?, parts.next()?, parts.next()?);
    Some(
        h.parse::<f64>().ok()? * 3600.0
            + m.parse::<f64>().ok()? * 60.0
            + sec.parse::<f64>().ok()?,
    )
}

fn url_contains(item: &Value, part: &str) -> bool {
    request_url(item).is_some_and(|u| u.contains(part))
}

/// The first log line (JSON) whose message is `message`.
fn log_line(svc: &Service, message: &str) -> Value {
    svc.logs()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["message"] == message)
        .unwrap_or_else(|| panic!("no {message:?} log line in:\n{}", last_logs(svc)))
}

/// The access-log line of the request with id `request_id` (waits for it briefly).
fn access_log(svc: &Service, request_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = svc
            .logs()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["target"] == "access" && l["request_id"] == request_id);
        if let Some(line) = found {
            return line;
        }
        assert!(
            Instant::now() < deadline,
            "no access-log line for {request_id}:\n{}",
            last_logs(svc)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Tags, transaction and request every request-bound event carries.
fn assert_request_event(event: &Value, method: &str, route: &str, status: &str, request_id: &str) {
    let s = spotlight::summary(event);
    assert_worker_tags(event);
    assert_eq!(event["transaction"], format!("{method} {route}"), "{s}");
    assert_eq!(tag(event, "route"), Some(route), "{s}");
    assert_eq!(tag(event, "status"), Some(status), "{s}");
    assert_eq!(tag(event, "request_id"), Some(request_id), "{s}");
    assert!(
        tag(event, "worker").is_some_and(|w| w.parse::<u32>().is_ok()),
        "{s}"
    );
    assert_eq!(event["request"]["method"], method, "{s}");
    assert!(url_contains(event, route), "{s}");
}

/// The innermost in-app frame of the first exception (frames are oldest first).
fn top_in_app_frame(event: &Value) -> Option<Value> {
    event["exception"]["values"][0]["stacktrace"]["frames"]
        .as_array()?
        .iter()
        .rev()
        .find(|f| f["in_app"] == true)
        .cloned()
}

fn frame_file(frame: &Value) -> &str {
    frame["abs_path"]
        .as_str()
        .or_else(|| frame["filename"].as_str())
        .unwrap_or_default()
}

/// The 1-based line of the first line of `source` containing `needle`.
fn line_of(source: &str, needle: &str) -> u64 {
    source
        .lines()
        .position(|l| l.contains(needle))
        .map(|i| i as u64 + 1)
        .unwrap_or_else(|| panic!("{needle:?} not found"))
}

/// The first span of a transaction with operation `op`.
fn span<'a>(transaction: &'a Value, op: &str) -> Option<&'a Value> {
    transaction["spans"]
        .as_array()?
        .iter()
        .find(|s| s["op"] == op)
}

#[test]
fn an_oversized_upstream_body_fails_the_call_as_a_bad_body() {
    let _machine = loopscope_tests::machine::shared();
    let backend = start("backend", &["--latency-ms", "0"]);
    for (handling, limit, status) in [
        ("async", "64", 502),
        ("threadpool", "64", 502),
        ("async", "65536", 200),
    ] {
        let worker = start(
            "worker",
            &[
                "--handling",
                handling,
                "--backend-url",
                &backend.base_url(),
                "--upstream-max-body-bytes",
                limit,
            ],
        );
        let (got, body) = worker.get("/work/call?ms=0");
        assert_eq!(got, status, "{handling}, limit {limit}: {body}");
        if status == 502 {
            assert_eq!(
                read_as::<ErrorBody>(&body).message,
                "backend answered 200 with an unusable body (too large)",
                "{body}"
            );
        }
    }
}

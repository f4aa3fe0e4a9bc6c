//! The worker's routes in-process (`actix_web::test`): every kind in both handlings, the work
//! report, bad input, faults, 404 and 405, in milliseconds and with no process, in
//! `make check`. `call` reaches the real backend, served in-process on a loopback port.
//! tests/tests/worker.rs covers the real binary: metrics, stalls, access log, many workers.
// Test code unwraps on purpose: a bad answer should fail the test loudly.
#![allow(clippy::unwrap_used)]

use actix_web::http::{StatusCode, header};
use actix_web::test::{TestRequest, call_service, init_service, read_body, read_body_json};
use clap::Parser;
use common::Telemetry;
use common::in_process::typed;
use common::in_process::{Served, app, serve};
use contract::{BackendReport, Choice, ErrorBody, Handling, Kind, WorkReport};
use serde_json::json;
use worker::Cli;
use worker::routes::{configure, state};

/// The worker's routes as `main` assembles them from `args`.
fn routes(args: &[&str]) -> impl Fn(&mut actix_web::web::ServiceConfig) + Clone + Send + 'static {
    let cli = Cli::parse_from([&["worker"][..], args].concat());
    let telemetry = Telemetry::new(&cli.service_info()).unwrap();
    configure(state(&cli, &telemetry).unwrap())
}

macro_rules! worker {
    ($($arg:expr),*) => {
        init_service(app(routes(&[$($arg),*]))).await
    };
}

/// GET `uri`: the status and the JSON body.
macro_rules! get {
    ($app:expr, $uri:expr) => {
        common::in_process::get_json(&$app, $uri).await
    };
}

/// The real backend, answering after `latency_ms` unless a request says otherwise.
fn backend(latency_ms: &str) -> Served {
    let cli = backend::Cli::parse_from(["backend", "--latency-ms", latency_ms]);
    serve(backend::routes::configure(
        backend::routes::state(&cli).unwrap(),
    ))
    .unwrap()
}

/// A URL where nothing listens: a port just bound and released.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

fn this_thread() -> String {
    std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .to_owned()
}

#[actix_web::test]
async fn every_kind_in_both_handlings_reports_where_and_how_long_it_ran() {
    let backend = backend("0");
    for &handling in Handling::ALL {
        let url = backend.url();
        let app = worker!(
            "--handling",
            handling.as_str(),
            "--backend-url",
            &url,
            "--max-ms",
            "5000"
        );
        for &kind in Kind::ALL {
            // `block` is kept short: it holds this test's only event loop.
            let (status, body) = get!(app, &format!("{}?ms=5", kind.worker_path()));
            assert_eq!(status, StatusCode::OK, "{handling} {kind}: {body}");
            let report: WorkReport = serde_json::from_value(body.clone()).unwrap();
            assert_eq!(report.service, "worker");
            assert_eq!((report.handling, report.kind), (handling, kind));
            assert_eq!(report.requested_ms, Some(5));
            assert!(report.thread_id > 0, "{body}");
            assert_eq!(report.pid, std::process::id());
            assert!(report.queued_ms >= 0.0, "{body}");
            assert!(report.service_ms >= 5.0, "{handling} {kind}: {body}");
            assert!(report.started_at <= report.finished_at, "{body}");
            // Where it ran: on the event loop (this test's thread) for async work and for
            // `block` in either mode, on a blocking-pool thread for threadpool work.
            let on_event_loop = handling == Handling::Async || kind == Kind::Block;
            assert_eq!(
                report.thread == this_thread(),
                on_event_loop,
                "{handling} {kind} ran on {}",
                report.thread
            );
            match kind {
                Kind::Call => {
                    let answer: BackendReport = typed(&report.backend.unwrap());
                    assert_eq!(answer.service, "backend", "{answer:?}");
                    assert_eq!(answer.median_ms, 5, "the worker passed ms on: {answer:?}");
                }
                _ => assert_eq!(report.backend, None, "{body}"),
            }
        }
    }
}

#[actix_web::test]
async fn call_without_ms_leaves_the_latency_to_the_backend() {
    let backend = backend("3");
    for &handling in Handling::ALL {
        let url = backend.url();
        let app = worker!("--handling", handling.as_str(), "--backend-url", &url);
        let (status, body) = get!(app, "/work/call");
        assert_eq!(status, StatusCode::OK, "{handling}: {body}");
        let report: WorkReport = serde_json::from_value(body).unwrap();
        assert_eq!(report.requested_ms, None);
        assert_eq!(
            typed::<BackendReport>(&report.backend.unwrap()).median_ms,
            3
        );
    }
}

#[actix_web::test]
async fn a_backend_that_is_down_is_a_502_naming_it_without_its_address() {
    let down = closed_port_url();
    for &handling in Handling::ALL {
        let app = worker!("--handling", handling.as_str(), "--backend-url", &down);
        let (status, body) = get!(app, "/work/call?ms=1");
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{handling}: {body}");
        let error: ErrorBody = typed(&body);
        assert_eq!(error.error, "upstream_unavailable", "{body}");
        let message = error.message.as_str();
        assert!(message.starts_with("backend is unreachable"), "{message}");
        let port = down.rsplit(':').next().unwrap();
        assert!(
            !message.contains("127.0.0.1") && !message.contains(port),
            "a client reads no internal address: {message}"
        );
    }
}

#[actix_web::test]
async fn bad_input_is_a_400_naming_the_parameter_with_todays_message() {
    let app = worker!("--handling", "async", "--max-ms", "5000");
    let range = |got: &str| format!("ms must be an integer between 0 and 5000, got `{got}`");
    let code = |got: &str| format!("code must be an HTTP status between 200 and 599, got `{got}`");
    for (uri, param, message) in [
        ("/work/io", "ms", "`ms` is required".to_owned()),
        ("/work/block", "ms", "`ms` is required".to_owned()),
        ("/work/io?ms=abc", "ms", range("abc")),
        ("/work/cpu?ms=-5", "ms", range("-5")),
        ("/work/block?ms=5001", "ms", range("5001")),
        ("/work/io?ms=1e3", "ms", range("1e3")),
        ("/work/io?ms=%ZZ", "ms", range("%ZZ")),
        ("/work/call?ms=x", "ms", range("x")),
        (
            "/work/teleport?ms=1",
            "kind",
            "kind must be one of io, cpu, call, block, got `teleport`".to_owned(),
        ),
        (
            "/work/io?ms=1&msec=2",
            "query",
            "unknown parameter(s): msec".to_owned(),
        ),
        (
            "/work/io?ms=1&ms=2",
            "query",
            "parameter `ms` is given more than once".to_owned(),
        ),
        ("/fault/status/abc", "code", code("abc")),
        ("/fault/status/99", "code", code("99")),
        ("/fault/status/600", "code", code("600")),
    ] {
        let res = call_service(&app, TestRequest::get().uri(uri).to_request()).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{uri}");
        let id = res
            .headers()
            .get("x-request-id")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let body: ErrorBody = read_body_json(res).await;
        assert_eq!(
            (
                body.error.as_str(),
                body.param.as_deref(),
                body.message.as_str()
            ),
            ("bad_request", Some(param), message.as_str()),
            "{uri}"
        );
        assert_eq!(
            body.request_id.as_deref(),
            Some(id.as_str()),
            "the body names the header's id"
        );
    }
    // The negative control: the same routes with good input are no 400s.
    for uri in ["/work/io?ms=0", "/work/cpu?ms=1", "/fault/status/200"] {
        assert_eq!(get!(app, uri).0, StatusCode::OK, "{uri}");
    }
}

#[actix_web::test]
async fn faults_answer_500_json_and_the_worker_keeps_serving() {
    for &handling in Handling::ALL {
        let app = worker!("--handling", handling.as_str());
        let (status, body) = get!(app, "/fault/error");
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
        let error: ErrorBody = typed(&body);
        assert_eq!(error.error, "injected_fault");
        assert_eq!(error.message, "injected fault: GET /fault/error was called");
        // A real panic, on the event loop (async) or in a pool job (threadpool); the panic
        // message is printed by the test harness's hook, which is expected.
        for _ in 0..2 {
            let (status, body) = get!(app, "/fault/panic");
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{handling}");
            let error: ErrorBody = typed(&body);
            assert_eq!(error.error, "internal_error", "{body}");
            assert!(error.request_id.is_some(), "{body}");
        }
        assert_eq!(get!(app, "/work/io?ms=1").0, StatusCode::OK, "{handling}");
    }
}

#[actix_web::test]
async fn status_faults_answer_the_status_asked_for() {
    let app = worker!("--handling", "async");
    let (status, body) = get!(app, "/fault/status/418");
    assert_eq!((status.as_u16(), body), (418, json!({"status": 418})));
    assert_eq!(get!(app, "/fault/status/503").0.as_u16(), 503);
    // HTTP forbids a body on a 204.
    let res = call_service(
        &app,
        TestRequest::get().uri("/fault/status/204").to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(read_body(res).await.is_empty());
}

#[actix_web::test]
async fn unknown_paths_are_404_json_and_other_methods_405() {
    let app = worker!("--handling", "async");
    let (status, body) = get!(app, "/no/such/route");
    assert_eq!(status, StatusCode::NOT_FOUND);
    let error: ErrorBody = typed(&body);
    assert_eq!(error.error, "not_found");
    assert_eq!(error.message, "no route for GET /no/such/route");

    for &kind in Kind::ALL {
        let uri = format!("{}?ms=1", kind.worker_path());
        let res = call_service(&app, TestRequest::post().uri(&uri).to_request()).await;
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED, "{uri}");
        assert_eq!(
            res.headers().get(header::ALLOW).unwrap(),
            "GET, HEAD, OPTIONS"
        );
        let body: ErrorBody = read_body_json(res).await;
        assert_eq!(body.error, "method_not_allowed", "{body:?}");
    }
    let res = call_service(&app, TestRequest::delete().uri("/fault/error").to_request()).await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[actix_web::test]
async fn the_test_only_route_exists_only_when_enabled() {
    let app = worker!("--handling", "async");
    assert_eq!(get!(app, "/test/lock?ms=1").0, StatusCode::NOT_FOUND);
    let app = worker!("--handling", "async", "--enable-test-routes");
    let (status, body) = get!(app, "/test/lock?ms=1");
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"waited_for_lock_ms": 1}))
    );
}

#[test]
fn a_backend_url_that_is_not_http_is_refused_at_start() {
    let cli = Cli::parse_from(["worker", "--handling", "async", "--backend-url", "ftp://x"]);
    let telemetry = Telemetry::new(&cli.service_info()).unwrap();
    let err = state(&cli, &telemetry).err().map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("--backend-url `ftp://x` is not an http(s) URL, e.g. http://127.0.0.1:8083")
    );
}

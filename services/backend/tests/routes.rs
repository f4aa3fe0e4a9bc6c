//! The backend's route in-process (`actix_web::test`): no process, no port, milliseconds, in
//! `make check`. tests/tests/backend.rs covers the real binary.
// Test code unwraps on purpose: a bad answer should fail the test loudly.
#![allow(clippy::unwrap_used)]

use actix_web::App;
use actix_web::http::StatusCode;
use actix_web::test::{TestRequest, call_service, init_service, read_body_json};
use backend::Cli;
use backend::routes::{configure, state};
use clap::Parser;
use contract::{BackendReport, Distribution, ErrorBody};

fn cli(args: &[&str]) -> Cli {
    Cli::parse_from([&["backend"][..], args].concat())
}

macro_rules! app {
    ($($arg:expr),*) => {
        init_service(App::new().configure(configure(state(&cli(&[$($arg),*])).unwrap()))).await
    };
}

/// GET `uri`: the status and the body, read as the reply type `$ty` of the contract.
macro_rules! get {
    ($app:expr, $uri:expr, $ty:ty) => {{
        let res = call_service(&$app, TestRequest::get().uri($uri).to_request()).await;
        let status = res.status();
        let body: $ty = read_body_json(res).await;
        (status, body)
    }};
}

#[actix_web::test]
async fn answers_with_its_report_and_per_request_overrides() {
    let app = app!("--latency-ms", "0");
    let (status, body) = get!(app, "/query", BackendReport);
    assert_eq!(status, StatusCode::OK, "{body:?}");
    assert_eq!(body.service, "backend");
    assert_eq!(body.median_ms, 0);
    assert_eq!(body.dist, Distribution::Fixed);
    assert_eq!((body.error, body.message), (None, None));

    let (status, body) = get!(app, "/query?ms=1&dist=lognormal&spread=0", BackendReport);
    assert_eq!(status, StatusCode::OK, "{body:?}");
    assert_eq!((body.median_ms, body.dist), (1, Distribution::Lognormal));
}

#[actix_web::test]
async fn error_rate_one_always_fails_on_purpose() {
    let app = app!("--latency-ms", "0");
    let (status, body) = get!(app, "/query?error_rate=1", BackendReport);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body:?}");
    assert_eq!(body.error.as_deref(), Some("injected_error"));
    // The negative control: rate 0 never fails.
    let (status, _) = get!(app, "/query?error_rate=0", BackendReport);
    assert_eq!(status, StatusCode::OK);
}

#[actix_web::test]
async fn bad_parameters_are_400s_naming_the_parameter() {
    let app = app!("--latency-ms", "0", "--max-ms", "1000");
    for (uri, param) in [
        ("/query?ms=-1", "ms"),
        ("/query?ms=1001", "ms"),
        ("/query?dist=zipf", "dist"),
        ("/query?spread=5", "spread"),
        ("/query?error_rate=2", "error_rate"),
        ("/query?typo=1", "query"),
    ] {
        let (status, body) = get!(app, uri, ErrorBody);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body:?}");
        assert_eq!(body.error, "bad_request", "{uri}: {body:?}");
        assert_eq!(body.param.as_deref(), Some(param), "{uri}: {body:?}");
    }
}

#[actix_web::test]
async fn other_methods_are_405s() {
    let app = app!("--latency-ms", "0");
    let res = call_service(&app, TestRequest::post().uri("/query").to_request()).await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[test]
fn a_default_latency_above_max_ms_is_refused_at_start() {
    let err = state(&cli(&["--latency-ms", "2000", "--max-ms", "1000"])).err();
    assert_eq!(
        err.map(|e| e.to_string()).as_deref(),
        Some("--latency-ms 2000 is above --max-ms 1000")
    );
}

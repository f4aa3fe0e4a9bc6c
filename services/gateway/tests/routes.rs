//! The gateway's routes in-process (`actix_web::test`): proxy, compare, fan-out, the budget and
//! in-flight limits, and dependencies that are down or hang, in milliseconds and with no
//! process, in `make check`. The workers (and the backend behind them) are the real apps,
//! served in-process on loopback ports; a hanging worker is a listener that never answers.
//! tests/tests/gateway.rs covers the real binaries: seed 003's timings, metrics.
// Test code unwraps on purpose: a bad answer should fail the test loudly.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use actix_web::http::{StatusCode, header};
use actix_web::test::{TestRequest, call_service, init_service, read_body_json};
use clap::Parser;
use common::Telemetry;
use common::in_process::typed;
use common::in_process::{Served, app, serve};
use contract::{Choice, Compare, ErrorBody, FanoutMode, FanoutSummary, Handling, Kind, WorkReport};
use gateway::Cli;
use gateway::routes::{configure, state};

/// The gateway's routes as `main` assembles them from `args`.
fn routes(args: &[&str]) -> impl Fn(&mut actix_web::web::ServiceConfig) + Clone + Send + 'static {
    let cli = Cli::parse_from([&["gateway"][..], args].concat());
    let telemetry = Telemetry::new(&common::ServiceInfo {
        name: "gateway",
        handling: None,
        default_port: 0,
        default_admin_port: 0,
    })
    .unwrap();
    configure(state(&cli, &telemetry).unwrap())
}

macro_rules! gateway {
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

/// The real workers, both modes, in front of the real backend.
struct Workers {
    _backend: Served,
    async_: Served,
    threadpool: Served,
}

impl Workers {
    /// `extra`: flags for both workers.
    fn start(extra: &[&str]) -> Self {
        let cli = backend::Cli::parse_from(["backend", "--latency-ms", "0"]);
        let backend = serve(backend::routes::configure(
            backend::routes::state(&cli).unwrap(),
        ))
        .unwrap();
        let worker = |handling: Handling| {
            let url = backend.url();
            let args = [
                &[
                    "worker",
                    "--handling",
                    handling.as_str(),
                    "--backend-url",
                    &url,
                ][..],
                extra,
            ]
            .concat();
            let cli = worker::Cli::parse_from(args);
            let telemetry = Telemetry::new(&cli.service_info()).unwrap();
            serve(worker::routes::configure(
                worker::routes::state(&cli, &telemetry).unwrap(),
            ))
            .unwrap()
        };
        Self {
            async_: worker(Handling::Async),
            threadpool: worker(Handling::Threadpool),
            _backend: backend,
        }
    }

    fn urls(&self) -> [String; 4] {
        [
            "--worker-async-url".to_owned(),
            self.async_.url(),
            "--worker-threadpool-url".to_owned(),
            self.threadpool.url(),
        ]
    }
}

/// A URL where nothing listens: a port just bound and released.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

/// A worker that hangs: it accepts connections and never answers. Lives as long as the test.
async fn hanging_url() -> String {
    let listener = actix_web::rt::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    actix_web::rt::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    url
}

#[actix_web::test]
async fn each_of_the_eight_proxy_routes_returns_its_workers_report() {
    let workers = Workers::start(&[]);
    let [a, b, c, d] = workers.urls();
    let app = gateway!(&a, &b, &c, &d);
    for &handling in Handling::ALL {
        for &kind in Kind::ALL {
            let uri = format!("/api/{handling}{}?ms=2", kind.worker_path());
            let (status, body) = get!(app, &uri);
            assert_eq!(status, StatusCode::OK, "{uri}: {body}");
            let report: WorkReport = serde_json::from_value(body).unwrap();
            assert_eq!((report.handling, report.kind), (handling, kind), "{uri}");
            assert_eq!(report.requested_ms, Some(2));
            assert_eq!(report.backend.is_some(), kind == Kind::Call, "{uri}");
        }
    }
    // `call` may leave `ms` to the backend; the gateway passes no `ms` on.
    let (status, body) = get!(app, "/api/async/work/call");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(typed::<WorkReport>(&body).requested_ms, None);
}

#[actix_web::test]
async fn the_workers_own_refusal_comes_back_as_it_is() {
    let workers = Workers::start(&["--max-ms", "10"]);
    let [a, b, c, d] = workers.urls();
    let app = gateway!(&a, &b, &c, &d);
    let (status, body) = get!(app, "/api/threadpool/work/io?ms=20");
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let error: ErrorBody = typed(&body);
    assert_eq!(
        (error.param.as_deref(), error.message.as_str()),
        (
            Some("ms"),
            "ms must be an integer between 0 and 10, got `20`"
        ),
        "the worker's body: {body}"
    );
}

#[actix_web::test]
async fn compare_runs_one_job_on_both_modes() {
    let workers = Workers::start(&[]);
    let [a, b, c, d] = workers.urls();
    let app = gateway!(&a, &b, &c, &d);
    for kind in ["io", "call"] {
        let (status, body) = get!(app, &format!("/api/compare?kind={kind}&ms=3"));
        assert_eq!(status, StatusCode::OK, "{body}");
        let compare: Compare = typed(&body);
        assert_eq!(compare.kind.as_str(), kind);
        assert_eq!(compare.path, format!("/work/{kind}?ms=3"));
        for handling in Handling::ALL {
            let side = match handling {
                Handling::Async => &compare.async_side,
                Handling::Threadpool => &compare.threadpool,
            };
            assert_eq!(side.status, 200, "{body}");
            let report = side.report().unwrap();
            assert_eq!(report.handling, *handling);
            assert!(report.service_ms >= 3.0, "{body}");
        }
    }
    // `kind` defaults to io; `ms` does not default.
    let (status, body) = get!(app, "/api/compare?ms=1");
    assert_eq!(
        (status, typed::<Compare>(&body).kind),
        (StatusCode::OK, Kind::Io)
    );
}

/// (sent_at_ms, elapsed_ms) of each call, in index order.
fn calls(summary: &FanoutSummary) -> Vec<(f64, f64)> {
    for (i, call) in summary.calls.iter().enumerate() {
        assert_eq!(call.index, i, "{call:?}");
        assert_eq!(call.status, Some(200), "{call:?}");
        assert!(call.thread_id.unwrap() > 0, "{call:?}");
    }
    summary
        .calls
        .iter()
        .map(|c| (c.sent_at_ms.unwrap(), c.elapsed_ms))
        .collect()
}

#[actix_web::test]
async fn fanout_sends_its_calls_in_the_order_its_mode_says() {
    let workers = Workers::start(&[]);
    let [a, b, c, d] = workers.urls();
    let app = gateway!(&a, &b, &c, &d);
    let fanout = |q: &str| format!("/api/fanout?n=3&ms=15&{q}");
    // Rounded to the microsecond.
    let slack = 0.002;

    // One after another: each call sent once the one before it finished.
    for q in ["mode=sequential", "mode=limited&limit=1"] {
        let (status, body) = get!(app, &fanout(q));
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
        let summary: FanoutSummary = typed(&body);
        assert_eq!((summary.ok, summary.failed), (3, 0));
        let calls = calls(&summary);
        for pair in calls.windows(2) {
            let ((sent, took), (next, _)) = (pair[0], pair[1]);
            assert!(next + slack >= sent + took, "{q}: {calls:?}");
        }
    }
    // All at once: every call sent before the first one finished (the negative control of
    // the check above: these calls overlap).
    let (status, body) = get!(app, &fanout("mode=concurrent&handling=threadpool&kind=io"));
    assert_eq!(status, StatusCode::OK, "{body}");
    let summary: FanoutSummary = typed(&body);
    assert_eq!(summary.handling, Handling::Threadpool);
    let calls = calls(&summary);
    let last_sent = calls.iter().map(|c| c.0).fold(0.0, f64::max);
    let first_done = calls.iter().map(|c| c.0 + c.1).fold(f64::MAX, f64::min);
    assert!(last_sent < first_done, "{calls:?}");
    // The defaults: n=10, concurrent, async, io.
    let (status, body) = get!(app, "/api/fanout?ms=1");
    assert_eq!(status, StatusCode::OK, "{body}");
    let summary: FanoutSummary = typed(&body);
    assert_eq!(
        (summary.n, summary.mode, summary.handling, summary.limit),
        (10, FanoutMode::Concurrent, Handling::Async, None)
    );
    assert_eq!(summary.path, "/work/io?ms=1");
}

#[actix_web::test]
async fn bad_input_is_refused_before_any_call() {
    // No worker at all: a 400 must not need one.
    let down = closed_port_url();
    let app = gateway!(
        "--worker-async-url",
        &down,
        "--worker-threadpool-url",
        &down
    );
    for (uri, param) in [
        ("/api/compare?kind=teleport&ms=1", "kind"),
        ("/api/compare?kind=io", "ms"),
        ("/api/compare?kind=io&ms=-1", "ms"),
        ("/api/compare?kind=io&ms=1&extra=1", "query"),
        ("/api/fanout?n=0&ms=1", "n"),
        ("/api/fanout?n=101&ms=1", "n"),
        ("/api/fanout?n=ten&ms=1", "n"),
        ("/api/fanout?n=2&ms=1&mode=parallel", "mode"),
        ("/api/fanout?n=2&ms=1&mode=limited", "limit"),
        ("/api/fanout?n=2&ms=1&mode=limited&limit=0", "limit"),
        ("/api/fanout?n=2&ms=1&mode=concurrent&limit=2", "limit"),
        ("/api/fanout?n=2&ms=1&handling=gevent", "handling"),
        ("/api/sync/work/io?ms=1", "handling"),
        ("/api/async/work/sleep?ms=1", "kind"),
        ("/api/async/work/io?ms=1.5", "ms"),
        ("/api/async/work/io", "ms"),
    ] {
        let (status, body) = get!(app, uri);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        let error: ErrorBody = typed(&body);
        assert_eq!(
            (error.error.as_str(), error.param.as_deref()),
            ("bad_request", Some(param)),
            "{uri}: {body}"
        );
    }
    let (status, body) = get!(app, "/api/sync/work/io?ms=1");
    assert_eq!(
        (status, typed::<ErrorBody>(&body).message.as_str()),
        (
            StatusCode::BAD_REQUEST,
            "handling must be one of async, threadpool, got `sync`"
        )
    );
    let (status, body) = get!(app, "/api/nothing");
    assert_eq!(
        (status, typed::<ErrorBody>(&body).error.as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let res = call_service(&app, TestRequest::post().uri("/api/compare").to_request()).await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[actix_web::test]
async fn ms_is_bounded_by_what_the_gateway_can_wait_for_and_by_the_work_budget() {
    let workers = Workers::start(&[]);
    let [a, b, c, d] = workers.urls();
    let app = gateway!(
        &a,
        &b,
        &c,
        &d,
        "--upstream-timeout-ms",
        "2000",
        "--max-work-ms",
        "50"
    );
    let over_budget = |what: &str| {
        format!("{what} is over the work budget of one request, 50 ms (--max-work-ms)")
    };
    for (uri, message) in [
        (
            "/api/async/work/io?ms=1001",
            "ms must be an integer between 0 and 1000, got `1001`; the limit is what the gateway can wait for: --upstream-timeout-ms 2000 less 1000 ms for the call itself".to_owned(),
        ),
        ("/api/async/work/cpu?ms=51", over_budget("51 ms of cpu")),
        (
            "/api/compare?kind=block&ms=30",
            over_budget("2 calls x 30 ms of block = 60 ms"),
        ),
        (
            "/api/fanout?n=10&ms=10&kind=cpu",
            over_budget("10 calls x 10 ms of cpu = 100 ms"),
        ),
    ] {
        let (status, body) = get!(app, uri);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        let error: ErrorBody = typed(&body);
        assert_eq!(
            (error.param.as_deref(), error.message.as_str()),
            (Some("ms"), message.as_str()),
            "{uri}"
        );
    }
    // The negative controls: io only waits, so it is not budgeted; cpu within it passes.
    for uri in [
        "/api/fanout?n=10&ms=10&kind=io",
        "/api/async/work/cpu?ms=50",
        "/api/compare?kind=cpu&ms=25",
    ] {
        let (status, body) = get!(app, uri);
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    }
}

#[actix_web::test]
async fn past_max_in_flight_requests_are_shed_503_with_retry_after() {
    let workers = Workers::start(&[]);
    let [a, b, c, d] = workers.urls();
    let app = gateway!(&a, &b, &c, &d, "--max-in-flight", "1");
    let slow = call_service(
        &app,
        TestRequest::get()
            .uri("/api/async/work/io?ms=100")
            .to_request(),
    );
    let shed = call_service(
        &app,
        TestRequest::get().uri("/api/compare?ms=1").to_request(),
    );
    // `join!` polls in order: the slow request takes the only place on its first poll (the
    // extractor is ready at once) and holds it while it waits for the worker.
    let (slow, shed) = futures_util::join!(slow, shed);
    assert_eq!(slow.status(), StatusCode::OK);
    assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(shed.headers().get(header::RETRY_AFTER).unwrap(), "1");
    let body: ErrorBody = read_body_json(shed).await;
    assert_eq!(body.error, "overloaded", "{body:?}");
    assert_eq!(
        body.message,
        "the gateway is serving its limit of 1 requests (--max-in-flight); retry later"
    );
    // The place is given back when the request ends.
    assert_eq!(get!(app, "/api/compare?ms=1").0, StatusCode::OK);
}

#[actix_web::test]
async fn a_worker_down_is_a_502_and_a_hanging_one_a_504_within_the_timeout() {
    let down = closed_port_url();
    let hung = hanging_url().await;
    let app = gateway!(
        "--upstream-timeout-ms",
        "200",
        "--fanout-deadline-ms",
        "100",
        "--worker-async-url",
        &down,
        "--worker-threadpool-url",
        &hung
    );
    let timed = |uri: &'static str| {
        let app = &app;
        async move {
            let started = Instant::now();
            let (status, body) = get!(app, uri);
            (status, body, started.elapsed())
        }
    };

    let (status, body, took) = timed("/api/async/work/io?ms=1").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let error: ErrorBody = typed(&body);
    assert_eq!(error.error, "upstream_unavailable");
    let message = error.message.as_str();
    assert!(
        message.starts_with("worker-async is unreachable"),
        "{message}"
    );
    let port = down.rsplit(':').next().unwrap();
    assert!(
        !message.contains("127.0.0.1") && !message.contains(port) && !message.contains("http"),
        "a client reads no internal address: {message}"
    );
    assert!(
        took < Duration::from_millis(1000),
        "refused at once: {took:?}"
    );

    let (status, body, took) = timed("/api/threadpool/work/io?ms=1").await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    let error: ErrorBody = typed(&body);
    assert_eq!(
        (error.error.as_str(), error.message.as_str()),
        (
            "upstream_timeout",
            "worker-threadpool did not answer within 200 ms"
        )
    );
    assert!(
        took >= Duration::from_millis(190) && took < Duration::from_millis(1000),
        "{took:?}"
    );

    // Both sides failed: the status of the first, each side's outcome in the details.
    let (status, body, _) = timed("/api/compare?ms=1").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");

    // A fan-out keeps every call's outcome; the deadline (100 ms) cuts it before the upstream
    // timeout (200 ms) would.
    let (status, body, took) =
        timed("/api/fanout?n=3&ms=1&handling=threadpool&mode=sequential").await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    let summary: FanoutSummary = typed(typed::<ErrorBody>(&body).details.as_ref().unwrap());
    assert_eq!(summary.failed, 3, "{body}");
    // The first call was cut by the deadline, not by its own timeout.
    for call in &summary.calls {
        assert_eq!(
            call.error.as_deref(),
            Some("not finished within the fan-out deadline of 100 ms"),
            "{body}"
        );
    }
    assert!(took < Duration::from_millis(1000), "{took:?}");
}

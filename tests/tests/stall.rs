//! Catching a blocked event loop in the act, end to end on the real worker: while a handler
//! blocks, `/debug/stalls` on the admin port shows the route, the request, the classification
//! read from /proc and the blocked thread's stack, symbolized; Spotlight receives one
//! `EventLoopBlocked` event; the metrics exist at zero from the start; the requests that
//! waited behind it are counted. Awaited I/O and a panic are not stalls.
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use loopscope_tests::metrics::sample;
use loopscope_tests::spotlight::{self, Spotlight, exception, tag, trace};
use loopscope_tests::{Service, client, start};
use serde_json::Value;

/// How long anything here may take on a busy 2-core machine (it usually takes ms).
const WAIT: Duration = Duration::from_secs(20);

fn worker(handling: &str, extra: &[&str]) -> Service {
    start(
        "worker",
        &[&["--handling", handling, "--workers", "1"], extra].concat(),
    )
}

/// Waits until the stall reporter has loaded the debug info (it logs when): the first
/// symbolization of a debug build takes a second or more; a release build's, milliseconds.
fn wait_until_capture_ready(svc: &Service) {
    let deadline = Instant::now() + WAIT;
    while !svc.logs().iter().any(|l| l.contains("stall capture ready")) {
        assert!(Instant::now() < deadline, "{:#?}", svc.logs());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `path` on another thread; joins to (status, x-request-id, body).
fn send(svc: &Service, path: &str) -> JoinHandle<(u16, String, Value)> {
    let url = svc.url(path);
    std::thread::spawn(move || {
        let res = client(Duration::from_secs(30)).get(&url).send().unwrap();
        let status = res.status().as_u16();
        let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        (status, id, res.json().unwrap_or(Value::Null))
    })
}

fn stalls(svc: &Service) -> Value {
    let (status, body) = loopscope_tests::get(&svc.admin_url("/debug/stalls"));
    assert_eq!(status, 200, "{body}");
    // The answer is the contract's type, no member more or less (loadgen reads it so).
    if let Err(e) = serde_json::from_value::<contract::StallsView>(body.clone()) {
        panic!("/debug/stalls is not a contract::StallsView: {e}: {body:#}");
    }
    body
}

/// Polls `/debug/stalls` until a stall of `route` with its frames shows up.
fn wait_for_stall(svc: &Service, route: &str) -> Value {
    wait_for_record(svc, route, true)
}

/// Polls `/debug/stalls` until a stall of `route` shows up, symbolized or not.
fn wait_for_record(svc: &Service, route: &str, symbolized: bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let body = stalls(svc);
        let found = body["stalls"].as_array().and_then(|all| {
            all.iter()
                .find(|s| s["route"] == route && (!symbolized || s["symbolized"] == true))
                .cloned()
        });
        if let Some(stall) = found {
            return stall;
        }
        assert!(
            Instant::now() < deadline,
            "no stall of {route} listed: {body:#}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn functions(stall: &Value) -> Vec<(String, bool)> {
    stall["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["function"].as_str().unwrap_or("").to_owned(),
                f["in_app"] == true,
            )
        })
        .collect()
}

fn has_frame(stall: &Value, part: &str, in_app: bool) -> bool {
    functions(stall)
        .iter()
        .any(|(f, app)| f.contains(part) && *app == in_app)
}

#[test]
fn a_sleeping_handler_is_listed_while_blocked_with_the_sleep_and_its_caller() {
    // Classifies a stall from the thread's state: a busy machine changes it.
    let _machine = loopscope_tests::machine::exclusive();
    let svc = worker("async", &[]);
    wait_until_capture_ready(&svc);
    let request = send(&svc, "/work/block?ms=2000");
    let listed = wait_for_record(&svc, "/work/block", false);
    // Seen while blocked: the request has not answered yet.
    assert!(
        !request.is_finished(),
        "listed only after the block ended: {listed:#}"
    );
    assert_eq!(listed["in_progress"], true, "{listed:#}");
    assert_eq!(listed["classification"], "sleep", "{listed:#}");
    assert_eq!(listed["capture"], "captured", "{listed:#}");
    assert_eq!(listed["worker"], "0", "{listed:#}");
    // Sentry is off here, so the request has no trace; the Spotlight test below checks the
    // trace id of a stall against its transaction's.
    assert!(listed["trace_id"].is_null(), "{listed:#}");
    // The running poll's age is visible on /metrics while it blocks.
    let running = sample(
        &svc.metrics(),
        "loopscope_event_loop_poll_running_seconds",
        &[("worker", "0")],
    )
    .unwrap();
    assert!(running >= 0.1, "poll running for {running} s");
    // The stack, symbolized: in milliseconds in a release build; a debug build may need
    // longer than the block to load its debug info the first time.
    let stall = wait_for_stall(&svc, "/work/block");
    assert!(
        has_frame(&stall, "nanosleep", false) || has_frame(&stall, "std::thread", false),
        "no sleep frame: {:#?}",
        functions(&stall)
    );
    assert!(
        has_frame(&stall, "worker::work::perform", true),
        "the worker's work function is not an in-app frame: {:#?}",
        functions(&stall)
    );
    // Innermost first: the sleep comes before the worker code that called it.
    let first_app = functions(&stall).iter().position(|(_, app)| *app).unwrap();
    assert!(first_app > 0, "{:#?}", functions(&stall));
    let with_line = stall["frames"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["function"]
                .as_str()
                .unwrap()
                .contains("worker::work::perform")
        })
        .unwrap();
    assert!(
        with_line["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("work.rs"))
            && with_line["line"].is_u64(),
        "{with_line}"
    );

    let (status, request_id, _) = request.join().unwrap();
    assert_eq!(status, 200);
    assert_eq!(listed["request_id"], request_id.as_str());
    // Once over: not in progress, its total duration known.
    let deadline = Instant::now() + WAIT;
    let done = loop {
        let body = stalls(&svc);
        let s = body["stalls"][0].clone();
        if s["blocked_ms"].is_f64() {
            break s;
        }
        assert!(Instant::now() < deadline, "{body:#}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(done["in_progress"], false, "{done:#}");
    assert!(done["blocked_ms"].as_f64().unwrap() >= 2000.0, "{done:#}");
    let log = svc
        .logs()
        .into_iter()
        .find(|l| l.contains("event loop blocked") && l.contains(&request_id))
        .expect("one warning line with the request id");
    assert!(log.contains("\"classification\":\"sleep\""), "{log}");
    assert!(log.contains("worker::work::perform"), "{log}");
}

#[test]
fn async_cpu_work_is_cpu_in_the_burn_loop_and_awaited_io_is_no_stall() {
    // Classifies a stall from the thread's state: a busy machine changes it.
    let _machine = loopscope_tests::machine::exclusive();
    let svc = worker("async", &[]);
    let (status, _) = svc.get("/work/io?ms=400");
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        stalls(&svc)["stalls"],
        Value::Array(vec![]),
        "awaited io was listed"
    );

    let request = send(&svc, "/work/cpu?ms=400");
    let stall = wait_for_stall(&svc, "/work/cpu");
    // Runnable and mostly on a CPU. On a machine so loaded that the thread got under a fifth
    // of a CPU, "starved" is the true answer; accept it only then.
    let overloaded = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        .is_some_and(|load| {
            load > 4.0 * std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
        });
    let classification = stall["classification"].as_str().unwrap();
    assert!(
        classification == "cpu" || (overloaded && classification == "starved"),
        "{stall:#}"
    );
    assert!(
        has_frame(&stall, "worker::cpu::burn", true),
        "{:#?}",
        functions(&stall)
    );
    assert_eq!(request.join().unwrap().0, 200);
}

#[test]
fn a_lock_held_across_a_poll_is_lock() {
    // Classifies a stall from the thread's state: a busy machine changes it.
    let _machine = loopscope_tests::machine::exclusive();
    let svc = worker("async", &["--enable-test-routes"]);
    let request = send(&svc, "/test/lock?ms=500");
    let stall = wait_for_stall(&svc, "/test/lock");
    assert_eq!(stall["classification"], "lock", "{stall:#}");
    assert!(
        has_frame(&stall, "worker::routes::test_only::lock", true),
        "{:#?}",
        functions(&stall)
    );
    assert_eq!(request.join().unwrap().0, 200);
}

#[test]
fn test_routes_are_off_by_default() {
    let _machine = loopscope_tests::machine::shared();
    let svc = worker("async", &[]);
    assert_eq!(svc.get("/test/lock?ms=1").0, 404);
}

#[test]
fn with_capture_off_a_stall_is_still_listed_and_counted_without_a_stack() {
    let _machine = loopscope_tests::machine::shared();
    let svc = worker(
        "async",
        &["--stall-capture-ms", "0", "--stall-threshold-ms", "50"],
    );
    assert_eq!(svc.get("/work/block?ms=200").0, 200);
    let deadline = Instant::now() + WAIT;
    let stall = loop {
        let body = stalls(&svc);
        if let Some(s) = body["stalls"].as_array().and_then(|a| a.first()).cloned() {
            break s;
        }
        assert!(Instant::now() < deadline, "{body:#}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(stall["capture"], "off", "{stall:#}");
    assert_eq!(stall["route"], "/work/block", "{stall:#}");
    assert_eq!(stall["frames"], Value::Array(vec![]), "{stall:#}");
}

#[test]
fn a_panic_is_no_stall() {
    // Expects no stall at all: a starved poll on a busy machine would be one.
    let _machine = loopscope_tests::machine::exclusive();
    let svc = worker("async", &[]);
    wait_until_capture_ready(&svc);
    // The panic hook holds the loop for a while (backtrace, Sentry): the watchdog may take
    // its stack, and the reporter must drop it once it sees the panic frames.
    assert_eq!(svc.get("/fault/panic").0, 500);
    let deadline = Instant::now() + WAIT;
    while stalls(&svc)["stalls"] != Value::Array(vec![]) {
        assert!(Instant::now() < deadline, "{:#}", stalls(&svc));
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let page = svc.metrics();
    for classification in ["sleep", "cpu", "lock", "io", "starved", "unknown"] {
        assert_eq!(
            sample(
                &page,
                "loopscope_event_loop_stalls_total",
                &[
                    ("endpoint", "/fault/panic"),
                    ("classification", classification)
                ]
            ),
            Some(0.0),
            "{classification}"
        );
    }
    assert_eq!(
        sample(
            &page,
            "loopscope_event_loop_poll_running_seconds",
            &[("worker", "0")]
        ),
        Some(0.0),
        "the panicked poll still looks running"
    );
    assert_eq!(stalls(&svc)["running"], Value::Array(vec![]));
    assert_eq!(stalls(&svc)["stalls"], Value::Array(vec![]));
}

#[test]
fn stall_series_exist_at_zero_for_every_route_and_worker_from_the_start() {
    let _machine = loopscope_tests::machine::shared();
    let svc = start("worker", &["--handling", "async", "--workers", "2"]);
    let page = svc.metrics();
    for worker in ["0", "1"] {
        for route in ["/work/io", "/work/cpu", "/work/call", "/work/block"] {
            let labels = [("endpoint", route), ("worker", worker)];
            for name in [
                "loopscope_event_loop_blocked_polls_total",
                "loopscope_event_loop_blocked_seconds_total",
            ] {
                assert_eq!(
                    sample(&page, name, &labels),
                    Some(0.0),
                    "{name} {labels:?}\n{page}"
                );
            }
            for classification in ["sleep", "cpu", "lock", "io", "starved", "unknown"] {
                let mut labels = labels.to_vec();
                labels.push(("classification", classification));
                assert_eq!(
                    sample(&page, "loopscope_event_loop_stalls_total", &labels),
                    Some(0.0),
                    "{labels:?}"
                );
            }
        }
        for name in [
            "loopscope_event_loop_lag_max_seconds",
            "loopscope_event_loop_poll_running_seconds",
        ] {
            assert!(
                sample(&page, name, &[("worker", worker)]).is_some(),
                "{name}\n{page}"
            );
        }
    }
    for outcome in ["captured", "unsupported", "failed", "rate_limited"] {
        assert_eq!(
            sample(
                &page,
                "loopscope_stall_captures_total",
                &[("endpoint", "/work/block"), ("outcome", outcome)]
            ),
            Some(0.0)
        );
    }
    assert_eq!(
        sample(
            &page,
            "loopscope_event_loop_delayed_requests_total",
            &[("culprit", "/work/block")]
        ),
        Some(0.0)
    );
    // Negative control: the sampler does not invent series.
    assert_eq!(
        sample(
            &page,
            "loopscope_event_loop_blocked_polls_total",
            &[("endpoint", "/work/nope")]
        ),
        None
    );
}

#[test]
fn one_block_is_counted_classified_and_its_victims_attributed_to_it() {
    // Counts exactly one stall and its victims.
    let _machine = loopscope_tests::machine::exclusive();
    let svc = worker("async", &[]);
    // A victim in flight on the same (only) event loop, then the culprit, then two requests
    // that arrive while it blocks and are read only after it.
    let victim = send(&svc, "/work/io?ms=600");
    std::thread::sleep(Duration::from_millis(100));
    let culprit = send(&svc, "/work/block?ms=300");
    std::thread::sleep(Duration::from_millis(100));
    let queued: Vec<_> = (0..2).map(|_| send(&svc, "/work/io?ms=1")).collect();
    assert_eq!(culprit.join().unwrap().0, 200);
    assert_eq!(victim.join().unwrap().0, 200);
    for q in queued {
        assert_eq!(q.join().unwrap().0, 200);
    }
    let deadline = Instant::now() + WAIT;
    let page = loop {
        let page = svc.metrics();
        let stalls = sample(
            &page,
            "loopscope_event_loop_stalls_total",
            &[("endpoint", "/work/block"), ("classification", "sleep")],
        );
        if stalls == Some(1.0) {
            break page;
        }
        assert!(Instant::now() < deadline, "{page}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let culprit = [("culprit", "/work/block")];
    assert_eq!(
        sample(
            &page,
            "loopscope_event_loop_delayed_requests_total",
            &culprit
        ),
        Some(3.0),
        "{page}"
    );
    let delayed = sample(
        &page,
        "loopscope_event_loop_delayed_seconds_total",
        &culprit,
    )
    .unwrap();
    // ≈ 0.3 s for the one in flight, ≈ 0.2 s for each queued one.
    assert!((0.5..2.0).contains(&delayed), "delayed {delayed} s");
    assert_eq!(
        sample(
            &page,
            "loopscope_stall_captures_total",
            &[("endpoint", "/work/block"), ("outcome", "captured")]
        ),
        Some(1.0)
    );
    // The lag probe saw it: the worker's max lag over 30 s is about the block.
    let lag_max = sample(
        &page,
        "loopscope_event_loop_lag_max_seconds",
        &[("worker", "0")],
    )
    .unwrap();
    assert!(lag_max >= 0.15, "lag max {lag_max}");
}

#[test]
fn spotlight_receives_one_event_loop_blocked_event_per_block() {
    // Counts exactly one stall event.
    let _machine = loopscope_tests::machine::exclusive();
    let spotlight = Spotlight::start();
    let dsn = spotlight.dsn();
    let svc = worker(
        "async",
        &["--sentry-dsn", &dsn, "--sentry-traces-sample-rate", "1.0"],
    );
    let (status, request_id, _) = send(&svc, "/work/block?ms=300").join().unwrap();
    assert_eq!(status, 200);
    let is_blocked = |i: &Value| {
        i["type"] == "event" && exception(i).is_some_and(|(ty, _)| ty == "EventLoopBlocked")
    };
    let event = spotlight.wait_for("EventLoopBlocked event", WAIT, is_blocked);
    let s = spotlight::summary(&event);
    let exc = &event["exception"]["values"][0];
    assert_eq!(exc["mechanism"]["type"], "event_loop_blocked", "{s}");
    assert_eq!(exc["mechanism"]["handled"], true, "{s}");
    assert_eq!(event["level"], "warning", "{s}");
    assert_eq!(event["transaction"], "GET /work/block", "{s}");
    assert_eq!(
        event["fingerprint"],
        serde_json::json!(["event-loop-blocked", "/work/block"]),
        "{s}"
    );
    for (name, value) in [
        ("service", "worker"),
        ("handling", "async"),
        ("route", "/work/block"),
        ("worker", "0"),
        ("classification", "sleep"),
        ("request_id", request_id.as_str()),
    ] {
        assert_eq!(tag(&event, name), Some(value), "tag {name}: {s}");
    }
    assert!(
        event["extra"]["blocked_ms"].as_f64().unwrap() >= 300.0,
        "{s}"
    );
    assert_eq!(event["extra"]["suppressed_since_last"], 0, "{s}");
    // Outermost first, the blocking call last, in-app frames marked.
    let frames = exc["stacktrace"]["frames"]
        .as_array()
        .expect("a stacktrace");
    let last = frames.last().unwrap()["function"]
        .as_str()
        .unwrap_or_default();
    assert!(last.contains("nanosleep"), "innermost frame {last}");
    assert!(
        frames.iter().any(|f| f["in_app"] == true
            && f["function"]
                .as_str()
                .is_some_and(|n| n.contains("worker::work::perform"))),
        "{frames:#?}"
    );
    assert!(
        frames.iter().any(|f| f["in_app"] == false),
        "std frames are not in-app"
    );
    let thread = &event["threads"]["values"][0];
    assert_eq!(thread["crashed"], true, "{s}");
    assert_eq!(thread["id"], exc["thread_id"], "{s}");
    // The blocked request's trace: the same trace id as its transaction.
    let transaction = spotlight.wait_for("transaction of the block", WAIT, |i| {
        i["type"] == "transaction" && i["transaction"] == "GET /work/block"
    });
    assert_eq!(
        trace(&event, "trace_id"),
        trace(&transaction, "trace_id"),
        "{s}"
    );

    // One event per block: nothing more arrives for it.
    std::thread::sleep(Duration::from_millis(1500));
    let count = spotlight.items().iter().filter(|i| is_blocked(i)).count();
    assert_eq!(count, 1, "{:#?}", spotlight.items());
}

#[test]
fn the_gateway_proxy_is_eight_routes_each_with_its_stall_series() {
    let _machine = loopscope_tests::machine::shared();
    let gw = start("gateway", &["--workers", "1"]);
    let page = gw.metrics();
    for handling in ["async", "threadpool"] {
        for kind in ["io", "cpu", "call", "block"] {
            let route = format!("/api/{handling}/work/{kind}");
            assert_eq!(
                sample(
                    &page,
                    "loopscope_event_loop_blocked_polls_total",
                    &[("endpoint", &route), ("worker", "0")]
                ),
                Some(0.0),
                "{route}\n{page}"
            );
        }
    }
    // Other values still answer 400 naming the valid ones.
    let (status, body) = gw.get("/api/async/work/teleport?ms=1");
    assert_eq!(status, 400, "{body}");
}

//! Hostile clients and sick dependencies (issue 11), against the real binaries: bounded
//! series, no uncounted 408 after a stall, bounded work per public request, a shedding pool,
//! and logging that never hangs the app port.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use contract::{Compare, ErrorBody, FanoutSummary, Probe, ProbeStatus};
use loopscope_tests::metrics::sample;
use loopscope_tests::stack::{Stack, StackArgs};
use loopscope_tests::{Reply, bin, client, get, get_concurrently, get_reply, read_as, start};

/// A small deterministic generator: no dependency, reproducible failures.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// `len` characters of an HTTP token (valid as a method or a path segment).
    fn token(&mut self, len: usize) -> String {
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| CHARS[(self.next() % CHARS.len() as u64) as usize] as char)
            .collect()
    }
}

/// Sum of every sample of `name` on a Prometheus page (all label sets).
fn total(page: &str, name: &str) -> f64 {
    page.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

fn series(page: &str) -> usize {
    page.lines().filter(|l| !l.starts_with('#')).count()
}

/// Sends a raw request and returns the status line's code (0 when the server closed first).
fn raw_status(addr: SocketAddr, request: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(request.as_bytes());
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

// Budget for one worker after the sweeps below: the HTTP families grow by bounded label sets
// only (endpoint x 8 methods x ~60 status values); the whole page stays small.
const SERIES_BUDGET: usize = 2_500;
const SCRAPE_BYTES_BUDGET: usize = 512 * 1024;

#[test]
fn clients_cannot_create_series_without_bound() {
    let _machine = loopscope_tests::machine::shared();
    let svc = start("worker", &["--handling", "async", "--workers", "1"]);
    let before = svc.metrics();
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut rng = XorShift(0x5eed_1234_abcd_ef01);
    // 2,000 random methods, a tenth of them 8 KB long, on a known route and an unknown path.
    for i in 0..2_000 {
        let len = if i % 10 == 0 {
            8 * 1024
        } else {
            3 + (rng.next() % 12) as usize
        };
        let method = reqwest::Method::from_bytes(rng.token(len).as_bytes()).unwrap();
        let path = if i % 2 == 0 { "/work/io?ms=0" } else { "/nope" };
        let res = http.request(method, svc.url(path)).send().unwrap();
        assert!(res.status().is_client_error(), "{}", res.status());
    }
    // 2,000 random paths, known prefix and not.
    for i in 0..2_000 {
        let len = 1 + (rng.next() % 40) as usize;
        let seg = rng.token(len);
        let path = if i % 2 == 0 {
            format!("/work/{seg}")
        } else {
            format!("/{seg}/{}", rng.token(5))
        };
        let status = http.get(svc.url(&path)).send().unwrap().status();
        assert!(status.is_client_error(), "{path}: {status}");
    }
    // Every code /fault/status accepts, and some it refuses.
    for code in 100..=999 {
        let res = http
            .get(svc.url(&format!("/fault/status/{code}")))
            .send()
            .unwrap();
        let expected = if (200..=599).contains(&code) {
            code
        } else {
            400
        };
        assert_eq!(res.status().as_u16(), expected, "/fault/status/{code}");
    }
    let after = svc.metrics();
    let counted = total(&after, "loopscope_http_requests_total")
        - total(&before, "loopscope_http_requests_total");
    // Negative control: the sweep was counted, so the budget below measures something.
    assert_eq!(counted, 4_900.0, "requests counted");
    assert!(
        after.contains(r#"method="other""#),
        "random methods are `other`"
    );
    assert!(after.contains(r#"status="5xx""#), "unnamed codes by class");
    let (n, bytes) = (series(&after), after.len());
    println!(
        "series {} -> {n}, scrape {} -> {bytes} bytes",
        series(&before),
        before.len()
    );
    assert!(n <= SERIES_BUDGET, "{n} series > {SERIES_BUDGET}");
    assert!(
        bytes <= SCRAPE_BYTES_BUDGET,
        "{bytes} bytes > {SCRAPE_BYTES_BUDGET}"
    );
}

#[test]
fn requests_queued_behind_a_6s_block_are_answered_and_counted() {
    let _machine = loopscope_tests::machine::shared();
    let svc = start("worker", &["--handling", "async", "--workers", "1"]);
    let before = svc.metrics();
    let block_url = svc.url("/work/block?ms=6000");
    let io_url = svc.url("/work/io?ms=1");
    let (block, queued) = std::thread::scope(|s| {
        let block = s.spawn(|| get(&block_url));
        std::thread::sleep(Duration::from_millis(300));
        let urls = vec![io_url.clone(); 12];
        let queued = get_concurrently(&urls);
        (block.join().unwrap(), queued)
    });
    assert_eq!(block.0, 200, "{}", block.1);
    let statuses: Vec<u16> = queued.iter().map(|q| q.0).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // They did wait for the block: the proof that this test exercised the stall.
    assert!(
        queued.iter().all(|q| q.2 >= Duration::from_secs(5)),
        "{:?}",
        queued.iter().map(|q| q.2).collect::<Vec<_>>()
    );
    let after = svc.metrics();
    let counted = total(&after, "loopscope_http_requests_total")
        - total(&before, "loopscope_http_requests_total");
    assert_eq!(counted, 13.0, "every answered request is counted");
    let logged = svc
        .logs()
        .iter()
        .filter(|l| l.contains(r#""target":"access""#) && l.contains("/work/io"))
        .count();
    assert_eq!(logged, 12, "every answered request is logged");
}

#[test]
fn a_client_that_sends_nothing_still_gets_a_408() {
    let _machine = loopscope_tests::machine::shared();
    // The head timeout still protects against slowloris: only its stale clock was the bug.
    let svc = start(
        "worker",
        &[
            "--handling",
            "async",
            "--workers",
            "1",
            "--client-request-timeout-ms",
            "500",
        ],
    );
    let started = Instant::now();
    let status = raw_status(svc.app, "GET /work/io?ms=1 HTTP/1.1\r\n");
    assert_eq!(status, 408);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_worker_whose_stdout_nobody_reads_keeps_answering_and_stops_on_sigterm() {
    let _machine = loopscope_tests::machine::shared();
    // Told its ports: its stdout, where it says which it bound, is not read.
    let [port, admin] = loopscope_tests::quiet_port_numbers(2)[..] else {
        unreachable!("two ports")
    };
    let mut child = Command::new(bin("worker"))
        .args([
            "--handling",
            "async",
            "--workers",
            "1",
            "--shutdown-grace-secs",
            "2",
        ])
        .args([
            "--port",
            &port.to_string(),
            "--admin-port",
            &admin.to_string(),
        ])
        .env("LOOPSCOPE_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        // A pipe nobody reads: once its 64 KB are full, every write to it would block.
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _stdout = child.stdout.take();
    let app = format!("http://127.0.0.1:{port}");
    let admin = format!("http://127.0.0.1:{admin}");
    let http = client(Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(20);
    while http.get(format!("{app}/healthz")).send().is_err() {
        assert!(Instant::now() < deadline, "worker did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    // One access-log line each: 20,000 overflow the 64 KB pipe and the 16 k-line log queue.
    std::thread::scope(|s| {
        for t in 0..4 {
            let (http, app) = (&http, &app);
            s.spawn(move || {
                for i in 0..5_000 {
                    let res = http
                        .get(format!("{app}/work/io?ms=0"))
                        .send()
                        .unwrap_or_else(|e| panic!("thread {t} request {i}: {e}"));
                    assert_eq!(res.status(), 200, "thread {t} request {i}");
                }
            });
        }
    });
    let page = http
        .get(format!("{admin}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let dropped = sample(&page, "loopscope_log_lines_dropped_total", &[]).unwrap_or(0.0);
    assert!(dropped > 0.0, "no line dropped: the pipe was drained?");
    let ready = http.get(format!("{admin}/readyz")).send().unwrap().status();
    assert_eq!(ready, 200);
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("did not stop within 10 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_hung_app_port_is_not_ready() {
    let _machine = loopscope_tests::machine::shared();
    let svc = start("worker", &["--handling", "async", "--workers", "1"]);
    let admin = client(Duration::from_secs(5));
    assert_eq!(
        admin.get(svc.admin_url("/readyz")).send().unwrap().status(),
        200
    );
    let block_url = svc.url("/work/block?ms=3000");
    std::thread::scope(|s| {
        let block = s.spawn(|| get(&block_url));
        std::thread::sleep(Duration::from_millis(300));
        let res = admin.get(svc.admin_url("/readyz")).send().unwrap();
        assert_eq!(res.status(), 503);
        let body: Probe = res.json().unwrap();
        assert_eq!(body.status, ProbeStatus::Unresponsive, "{body:?}");
        assert!(body.message.is_some_and(|m| m.contains("/healthz")));
        assert_eq!(block.join().unwrap().0, 200);
    });
    // And the admin port's unknown paths answer JSON.
    let res = admin.get(svc.admin_url("/nope")).send().unwrap();
    assert_eq!(res.status(), 404);
    let body: ErrorBody = res.json().unwrap();
    assert_eq!(body.error, "not_found", "{body:?}");
}

fn small_stack(gateway: &[&str]) -> Stack {
    Stack::start(StackArgs {
        backend: &["--latency-ms", "10", "--workers", "1"],
        worker: &["--workers", "1"],
        gateway: &[&["--workers", "1"][..], gateway].concat(),
    })
}

#[test]
fn a_public_request_orders_a_bounded_amount_of_work() {
    let _machine = loopscope_tests::machine::shared();
    let s = small_stack(&[]);
    // Work budget: n x ms of cpu/block, compare counting both workers.
    for path in [
        "/api/fanout?n=100&kind=cpu&ms=50",
        "/api/async/work/block?ms=2500",
        "/api/threadpool/work/cpu?ms=60000",
        "/api/compare?kind=block&ms=1500",
    ] {
        let (status, body): (_, ErrorBody) = s.gateway.get_as(path);
        assert_eq!(status, 400, "{path}: {body:?}");
        assert_eq!(body.param.as_deref(), Some("ms"), "{path}: {body:?}");
        let message = body.message;
        assert!(
            message.contains("--max-work-ms") || message.contains("--upstream-timeout-ms"),
            "{path}: the limit is named: {message}"
        );
    }
    // ms past what the gateway can wait for, whatever the kind.
    let (status, body): (_, ErrorBody) = s.gateway.get_as("/api/async/work/io?ms=31000");
    assert_eq!(status, 400, "{body:?}");
    assert!(body.message.contains("--upstream-timeout-ms"), "{body:?}");
    // Within the budget, the experiments' requests still run.
    for path in [
        "/api/fanout?n=10&kind=cpu&ms=5",
        "/api/compare?kind=cpu&ms=5",
        "/api/async/work/block?ms=20",
        "/api/fanout?n=10&ms=100&mode=limited&limit=5",
    ] {
        let (status, body) = s.gateway.get(path);
        assert_eq!(status, 200, "{path}: {body}");
    }
}

#[test]
fn a_fanout_answers_at_its_deadline_with_the_calls_that_finished() {
    let _machine = loopscope_tests::machine::shared();
    let s = small_stack(&["--fanout-deadline-ms", "1000"]);
    let started = Instant::now();
    let Reply { status, body, .. } = get_reply(
        &s.gateway.url("/api/fanout?n=10&ms=300&mode=sequential"),
        Duration::from_secs(10),
        &[],
    );
    let took = started.elapsed();
    assert_eq!(status, 504, "{body}");
    assert!(took < Duration::from_millis(2_500), "{took:?}");
    let body: ErrorBody = read_as(&body);
    let summary: FanoutSummary = read_as(body.details.as_ref().expect("details"));
    let calls = &summary.calls;
    assert_eq!(calls.len(), 10, "{summary:?}");
    assert!(
        (2..=4).contains(&summary.ok),
        "about 3 of 300 ms fit in 1 s: {summary:?}"
    );
    assert!(
        calls[9].error.as_ref().unwrap().contains("deadline"),
        "{summary:?}"
    );
    assert_eq!(calls[9].sent_at_ms, None, "never sent: {summary:?}");
    assert_eq!(calls[0].status, Some(200), "{summary:?}");
}

#[test]
fn a_sequential_fanout_to_a_hung_worker_ends_at_the_deadline() {
    let _machine = loopscope_tests::machine::shared();
    let (_hole, hole_url) = loopscope_tests::black_hole();
    let gateway = start(
        "gateway",
        &[
            "--workers",
            "1",
            "--worker-async-url",
            &hole_url,
            "--fanout-deadline-ms",
            "1500",
        ],
    );
    let started = Instant::now();
    let (status, body): (_, ErrorBody) = gateway.get_as("/api/fanout?n=50&ms=1&mode=sequential");
    assert_eq!(status, 504, "{body:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let summary: FanoutSummary = read_as(body.details.as_ref().expect("details"));
    assert_eq!(summary.failed, 50, "{summary:?}");
}

#[test]
fn the_gateway_sheds_past_its_in_flight_limit() {
    let _machine = loopscope_tests::machine::shared();
    let s = small_stack(&["--max-in-flight", "2"]);
    let url = s.gateway.url("/api/async/work/io?ms=1500");
    let results: Vec<_> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..6)
            .map(|_| sc.spawn(|| get_reply(&url, Duration::from_secs(10), &[])))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = results.iter().filter(|r| r.status == 200).count();
    let shed: Vec<_> = results.iter().filter(|r| r.status == 503).collect();
    assert_eq!((ok, shed.len()), (2, 4), "{results:?}");
    for reply in shed {
        assert_eq!(reply.header("retry-after"), Some("1"));
        assert_eq!(read_as::<ErrorBody>(&reply.body).error, "overloaded");
    }
    // The places are given back.
    assert_eq!(s.gateway.get("/api/async/work/io?ms=1").0, 200);
}

fn pool_worker(queue: &str) -> loopscope_tests::Service {
    start(
        "worker",
        &[
            "--handling",
            "threadpool",
            "--workers",
            "1",
            "--blocking-threads",
            "1",
            "--blocking-queue",
            queue,
        ],
    )
}

#[test]
fn a_full_pool_queue_sheds_with_503_and_retry_after() {
    let _machine = loopscope_tests::machine::shared();
    let svc = pool_worker("2");
    let url = svc.url("/work/io?ms=1000");
    let results: Vec<_> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8)
            .map(|_| sc.spawn(|| get_reply(&url, Duration::from_secs(10), &[])))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = results.iter().filter(|r| r.status == 200).count();
    let shed: Vec<_> = results.iter().filter(|r| r.status == 503).collect();
    // One running and two waiting; the other five shed.
    assert_eq!((ok, shed.len()), (3, 5), "{results:?}");
    for reply in &shed {
        assert_eq!(reply.header("retry-after"), Some("1"));
        assert_eq!(read_as::<ErrorBody>(&reply.body).error, "pool_queue_full");
    }
    let page = svc.metrics();
    let shed_total = sample(
        &page,
        "loopscope_blocking_shed_total",
        &[("reason", "queue_full")],
    );
    assert_eq!(shed_total, Some(5.0), "{page}");
}

#[test]
fn jobs_of_clients_that_gave_up_are_not_run() {
    let _machine = loopscope_tests::machine::shared();
    let svc = pool_worker("100");
    let slow = svc.url("/work/io?ms=1500");
    let queued = svc.url("/work/io?ms=1000");
    let fresh = svc.url("/work/io?ms=1");
    std::thread::scope(|sc| {
        // Holds the only pool thread for 1.5 s.
        let first = sc.spawn(|| get_reply(&slow, Duration::from_secs(10), &[]));
        std::thread::sleep(Duration::from_millis(200));
        // Ten clients queue behind it and give up after 300 ms.
        let quitters: Vec<_> = (0..10)
            .map(|_| {
                sc.spawn(|| {
                    client(Duration::from_millis(300))
                        .get(&queued)
                        .send()
                        .is_err()
                })
            })
            .collect();
        for q in quitters {
            assert!(
                q.join().unwrap(),
                "a client that should have timed out got an answer"
            );
        }
        // Had their jobs run, this one would wait 10 s behind them.
        let started = Instant::now();
        let Reply { status, body, .. } = get_reply(&fresh, Duration::from_secs(20), &[]);
        assert_eq!(status, 200, "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}: {body}",
            started.elapsed()
        );
        assert_eq!(first.join().unwrap().status, 200);
    });
    let page = svc.metrics();
    let abandoned = sample(
        &page,
        "loopscope_blocking_shed_total",
        &[("reason", "abandoned")],
    );
    assert_eq!(abandoned, Some(10.0));
}

#[test]
fn statuses_without_a_body_have_none_and_compare_fails_when_both_sides_do() {
    let _machine = loopscope_tests::machine::shared();
    let dead_backend = loopscope_tests::closed_port_url();
    let worker = |handling: &str| {
        start(
            "worker",
            &[
                "--handling",
                handling,
                "--workers",
                "1",
                "--backend-url",
                &dead_backend,
            ],
        )
    };
    let (a, t) = (worker("async"), worker("threadpool"));
    for code in [204, 304] {
        let res = client(Duration::from_secs(5))
            .get(a.url(&format!("/fault/status/{code}")))
            .send()
            .unwrap();
        assert_eq!(res.status().as_u16(), code);
        assert!(res.headers().get("content-type").is_none(), "{code}");
        assert_eq!(res.text().unwrap(), "", "{code}");
    }
    let gateway = start(
        "gateway",
        &[
            "--workers",
            "1",
            "--worker-async-url",
            &a.base_url(),
            "--worker-threadpool-url",
            &t.base_url(),
        ],
    );
    let (status, body): (_, ErrorBody) = gateway.get_as("/api/compare?kind=call");
    assert_eq!(status, 502, "{body:?}");
    let compare: Compare = read_as(body.details.as_ref().expect("details"));
    assert_eq!(compare.async_side.status, 502, "{compare:?}");
    assert_eq!(compare.threadpool.status, 502, "{compare:?}");
}

#[test]
fn echoed_input_is_truncated() {
    let _machine = loopscope_tests::machine::shared();
    let svc = start("worker", &["--handling", "async", "--workers", "1"]);
    let long = "x".repeat(20_000);
    let (status, body): (_, ErrorBody) = svc.get_as(&format!("/work/io?ms={long}"));
    assert_eq!(status, 400);
    let message = body.message;
    assert!(message.len() < 300, "{} bytes", message.len());
    assert!(message.contains("20000 bytes"), "{message}");
    let (status, body) = svc.get(&format!("/{long}"));
    assert_eq!(status, 404);
    assert!(body.to_string().len() < 500, "{body}");
}

#[test]
fn disabled_layers_warn_at_start_and_show_in_a_metric() {
    let _machine = loopscope_tests::machine::shared();
    let svc = start(
        "worker",
        &[
            "--handling",
            "async",
            "--workers",
            "1",
            "--disable-layers",
            "sentry,access-log",
        ],
    );
    let warned = svc
        .logs()
        .iter()
        .any(|l| l.contains(r#""level":"WARN""#) && l.contains("--disable-layers"));
    assert!(warned, "{:?}", svc.logs());
    let page = svc.metrics();
    let layer = |name: &str| {
        sample(
            &page,
            "loopscope_instrumentation_layer_disabled",
            &[("layer", name)],
        )
    };
    assert_eq!(layer("sentry"), Some(1.0));
    assert_eq!(layer("access-log"), Some(1.0));
    assert_eq!(layer("stall"), Some(0.0));
}

/// A sick dependency: answers every request with `status_line` and a JSON `{}`.
fn odd_upstream(status_line: &'static str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = write!(
                stream,
                "HTTP/1.1 {status_line}\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
            );
        }
    });
    url
}

#[test]
fn the_proxy_does_not_pass_on_a_status_http_does_not_have() {
    let _machine = loopscope_tests::machine::shared();
    let gateway = start(
        "gateway",
        &[
            "--workers",
            "1",
            "--worker-async-url",
            &odd_upstream("999 Odd"),
        ],
    );
    let (status, body) = gateway.get("/api/async/work/io?ms=1");
    assert_eq!(status, 502, "{body}");
    // Negative control: a real status from the same kind of upstream is passed on.
    let gateway = start(
        "gateway",
        &[
            "--workers",
            "1",
            "--worker-async-url",
            &odd_upstream("418 Teapot"),
        ],
    );
    assert_eq!(gateway.get("/api/async/work/io?ms=1").0, 418);
}

/// Where the redirects below point: counts every connection made to it.
fn redirect_target() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/elsewhere", listener.local_addr().unwrap());
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(stream);
        }
    });
    (url, hits)
}

/// A dependency that answers every call with a 302 to `location` (and a JSON body, so only
/// the status can make the call fail).
fn redirecting_upstream(location: String) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = write!(
                stream,
                "HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
            );
        }
    });
    url
}

#[test]
fn service_to_service_clients_refuse_redirects() {
    let _machine = loopscope_tests::machine::shared();
    let (target, hits) = redirect_target();
    // Negative control: the target does count a connection made to it.
    drop(
        TcpStream::connect(
            target
                .trim_start_matches("http://")
                .trim_end_matches("/elsewhere"),
        )
        .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    while hits.load(std::sync::atomic::Ordering::SeqCst) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    let upstream = redirecting_upstream(target);
    // gateway -> worker (async client), worker -> backend from an event loop (async client)
    // and from a pool thread (blocking client).
    let callers = [
        (
            "gateway",
            vec!["--worker-async-url", &upstream],
            "/api/async/work/io?ms=1",
        ),
        (
            "worker",
            vec!["--handling", "async", "--backend-url", &upstream],
            "/work/call?ms=1",
        ),
        (
            "worker",
            vec!["--handling", "threadpool", "--backend-url", &upstream],
            "/work/call?ms=1",
        ),
    ];
    for (name, flags, path) in callers {
        let mut args = vec!["--workers", "1"];
        args.extend(flags.iter().copied());
        let svc = start(name, &args);
        let (status, body): (_, ErrorBody) = svc.get_as(path);
        assert_eq!(status, 502, "{name} {flags:?}: {body:?}");
        assert_eq!(body.error, "upstream_unavailable", "{body:?}");
        assert!(
            body.message.contains("a redirect, not followed"),
            "{body:?}"
        );
        let failed = sample(
            &svc.metrics(),
            "loopscope_upstream_requests_total",
            &[("outcome", "bad_body")],
        );
        assert_eq!(failed, Some(1.0), "{name} {flags:?}");
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "a redirect target was contacted"
    );
}

//! Reporting to Sentry must never hold an event loop. With a Sentry host that accepts and
//! never answers, two failing requests a second (panics, error responses, 502s, 504s) must
//! leave a 1 ms request on the same event loop (one actix worker) as fast as without Sentry:
//! p99 within 2× of the run without a DSN. A blocking route in the same storm is the negative
//! control: it must fail the same check, or the check could not fail at all.
use std::net::TcpListener;
use std::time::{Duration, Instant};

use loopscope_tests::{Service, black_hole, closed_port_url, dsn_at, start};

/// How long each run measures, and how often the storm fires.
const RUN: Duration = Duration::from_secs(4);
const STORM_EVERY: Duration = Duration::from_millis(500);
/// Floor of the allowed p99: below it, differences are scheduler noise on a shared machine
/// (the failure this guards against held loops for seconds; the control holds 100 ms).
const FLOOR: Duration = Duration::from_millis(10);

struct Latencies {
    p50: Duration,
    p99: Duration,
    failed: usize,
    storm_statuses: Vec<u16>,
}

/// Fires each `storm` URL every [`STORM_EVERY`] (each on its own thread and connection)
/// while timing sequential requests to each `probe` URL, one after the other in one loop, on
/// one keep-alive connection each: the services are measured side by side, so whatever
/// else loads the machine loads both alike.
fn measure(storms: &[String], probes: &[String]) -> Vec<Latencies> {
    let stop = Instant::now() + RUN;
    let stormers: Vec<_> = storms
        .iter()
        .cloned()
        .map(|storm| {
            std::thread::spawn(move || {
                let mut sent = Vec::new();
                while Instant::now() < stop {
                    let url = storm.clone();
                    sent.push(std::thread::spawn(move || loopscope_tests::get(&url).0));
                    std::thread::sleep(STORM_EVERY);
                }
                sent.into_iter()
                    .map(|h| h.join().expect("storm thread"))
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    let clients: Vec<_> = probes
        .iter()
        .map(|_| {
            reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client")
        })
        .collect();
    let mut took = vec![Vec::new(); probes.len()];
    let mut failed = vec![0; probes.len()];
    while Instant::now() < stop {
        for (i, probe) in probes.iter().enumerate() {
            let started = Instant::now();
            match clients[i].get(probe).send() {
                Ok(r) if r.status().is_success() => {}
                _ => failed[i] += 1,
            }
            took[i].push(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut storm_statuses: Vec<Vec<u16>> = stormers
        .into_iter()
        .map(|h| h.join().expect("stormer"))
        .collect();
    took.into_iter()
        .zip(failed)
        .enumerate()
        .map(|(i, (mut took, failed))| {
            took.sort();
            let at = |q: f64| took[((took.len() as f64 * q) as usize).min(took.len() - 1)];
            Latencies {
                p50: at(0.5),
                p99: at(0.99),
                failed,
                storm_statuses: std::mem::take(&mut storm_statuses[i]),
            }
        })
        .collect()
}

/// Whether `with` keeps its p99 within 2× of `without` (or within [`FLOOR`]).
fn within_twice(without: &Latencies, with: &Latencies) -> bool {
    with.p99 <= (without.p99 * 2).max(FLOOR)
}

fn sentry_args(dsn: &str) -> Vec<&str> {
    vec![
        "--sentry-dsn",
        dsn,
        "--sentry-traces-sample-rate",
        "1.0",
        "--sentry-timeout-ms",
        "3000",
    ]
}

fn hanging_sentry() -> (TcpListener, String) {
    let (listener, _) = black_hole();
    let dsn = dsn_at(listener.local_addr().expect("black hole address"));
    (listener, dsn)
}

/// Runs one storm against a service started by `make` without and with a hanging Sentry;
/// whether the p99 held, and the run without Sentry.
fn check(
    what: &str,
    make: impl Fn(&[&str]) -> Service,
    storm: &str,
    probe: &str,
) -> (bool, Latencies) {
    let (sentry_host, dsn) = hanging_sentry();
    let plain = make(&[]);
    let reporting = make(&sentry_args(&dsn));
    // Steady state: loading the symbol tables (seconds of CPU in a debug build, once per
    // process, on a thread of its own) is start-up cost, not what this measures.
    loopscope_tests::wait_for_log(&reporting, "panic reporter ready");
    let mut runs = measure(
        &[plain.url(storm), reporting.url(storm)],
        &[plain.url(probe), reporting.url(probe)],
    );
    let with = runs.pop().expect("two runs");
    let without = runs.pop().expect("two runs");
    // The service did try to report: its transport connected to the hanging host.
    sentry_host.set_nonblocking(true).expect("nonblocking");
    assert!(
        sentry_host.accept().is_ok(),
        "{what}: nothing tried to reach the hanging Sentry, the run proves nothing"
    );
    let ok = within_twice(&without, &with);
    eprintln!(
        "{what}: without Sentry p50 {:?} p99 {:?}; with a hanging Sentry p50 {:?} p99 {:?} \
         (storm answered {:?}) -> {}",
        without.p50,
        without.p99,
        with.p50,
        with.p99,
        with.storm_statuses,
        if ok { "ok" } else { "HELD THE EVENT LOOP" }
    );
    assert_eq!(
        without.failed + with.failed,
        0,
        "{what}: probe requests failed"
    );
    (ok, without)
}

fn worker(extra: &[&str]) -> Service {
    start(
        "worker",
        &[&["--handling", "async", "--workers", "1"], extra].concat(),
    )
}

#[test]
fn panics_and_error_events_with_a_hanging_sentry_do_not_hold_the_event_loop() {
    // Compares p99 latencies with and without a hanging Sentry.
    let _machine = loopscope_tests::machine::exclusive();
    let mut baseline = None;
    for storm in ["/fault/panic", "/fault/error"] {
        let (ok, without) = check(storm, worker, storm, "/work/io?ms=1");
        assert!(ok, "{storm} held the event loop");
        baseline.get_or_insert(without);
    }
    // Negative control: a storm that does hold the loop (100 ms, twice a second) fails the
    // same check against the same baseline.
    let baseline = baseline.expect("a baseline run");
    let svc = worker(&[]);
    let held = measure(
        &[svc.url("/work/block?ms=100")],
        &[svc.url("/work/io?ms=1")],
    )
    .pop()
    .expect("one run");
    eprintln!(
        "control /work/block?ms=100: p50 {:?} p99 {:?} against a baseline p99 {:?}",
        held.p50, held.p99, baseline.p99
    );
    assert!(
        !within_twice(&baseline, &held),
        "the check cannot see a held event loop"
    );
}

#[test]
fn upstream_502s_and_504s_with_a_hanging_sentry_do_not_hold_the_event_loop() {
    // Compares p99 latencies with and without a hanging Sentry.
    let _machine = loopscope_tests::machine::exclusive();
    let healthy = start("worker", &["--handling", "threadpool"]);
    let (hung_worker, hung_url) = black_hole();
    let down = closed_port_url();
    for (what, broken) in [("502", down.as_str()), ("504", hung_url.as_str())] {
        let gateway = |extra: &[&str]| {
            start(
                "gateway",
                &[
                    &[
                        "--workers",
                        "1",
                        "--worker-async-url",
                        broken,
                        "--worker-threadpool-url",
                        &healthy.base_url(),
                        "--upstream-timeout-ms",
                        "200",
                    ],
                    extra,
                ]
                .concat(),
            )
        };
        let (ok, _) = check(
            what,
            gateway,
            "/api/async/work/io?ms=1",
            "/api/threadpool/work/io?ms=1",
        );
        assert!(ok, "{what}s held the event loop");
    }
    drop(hung_worker);
}

/// A Sentry that cannot be reached (here: it accepts and drops every connection) is not
/// hammered: after a failed send the transport drops envelopes unsent for a backoff (1 s,
/// doubling), says so once in the log, and tries again when the backoff ends.
#[test]
fn an_unreachable_sentry_is_retried_after_a_backoff_not_on_every_event() {
    // Times a 1 s backoff.
    let _machine = loopscope_tests::machine::exclusive();
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let dsn = dsn_at(listener.local_addr().expect("address"));
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = attempts.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(conn);
        }
    });
    let svc = worker(&sentry_args(&dsn));
    loopscope_tests::wait_for_log(&svc, "panic reporter ready");
    let burst = |n: usize| {
        for _ in 0..n {
            assert_eq!(svc.get("/fault/error").0, 500);
        }
    };
    // Each error is an event and a transaction: 40 envelopes, ~0.2 s.
    burst(20);
    loopscope_tests::wait_for_log(&svc, "sentry unreachable");
    let first = attempts.load(Ordering::SeqCst);
    assert!(
        (1..=3).contains(&first),
        "{first} connection attempts for 40 envelopes: the transport did not back off"
    );
    // The first backoff is 1 s: later envelopes are sent (and fail) again. Keep sending: on
    // a slow run the burst's second attempt failed too and doubled the backoff to 2 s, and
    // one burst of 5 could fall wholly inside it.
    std::thread::sleep(Duration::from_millis(1500));
    let deadline = Instant::now() + Duration::from_secs(10);
    while attempts.load(Ordering::SeqCst) == first && Instant::now() < deadline {
        burst(1);
        std::thread::sleep(Duration::from_millis(200));
    }
    let second = attempts.load(Ordering::SeqCst);
    assert!(
        second > first && second <= first + 3,
        "after the backoff: {second} attempts in all (was {first}); expected a retry"
    );
    let warnings = svc
        .logs()
        .iter()
        .filter(|l| l.contains("sentry unreachable"))
        .count();
    assert_eq!(warnings, 1, "the warning is logged once per outage");
}

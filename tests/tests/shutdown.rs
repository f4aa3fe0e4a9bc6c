//! SIGTERM under load: readiness drops, every accepted request finishes, exit 0.
use std::time::{Duration, Instant};

use contract::ErrorBody;
use loopscope_tests::{Reply, client, get, read_as, start, try_get_reply};

#[test]
fn sigterm_under_load_loses_no_accepted_request() {
    // Loads the worker and times its drain against the grace.
    let _machine = loopscope_tests::machine::exclusive();
    for handling in ["async", "threadpool"] {
        let mut svc = start(
            "worker",
            &[
                "--handling",
                handling,
                "--workers",
                "2",
                "--shutdown-grace-secs",
                "10",
            ],
        );
        let url = svc.url("/work/io?ms=700");
        let in_flight = 16;
        let (statuses, ready_during_drain, exit) = std::thread::scope(|s| {
            let requests: Vec<_> = (0..in_flight).map(|_| s.spawn(|| get(&url).0)).collect();
            // Wait until the server holds them all, then ask it to stop.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let page = svc.metrics();
                let now = loopscope_tests::metrics::sample(
                    &page,
                    "loopscope_http_requests_in_flight",
                    &[],
                );
                if now == Some(in_flight as f64) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "requests never all in flight: {now:?}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            svc.signal(libc::SIGTERM);
            std::thread::sleep(Duration::from_millis(100));
            // Draining: the admin port still answers, and says not ready.
            let ready = client(Duration::from_secs(2))
                .get(svc.admin_url("/readyz"))
                .send()
                .map(|r| r.status().as_u16());
            let statuses: Vec<u16> = requests.into_iter().map(|h| h.join().unwrap()).collect();
            (statuses, ready, svc.wait_exit(Duration::from_secs(15)))
        });
        assert!(
            statuses.iter().all(|s| *s == 200),
            "{handling}: {statuses:?}"
        );
        assert_eq!(
            ready_during_drain.ok(),
            Some(503),
            "{handling}: /readyz while draining"
        );
        let exit = exit.unwrap_or_else(|| panic!("{handling}: did not exit within 15 s"));
        assert!(exit.success(), "{handling}: exit {exit:?}");
        // New connections are refused once stopped.
        assert!(
            client(Duration::from_secs(1))
                .get(svc.url("/healthz"))
                .send()
                .is_err()
        );
    }
}

/// A GET and when its answer arrived; `Err` when the connection closed without one.
fn timed_get(url: &str) -> Result<(Reply, Instant), reqwest::Error> {
    try_get_reply(url, Duration::from_secs(30), &[]).map(|reply| (reply, Instant::now()))
}

#[test]
fn requests_still_running_when_the_grace_ends_get_a_503_before_the_exit() {
    // Times answers against the grace.
    let _machine = loopscope_tests::machine::exclusive();
    let mut svc = start(
        "worker",
        &[
            "--handling",
            "async",
            "--workers",
            "1",
            "--shutdown-grace-secs",
            "2",
        ],
    );
    let slow_url = svc.url("/work/io?ms=20000");
    let short_url = svc.url("/work/io?ms=800");
    std::thread::scope(|s| {
        let slow = s.spawn(|| timed_get(&slow_url));
        let short = s.spawn(|| timed_get(&short_url));
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        svc.signal(libc::SIGTERM);
        let exit = svc
            .wait_exit(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no exit after the grace:\n{}", svc.logs().join("\n")));
        let exited = Instant::now();
        assert!(exit.success(), "{exit:?}");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "grace 2 s, exit took {:?}",
            started.elapsed()
        );
        // Accepted earlier and done within the grace: answered as usual.
        let (short, _) = short.join().unwrap().expect("the short request's answer");
        assert_eq!(short.status, 200);
        // Still running when the grace ended: a 503 JSON, before the process was gone.
        let (slow, arrived) = slow.join().unwrap().expect("an answer, not a TCP close");
        let body: ErrorBody = read_as(&slow.body);
        assert_eq!(slow.status, 503, "{body:?}");
        assert_eq!(body.error, "shutting_down", "{body:?}");
        assert!(body.request_id.is_some(), "{body:?}");
        assert_eq!(slow.header("connection"), Some("close"));
        assert!(arrived <= exited, "the 503 arrived after the exit");
        let waited = arrived - started;
        assert!(
            waited >= Duration::from_millis(1200) && waited <= Duration::from_secs(2),
            "answered {waited:?} after SIGTERM, grace 2 s"
        );
        // Counted and logged like any answer.
        assert!(
            svc.logs().iter().any(|l| l.contains(r#""target":"access""#)
                && l.contains(r#""status":503"#)
                && l.contains("/work/io")),
            "{}",
            svc.logs().join("\n")
        );
    });
}

#[test]
fn a_loop_blocked_past_the_grace_cannot_answer_and_the_process_still_exits() {
    // Times the exit against the grace.
    let _machine = loopscope_tests::machine::exclusive();
    // The negative case the README states: a blocked event loop cannot write the 503.
    let mut svc = start(
        "worker",
        &[
            "--handling",
            "async",
            "--workers",
            "1",
            "--shutdown-grace-secs",
            "1",
        ],
    );
    let url = svc.url("/work/block?ms=8000");
    std::thread::scope(|s| {
        let blocked = s.spawn(|| timed_get(&url));
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        svc.signal(libc::SIGINT);
        let exit = svc
            .wait_exit(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no exit after the grace:\n{}", svc.logs().join("\n")));
        assert!(exit.success(), "{exit:?}");
        // The grace and the 0.5 s the drain waits past it for a blocked loop, not the block.
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "grace 1 s, exit took {:?}",
            started.elapsed()
        );
        let answer = blocked.join().unwrap();
        assert!(answer.is_err(), "a blocked loop answered: {answer:?}");
    });
}

#[test]
fn the_shutdown_delay_keeps_serving_while_not_ready() {
    // Times the shutdown delay.
    let _machine = loopscope_tests::machine::exclusive();
    let mut svc = start(
        "worker",
        &[
            "--handling",
            "async",
            "--workers",
            "1",
            "--shutdown-delay-secs",
            "2",
        ],
    );
    svc.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    // Not ready, yet new connections still get answers: endpoints may still send here.
    assert_eq!(get(&svc.admin_url("/readyz")).0, 503);
    assert_eq!(get(&svc.url("/readyz")).0, 503);
    assert_eq!(get(&svc.url("/work/io?ms=1")).0, 200);
    let started = Instant::now();
    let exit = svc
        .wait_exit(Duration::from_secs(10))
        .expect("exits after the delay");
    assert!(exit.success(), "{exit:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "left before the delay was over"
    );
}

//! SIGTERM under load: readiness drops, every accepted request finishes, exit 0.
use std::time::{Duration, Instant};

use loopscope_tests::{client, get, start};

#[test]
fn sigterm_under_load_loses_no_accepted_request() {
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

#[test]
fn in_flight_requests_past_the_grace_are_cut_and_the_process_still_exits() {
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
    let url = svc.url("/work/io?ms=20000");
    std::thread::scope(|s| {
        let slow = s.spawn(|| {
            client(Duration::from_secs(30))
                .get(&url)
                .send()
                .map(|r| r.status().as_u16())
        });
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        svc.signal(libc::SIGINT);
        let exit = svc
            .wait_exit(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no exit after the grace:\n{}", svc.logs().join("\n")));
        assert!(exit.success(), "{exit:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "grace 1 s, exit took {:?}",
            started.elapsed()
        );
        assert!(
            slow.join().unwrap().is_err(),
            "the cut request gets no answer"
        );
    });
}

#[test]
fn the_shutdown_delay_keeps_serving_while_not_ready() {
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

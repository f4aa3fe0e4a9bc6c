//! `--disable-layers`, the switch `make bench` uses to measure each instrumentation layer:
//! by default every layer records; each one named records nothing; a wrong name fails fast.
use std::time::Duration;

use loopscope_tests::metrics::sample;
use loopscope_tests::start;

const ROUTE: (&str, &str) = ("endpoint", "/work/block");

/// One quick request, one request that blocks its event loop for 50 ms, then a pause long
/// enough for the lag probe (every 10 ms here) to record.
fn exercise(extra: &[&str]) -> (String, Vec<String>) {
    let mut args = vec![
        "--handling",
        "async",
        "--workers",
        "1",
        "--lag-probe-interval-ms",
        "10",
    ];
    args.extend_from_slice(extra);
    let svc = start("worker", &args);
    assert_eq!(svc.get("/work/io?ms=0").0, 200);
    assert_eq!(svc.get("/work/block?ms=50").0, 200);
    std::thread::sleep(Duration::from_millis(100));
    (svc.metrics(), svc.logs())
}

fn access_lines(logs: &[String]) -> usize {
    logs.iter()
        .filter(|l| l.contains("\"target\":\"access\"") && l.contains("\"path\":\"/work/io\""))
        .count()
}

#[test]
fn by_default_every_layer_records() {
    // Counts exactly one blocked poll: a neighbour's load could stretch another.
    let _machine = loopscope_tests::machine::exclusive();
    let (page, logs) = exercise(&[]);
    assert_eq!(
        sample(&page, "loopscope_http_requests_total", &[ROUTE]),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        sample(&page, "loopscope_http_requests_in_flight", &[]),
        Some(0.0)
    );
    assert_eq!(
        sample(&page, "loopscope_event_loop_blocked_polls_total", &[ROUTE]),
        Some(1.0)
    );
    assert!(sample(&page, "loopscope_event_loop_lag_seconds_count", &[]).unwrap_or(0.0) > 0.0);
    assert_eq!(access_lines(&logs), 1, "{logs:#?}");
}

#[test]
fn disabled_layers_record_nothing_and_the_route_still_answers() {
    // Counts polls and lag samples over 100 ms.
    let _machine = loopscope_tests::machine::exclusive();
    let (page, logs) = exercise(&[
        "--disable-layers",
        "sentry,access-log,http-metrics,in-flight,stall",
    ]);
    for name in [
        "loopscope_http_requests_total",
        "loopscope_http_requests_in_flight",
        "loopscope_event_loop_blocked_polls_total",
        "loopscope_event_loop_lag_seconds_count",
    ] {
        assert_eq!(sample(&page, name, &[]), None, "{name} recorded:\n{page}");
    }
    assert_eq!(access_lines(&logs), 0, "{logs:#?}");
    // What is not a layer goes on: the work histogram and the process metrics.
    assert!(
        sample(
            &page,
            "loopscope_work_duration_seconds_count",
            &[("kind", "io")]
        )
        .is_some()
    );
}

#[test]
fn one_layer_off_leaves_the_others_on() {
    // Counts polls and lag samples over 100 ms.
    let _machine = loopscope_tests::machine::exclusive();
    let (page, logs) = exercise(&["--disable-layers", "http-metrics"]);
    assert_eq!(sample(&page, "loopscope_http_requests_total", &[]), None);
    assert_eq!(
        sample(&page, "loopscope_event_loop_blocked_polls_total", &[ROUTE]),
        Some(1.0)
    );
    assert_eq!(access_lines(&logs), 1);
}

#[test]
fn an_unknown_layer_fails_naming_the_setting() {
    let _machine = loopscope_tests::machine::shared();
    let out = std::process::Command::new(loopscope_tests::bin("worker"))
        .args([
            "--handling",
            "async",
            "--port",
            "0",
            "--admin-port",
            "0",
            "--disable-layers",
            "sentry,logs",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--disable-layers"), "{stderr}");
}

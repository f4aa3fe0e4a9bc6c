//! The two exposition styles of seed 000, and the metrics page itself.
use std::process::Command;
use std::time::{Duration, Instant};

use loopscope_tests::metrics::families;
use loopscope_tests::{client, get_text, start};

/// How long a scrape of `url` takes while the only app worker is blocked for 1.5 s.
fn scrape_while_blocked(block_url: &str, scrape_url: &str) -> Result<Duration, Duration> {
    std::thread::scope(|s| {
        let blocker = s.spawn(|| {
            client(Duration::from_secs(10))
                .get(block_url)
                .send()
                .map(|r| r.status().as_u16())
        });
        std::thread::sleep(Duration::from_millis(200));
        let started = Instant::now();
        let scrape = client(Duration::from_millis(700))
            .get(scrape_url)
            .send()
            .and_then(|r| r.error_for_status());
        let took = started.elapsed();
        assert_eq!(blocker.join().unwrap().ok(), Some(200));
        if scrape.is_ok() { Ok(took) } else { Err(took) }
    })
}

#[test]
fn separate_metrics_answer_while_every_app_worker_is_blocked_and_mounted_do_not() {
    let _machine = loopscope_tests::machine::shared();
    let separate = start("worker", &["--handling", "async", "--workers", "1"]);
    let took = scrape_while_blocked(
        &separate.url("/work/block?ms=1500"),
        &separate.admin_url("/metrics"),
    )
    .expect("the admin port answers while the app worker is blocked");
    assert!(
        took < Duration::from_millis(500),
        "separate scrape took {took:?}"
    );

    let mounted = start(
        "worker",
        &[
            "--handling",
            "async",
            "--workers",
            "1",
            "--metrics-exposition",
            "mounted",
        ],
    );
    assert!(mounted.admin.is_none(), "mounted mode opens no admin port");
    let (status, page) = get_text(&mounted.url("/metrics"));
    assert_eq!(status, 200);
    assert!(page.contains("loopscope_build_info"));
    let stalled = scrape_while_blocked(
        &mounted.url("/work/block?ms=1500"),
        &mounted.url("/metrics"),
    );
    assert!(
        stalled.is_err(),
        "the mounted scrape should stall behind the blocked worker: {stalled:?}"
    );
}

const CATALOGUE: &[&str] = &[
    "loopscope_http_requests_total",
    "loopscope_http_requests_duration_seconds",
    "loopscope_http_requests_in_flight",
    "loopscope_work_duration_seconds",
    "loopscope_blocking_queue_wait_seconds",
    "loopscope_blocking_tasks_in_flight",
    "loopscope_blocking_threads_max",
    "loopscope_server_workers",
    "loopscope_event_loop_lag_seconds",
    "loopscope_event_loop_blocked_polls_total",
    "loopscope_event_loop_blocked_seconds_total",
    "loopscope_event_loop_lag_max_seconds",
    "loopscope_event_loop_poll_running_seconds",
    "loopscope_event_loop_stalls_total",
    "loopscope_stall_captures_total",
    "loopscope_event_loop_delayed_requests_total",
    "loopscope_event_loop_delayed_seconds_total",
    "loopscope_worker_busy_seconds_total",
    "loopscope_upstream_requests_total",
    "loopscope_upstream_duration_seconds",
    "loopscope_build_info",
    "process_resident_memory_bytes",
    "process_threads",
];

fn promtool() -> String {
    let found = Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "promtool is not on PATH: run `make tools` (it installs Debian's prometheus package)"
    );
    "promtool".to_owned()
}

#[test]
fn metrics_carry_the_catalogue_and_pass_promtool() {
    let _machine = loopscope_tests::machine::shared();
    let backend = start("backend", &["--workers", "1", "--latency-ms", "1"]);
    let worker = start(
        "worker",
        &[
            "--handling",
            "threadpool",
            "--workers",
            "2",
            "--backend-url",
            &backend.base_url(),
        ],
    );
    for path in [
        "/work/io?ms=1",
        "/work/cpu?ms=1",
        "/work/call?ms=1",
        "/work/block?ms=15",
        "/nope",
    ] {
        worker.get(path);
    }
    // Counters and histograms of the lag probe need a probe tick.
    std::thread::sleep(Duration::from_millis(250));
    let page = worker.metrics();
    let names = families(&page);
    for name in CATALOGUE {
        let family = name.trim_end_matches("_total");
        assert!(
            names.iter().any(|n| n == name || n == family),
            "{name} missing from /metrics:\n{page}"
        );
    }
    for line in page
        .lines()
        .filter(|l| l.starts_with("loopscope_") || l.starts_with("process_"))
    {
        assert!(
            line.contains("service=\"worker\""),
            "no service label: {line}"
        );
        assert!(
            line.contains("handling=\"threadpool\""),
            "no handling label: {line}"
        );
    }
    assert!(page.contains("endpoint=\"/work/cpu\""));
    assert!(page.contains("kind=\"cpu\""));
    assert!(
        page.contains("worker=\"1\""),
        "per-worker series for both workers"
    );
    assert!(page.contains("le=\"0.0005\""), "buckets start at 0.5 ms");
    assert!(
        !page.contains("otel_scope"),
        "no OpenTelemetry scope labels"
    );
    assert!(
        !page.contains("endpoint=\"/metrics\"") && !page.contains("endpoint=\"/healthz\""),
        "scrapes and probes excluded"
    );

    let gateway_page = start("gateway", &["--workers", "1"]).metrics();
    assert!(gateway_page.contains("service=\"gateway\"") && !gateway_page.contains("handling="));

    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics:\n{report}"
    );
}

#[test]
fn probes_answer_on_app_and_admin_ports() {
    let _machine = loopscope_tests::machine::shared();
    let svc = start("backend", &["--workers", "1"]);
    for url in [
        svc.url("/healthz"),
        svc.url("/readyz"),
        svc.admin_url("/healthz"),
        svc.admin_url("/readyz"),
    ] {
        assert_eq!(get_text(&url).0, 200, "{url}");
    }
}

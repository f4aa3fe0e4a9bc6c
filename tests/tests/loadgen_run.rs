//! `loadgen run` and `loadgen serve` against the real binaries: the two load models, a
//! stalled server (coordinated omission), unreachable targets, bad flags, Ctrl-C, and the
//! client-side metrics of steady traffic.
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use loopscope_tests::metrics::sample;
use loopscope_tests::stack::Stack;
use loopscope_tests::{Service, bin, closed_port_url, get, start};
use serde_json::Value;

fn loadgen() -> Command {
    let mut cmd = Command::new(bin("loadgen"));
    for (key, _) in std::env::vars() {
        if key.starts_with("LOOPSCOPE_") || key.starts_with("SENTRY_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// `loadgen run <args>`, to its end.
fn run(args: &[&str]) -> Output {
    loadgen()
        .arg("run")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run loadgen")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `--json` summary on stdout.
fn summary(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not a JSON summary ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            stderr(out)
        )
    })
}

fn num(v: &Value, key: &str) -> f64 {
    v.pointer(key)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no {key} in {v:#}"))
}

fn worker() -> Service {
    start("worker", &["--handling", "async", "--workers", "1"])
}

/// Fires `/work/block?ms=N` on a thread and returns once the worker holds it: its only event
/// loop is then asleep for about N ms.
fn block(w: &Service, ms: u64) -> std::thread::JoinHandle<()> {
    let url = w.url(&format!("/work/block?ms={ms}"));
    let blocker = std::thread::spawn(move || {
        let (status, body) = get(&url);
        assert_eq!(status, 200, "{body}");
    });
    // The admin port has its own thread: it answers while the app's loop is blocked.
    let deadline = Instant::now() + Duration::from_secs(5);
    while sample(&w.metrics(), "loopscope_http_requests_in_flight", &[]) != Some(1.0) {
        assert!(Instant::now() < deadline, "the block never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    blocker
}

#[test]
fn closed_model_against_a_real_worker() {
    let _machine = loopscope_tests::machine::shared();
    let w = worker();
    let out = run(&["-c", "4", "-n", "40", "--json", &w.url("/work/io?ms=20")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let s = summary(&out);
    assert_eq!(s["model"], "closed");
    assert_eq!(s["concurrency"], 4);
    assert_eq!(s["sent"], 40, "{s:#}");
    assert_eq!(s["ok"], 40, "{s:#}");
    assert_eq!(s["errors"], 0, "{s:#}");
    assert_eq!(s["statuses"]["200"], 40, "{s:#}");
    assert_eq!(num(&s, "/latency_ms/count"), 40.0);
    assert!(num(&s, "/latency_ms/p50") >= 20.0, "{s:#}");
    assert!(num(&s, "/latency_ms/max") >= num(&s, "/latency_ms/p99"));
    assert!(num(&s, "/throughput") > 0.0);

    // The table, without --json: on stdout, with the figures.
    let out = run(&["-c", "2", "-n", "4", &w.url("/work/io?ms=1")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    for word in ["sent", "throughput", "p99.9", "status 200"] {
        assert!(table.contains(word), "no {word} in:\n{table}");
    }
}

#[test]
fn open_model_counts_latency_from_the_intended_send_time() {
    let _machine = loopscope_tests::machine::shared();
    let w = worker();
    let url = w.url("/work/io?ms=1");

    // Open model: 50/s whatever the server does. Every request meant to leave during the
    // second-long stall waits for it, and that wait is counted.
    let blocker = block(&w, 1000);
    let out = run(&["--rate", "50", "-d", "2s", "--json", &url]);
    blocker.join().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let open = summary(&out);
    assert_eq!(open["model"], "open");
    assert_eq!(open["sent"], 100, "{open:#}");
    assert_eq!(open["ok"], 100, "{open:#}");
    assert!(num(&open, "/latency_ms/p99") >= 700.0, "{open:#}");
    // Requests meant for the stall's start waited nearly all of it; a tenth at least did.
    assert!(num(&open, "/latency_ms/p90") >= 300.0, "{open:#}");

    // Closed model, same stall: the two clients wait once, then everything is fast. The stall
    // shows only in the max; the percentiles hide it (coordinated omission).
    let blocker = block(&w, 1000);
    let out = run(&["-c", "2", "-d", "2s", "--json", &url]);
    blocker.join().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let closed = summary(&out);
    assert!(num(&closed, "/latency_ms/max") >= 700.0, "{closed:#}");
    assert!(num(&closed, "/latency_ms/p50") < 100.0, "{closed:#}");
    assert!(
        num(&closed, "/latency_ms/p50") < num(&open, "/latency_ms/p90"),
        "open {open:#}\nclosed {closed:#}"
    );
}

#[test]
fn an_unreachable_target_ends_with_error_kinds_not_a_panic() {
    let _machine = loopscope_tests::machine::shared();
    let url = closed_port_url();
    let out = run(&["-c", "2", "-n", "10", "--json", &url]);
    assert!(!out.status.success());
    let s = summary(&out);
    assert_eq!(s["sent"], 10, "{s:#}");
    assert_eq!(s["ok"], 0, "{s:#}");
    assert_eq!(s["errors"], 10, "{s:#}");
    assert_eq!(s["error_kinds"]["connect_refused"], 10, "{s:#}");
    let err = stderr(&out);
    assert!(
        err.contains("every request failed") && err.contains("connect_refused"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    // The open model too, and the table names the kind.
    let out = run(&["--rate", "100", "-d", "300ms", "--quiet", &url]);
    assert!(!out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("connect_refused"), "{table}");
    assert!(!stderr(&out).contains("panicked"));

    // A status flood: every answer a 503, named as such.
    let w = worker();
    let out = run(&["-n", "5", "--json", &w.url("/fault/status/503")]);
    assert!(!out.status.success());
    let s = summary(&out);
    assert_eq!(s["error_kinds"]["status_503"], 5, "{s:#}");
    assert_eq!(s["statuses"]["503"], 5, "{s:#}");
}

#[test]
fn bad_flags_fail_naming_the_flag() {
    let _machine = loopscope_tests::machine::shared();
    for (args, needle) in [
        (&["--rate", "0", "http://127.0.0.1:1/"][..], "--rate"),
        (&["-c", "0", "http://127.0.0.1:1/"][..], "--concurrency"),
        (&["-n", "0", "http://127.0.0.1:1/"][..], "--requests"),
        (&["notaurl"][..], "notaurl"),
        (&["ftp://127.0.0.1/x"][..], "ftp://127.0.0.1/x"),
        (&["-d", "5x", "http://127.0.0.1:1/"][..], "--duration"),
        (&["--timeout", "0s", "http://127.0.0.1:1/"][..], "--timeout"),
    ] {
        let out = run(args);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(
            err.contains(needle),
            "{args:?}: stderr does not name {needle}:\n{err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: no summary for bad flags");
    }
    for (args, needle) in [
        (&["--mix", "x"][..], "--mix"),
        (&["--mix", "0:/api/compare"][..], "--mix"),
        (&["--rate", "0"][..], "--rate"),
        (&["--gateway-url", "nope"][..], "--gateway-url"),
    ] {
        let out = loadgen().arg("serve").args(args).output().expect("run");
        let err = stderr(&out);
        assert!(!out.status.success(), "serve {args:?} should fail");
        assert!(
            err.contains(needle),
            "serve {args:?}: stderr does not name {needle}:\n{err}"
        );
    }
}

#[test]
fn ctrl_c_prints_the_partial_summary_and_exits_130() {
    let _machine = loopscope_tests::machine::shared();
    let w = worker();
    let child = loadgen()
        .args(["run", "--rate", "20", "-d", "60s", "--json"])
        .arg(w.url("/work/io?ms=1"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start loadgen");
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let s = summary(&out);
    assert_eq!(s["interrupted"], true, "{s:#}");
    assert!(num(&s, "/sent") >= 10.0, "{s:#}");
    assert!(num(&s, "/ok") >= 10.0, "{s:#}");
    assert!(num(&s, "/elapsed_s") < 30.0, "{s:#}");
}

#[test]
fn serve_sends_mixed_traffic_and_exports_client_metrics() {
    let _machine = loopscope_tests::machine::shared();
    let s = Stack::small();
    let mut serve = loopscope_tests::start_loadgen_serve(&[
        "--workers",
        "1",
        "--gateway-url",
        &s.gateway.base_url(),
        "--rate",
        "20",
    ]);
    let ok = |page: &str, handling: &str| {
        sample(
            page,
            "loopscope_client_requests_total",
            &[("handling", handling), ("outcome", "ok")],
        )
        .unwrap_or(0.0)
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    let page = loop {
        std::thread::sleep(Duration::from_millis(500));
        let page = serve.metrics();
        if ok(&page, "async") > 0.0 && ok(&page, "threadpool") > 0.0 {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "no ok requests for both handlings:\n{page}"
        );
    };
    assert!(
        sample(
            &page,
            "loopscope_client_requests_total",
            &[
                ("target", "/api/async/work/io"),
                ("handling", "async"),
                ("outcome", "ok"),
                ("service", "loadgen"),
            ],
        )
        .is_some(),
        "{page}"
    );
    assert!(
        sample(
            &page,
            "loopscope_client_request_duration_seconds_bucket",
            &[("target", "/api/threadpool/work/io"), ("le", "0.0005")],
        )
        .is_some(),
        "the duration histogram has the shared buckets:\n{page}"
    );
    assert!(
        !page.contains("outcome=\"unreachable\""),
        "the stack is up, nothing is unreachable:\n{page}"
    );

    // SIGTERM: the traffic stops, the process drains and exits 0.
    serve.signal(libc::SIGTERM);
    let status = serve
        .wait_exit(Duration::from_secs(15))
        .expect("loadgen serve exits");
    assert!(status.success(), "{status:?}");
}

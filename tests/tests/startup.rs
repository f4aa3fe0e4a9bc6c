//! Bad settings fail fast with a message naming the setting; good ones start.
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn fails_naming(bin: &str, args: &[&str], needle: &str) {
    let mut child = Command::new(loopscope_tests::bin(bin))
        .args(args)
        .env_remove("SENTRY_DSN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run");
    // A setting that is wrongly accepted starts a server: fail instead of waiting forever.
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{bin} {args:?} was accepted and kept running; it should fail naming {needle}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{bin} {args:?} should fail");
    assert!(
        stderr.contains(needle),
        "{bin} {args:?}: stderr does not name {needle}:\n{stderr}"
    );
}

#[test]
fn bad_settings_fail_fast_naming_the_setting() {
    let _machine = loopscope_tests::machine::shared();
    fails_naming("worker", &[], "--handling");
    fails_naming("worker", &["--handling", "gevent"], "--handling");
    fails_naming(
        "worker",
        &["--handling", "async", "--workers", "0"],
        "--workers",
    );
    fails_naming(
        "worker",
        &["--handling", "async", "--stall-threshold-ms", "x"],
        "--stall-threshold-ms",
    );
    fails_naming(
        "worker",
        &["--handling", "async", "--sentry-dsn", "not a dsn"],
        "--sentry-dsn",
    );
    fails_naming(
        "worker",
        &["--handling", "async", "--sentry-traces-sample-rate", "2"],
        "--sentry-traces-sample-rate",
    );
    fails_naming(
        "worker",
        &[
            "--handling",
            "async",
            "--port",
            "0",
            "--admin-port",
            "0",
            "--backend-url",
            "ftp://x",
        ],
        "--backend-url",
    );
    fails_naming(
        "worker",
        &["--handling", "async", "--metrics-exposition", "bogus"],
        "--metrics-exposition",
    );
    fails_naming("backend", &["--error-rate", "1.5"], "--error-rate");
    fails_naming(
        "backend",
        &["--port", "0", "--admin-port", "0", "--latency-ms", "70000"],
        "--latency-ms",
    );
    fails_naming(
        "gateway",
        &[
            "--port",
            "0",
            "--admin-port",
            "0",
            "--worker-async-url",
            "nope",
        ],
        "--worker-async-url",
    );
    fails_naming("gateway", &["--max-fanout", "0"], "--max-fanout");
}

#[test]
fn a_port_in_use_is_named_with_what_to_do() {
    let _machine = loopscope_tests::machine::shared();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    fails_naming("backend", &["--port", &port, "--admin-port", "0"], "--port");
}

#[test]
fn help_lists_every_setting_with_its_env_var() {
    let _machine = loopscope_tests::machine::shared();
    let out = Command::new(loopscope_tests::bin("worker"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--handling",
        "LOOPSCOPE_HANDLING",
        "--blocking-threads",
        "SENTRY_DSN",
        "--metrics-exposition",
    ] {
        assert!(help.contains(needle), "worker --help lacks {needle}");
    }
}

#[test]
fn an_empty_sentry_dsn_means_sentry_off() {
    let _machine = loopscope_tests::machine::shared();
    let svc =
        loopscope_tests::start_with_env("backend", &["--workers", "1"], &[("SENTRY_DSN", "")]);
    assert_eq!(svc.get("/query?ms=1").0, 200);
}

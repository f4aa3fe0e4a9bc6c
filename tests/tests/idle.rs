//! An idle service sleeps: once its requests are answered, logged and sent to Sentry, the
//! threads that did it wait for the next piece of work instead of looking for one every few
//! milliseconds. Wake-ups of an idle process are CPU, power and noise for its neighbours on
//! a node, paid by every replica of every service, all day.
//!
//! What still ticks, on purpose: the stall watchdog (every quarter of the capture threshold
//! while no poll runs, every 10 ms while one does) and the lag probe's timer on each event
//! loop (its interval).
use std::collections::BTreeMap;
use std::time::Duration;

use loopscope_tests::spotlight::Spotlight;
use loopscope_tests::{reporting_to, start, wait_for_log};

/// Voluntary context switches (the thread went to sleep) by thread, keyed `name/tid`.
fn sleeps_by_thread(pid: i32) -> BTreeMap<String, u64> {
    let mut sleeps = BTreeMap::new();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the worker's threads");
    for task in tasks.flatten() {
        let dir = task.path();
        let (Ok(name), Ok(status)) = (
            std::fs::read_to_string(dir.join("comm")),
            std::fs::read_to_string(dir.join("status")),
        ) else {
            continue; // the thread ended meanwhile
        };
        let switches = status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("voluntary_ctxt_switches in /proc/<pid>/task/<tid>/status");
        let tid = task.file_name().to_string_lossy().into_owned();
        sleeps.insert(format!("{}/{tid}", name.trim()), switches);
    }
    sleeps
}

#[test]
fn an_idle_worker_s_log_sentry_and_stall_report_threads_sleep_until_there_is_work() {
    let _machine = loopscope_tests::machine::shared();
    let spotlight = Spotlight::start();
    let dsn = spotlight.dsn();
    let svc = start(
        "worker",
        &reporting_to(&dsn, "1", &["--handling", "async", "--workers", "1"]),
    );
    // Work for both: an access line to write, a transaction to send.
    assert_eq!(svc.get("/work/cpu?ms=0").0, 200);
    spotlight.wait_for("the transaction", Duration::from_secs(10), |t| {
        t["type"] == "transaction"
    });
    // Start-up work done: symbols loaded (each logs a line when ready).
    wait_for_log(&svc, "panic reporter ready");
    wait_for_log(&svc, "stall capture ready");
    // Past the quiet spell after which the log and Sentry threads sleep (100 ms).
    std::thread::sleep(Duration::from_millis(400));

    let before = sleeps_by_thread(svc.pid());
    let window = Duration::from_secs(2);
    std::thread::sleep(window);
    let after = sleeps_by_thread(svc.pid());

    let woke: BTreeMap<&String, u64> = after
        .iter()
        .filter_map(|(thread, n)| Some((thread, n - before.get(thread)?)))
        .collect();
    // comm is cut to 15 bytes: "loopscope-sentr" is the sender, the panic reporter and the
    // closer; "loopscope-stall" the stall reporter and the watchdog (which ticks).
    let named = |prefix: &str| -> Vec<u64> {
        woke.iter()
            .filter(|(thread, _)| thread.starts_with(prefix))
            .map(|(_, n)| *n)
            .collect()
    };
    let (log, sentry, stall) = (
        named("loopscope-log/"),
        named("loopscope-sentr/"),
        named("loopscope-stall/"),
    );
    assert!(
        log.len() == 1 && !sentry.is_empty() && stall.len() == 2,
        "the log, Sentry and stall threads were not all found: {woke:?}"
    );
    // The sender looks at the client report it may owe once a second.
    let limit = 2 * window.as_secs() + 1;
    assert!(
        log[0] <= limit && sentry.iter().all(|&n| n <= limit),
        "idle for {window:?}, the log or a Sentry thread woke more than {limit} times: {woke:?}"
    );
    // The reporter sleeps; the watchdog looks every 25 ms (the default threshold's quarter).
    let (reporter, watchdog) = (stall.iter().min(), stall.iter().max());
    assert!(
        reporter.is_some_and(|&n| n <= limit),
        "idle for {window:?}, the stall reporter woke more than {limit} times: {woke:?}"
    );
    assert!(
        watchdog.is_some_and(|&n| n <= 60 * window.as_secs()),
        "the watchdog looked more often than every quarter of the threshold: {woke:?}"
    );
}

//! An idle service sleeps: once its requests are answered, logged and sent to Sentry, the
//! threads that did it wait for the next piece of work instead of looking for one every few
//! milliseconds. Wake-ups of an idle process are CPU, power and noise for its neighbours on
//! a node, paid by every replica of every service, all day.
//!
//! What still ticks, on purpose: the stall watchdog (every 10 ms, to take a stack within
//! 10 ms of the capture threshold), the stall reporter and the lag probe (their intervals).
use std::collections::BTreeMap;
use std::time::Duration;

use loopscope_tests::spotlight::Spotlight;
use loopscope_tests::start;

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
fn an_idle_worker_s_log_and_sentry_threads_sleep_until_there_is_work() {
    let _machine = loopscope_tests::machine::shared();
    let spotlight = Spotlight::start();
    let dsn = spotlight.dsn();
    let svc = start(
        "worker",
        &[
            "--handling",
            "async",
            "--workers",
            "1",
            "--sentry-dsn",
            &dsn,
            "--sentry-traces-sample-rate",
            "1",
        ],
    );
    // Work for both: an access line to write, a transaction to send.
    assert_eq!(svc.get("/work/cpu?ms=0").0, 200);
    spotlight.wait_for("the transaction", Duration::from_secs(10), |t| {
        t["type"] == "transaction"
    });
    std::thread::sleep(Duration::from_millis(300));

    let before = sleeps_by_thread(svc.pid());
    let window = Duration::from_secs(2);
    std::thread::sleep(window);
    let after = sleeps_by_thread(svc.pid());

    // comm is cut to 15 bytes: "loopscope-sentr" is the sender, the panic reporter and the
    // closer; "loopscope-log" the log thread.
    let watched =
        |name: &str| name.starts_with("loopscope-log") || name.starts_with("loopscope-sentr");
    let woke: BTreeMap<&String, u64> = after
        .iter()
        .filter_map(|(thread, n)| Some((thread, n - before.get(thread)?)))
        .collect();
    let watched_threads: Vec<_> = woke.keys().filter(|t| watched(t)).collect();
    assert!(
        watched_threads.len() >= 2,
        "the log and Sentry threads were not found: {woke:?}"
    );
    // The sender looks at the client report it may owe once a second.
    let limit = 2 * window.as_secs() + 1;
    let restless: Vec<_> = woke
        .iter()
        .filter(|(thread, n)| watched(thread) && **n > limit)
        .collect();
    assert!(
        restless.is_empty(),
        "idle for {window:?}, these threads woke more than {limit} times: {restless:?} (all: {woke:?})"
    );
}

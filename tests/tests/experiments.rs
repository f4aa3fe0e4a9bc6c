//! loadgen's experiments 1 to 3 against the real binaries: the seeds' results, with the
//! verdicts' own tolerances (ratios and orderings, which hold on a busy 2-core machine).
use std::process::{Command, Output};

use loopscope_tests::stack::{Stack, StackArgs};
use loopscope_tests::{Service, bin, closed_port_url};
use serde_json::Value;

fn stack() -> Stack {
    Stack::start(StackArgs {
        backend: &["--workers", "1"],
        worker: &["--workers", "2", "--metrics-exposition", "both"],
        gateway: &["--workers", "1"],
    })
}

fn experiment(stack: &Stack, args: &[&str]) -> Output {
    let admin = |s: &Service| format!("http://{}", s.admin.unwrap());
    Command::new(bin("loadgen"))
        .arg("experiment")
        .args(args)
        .args(["--gateway-url", &stack.gateway.base_url()])
        .args(["--worker-async-url", &stack.worker_async.base_url()])
        .args([
            "--worker-threadpool-url",
            &stack.worker_threadpool.base_url(),
        ])
        .args(["--worker-async-admin-url", &admin(&stack.worker_async)])
        .args([
            "--worker-threadpool-admin-url",
            &admin(&stack.worker_threadpool),
        ])
        .output()
        .expect("run loadgen")
}

fn outcome(out: &Output) -> Value {
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    report["experiments"][0].clone()
}

fn assert_passed(o: &Value) {
    let failed: Vec<_> = o["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["pass"] != true)
        .collect();
    assert!(
        o["passed"] == true && failed.is_empty(),
        "{} failed: {failed:#?}",
        o["name"]
    );
}

#[test]
fn experiments_1_to_3_reproduce_the_seeds() {
    // Loads a stack and judges latency ratios and orderings.
    let _machine = loopscope_tests::machine::exclusive();
    let stack = stack();

    let out = experiment(&stack, &["blocking", "--quick", "--json"]);
    let blocking = outcome(&out);
    assert_passed(&blocking);
    assert!(out.status.success());
    let scenarios = blocking["data"]["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 3);
    for sc in scenarios {
        let requests = sc["requests"].as_array().unwrap();
        assert_eq!(requests.len(), 10);
        assert!(
            requests
                .iter()
                .all(|r| r["thread"].is_string() && r["thread_id"].as_i64() > Some(0))
        );
    }
    // Threadpool: the work ran on more than one thread; async: only on the event loops.
    let threads = |sc: &Value| {
        sc["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["thread_id"].as_i64())
            .collect::<std::collections::HashSet<_>>()
            .len()
    };
    assert!(
        threads(&scenarios[0]) > 2,
        "threadpool spreads over pool threads"
    );
    assert!(
        threads(&scenarios[1]) <= 2,
        "async stays on its 2 event loops"
    );
    // The worker caught the blocking call in the act; nothing blocked in the other two.
    let culprit = &scenarios[1]["culprit"];
    assert_eq!(culprit["route"], "/work/block", "{culprit:#}");
    assert_eq!(culprit["classification"], "sleep", "{culprit:#}");
    assert!(
        culprit["frames"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["in_app"] == true
                && f["function"].as_str().unwrap().starts_with("worker::work")),
        "{culprit:#}"
    );
    assert!(scenarios[0].get("culprit").is_none() && scenarios[2].get("culprit").is_none());

    let sequential = outcome(&experiment(&stack, &["sequential", "--json"]));
    assert_passed(&sequential);

    let pool = outcome(&experiment(&stack, &["pool", "--json"]));
    assert_passed(&pool);
    let bars = pool["data"]["bars"].as_array().unwrap();
    let measured = |label: &str| {
        bars.iter().find(|b| b["label"] == label).unwrap()["measured"]
            .as_f64()
            .unwrap()
    };
    assert!(
        measured("sequential") > measured("pool of 5")
            && measured("pool of 5") > measured("pool of 30")
    );
}

#[test]
fn an_unreachable_stack_is_named_with_what_to_do() {
    let _machine = loopscope_tests::machine::shared();
    let out = Command::new(bin("loadgen"))
        .args(["experiment", "pool", "--gateway-url", &closed_port_url()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("not answering") && stderr.contains("make up"),
        "{stderr}"
    );
}

#[test]
fn bad_experiment_flags_are_refused() {
    let _machine = loopscope_tests::machine::shared();
    for args in [
        &["experiment", "teleport"][..],
        &["experiment"],
        &["experiment", "all", "--report"],
    ] {
        let out = Command::new(bin("loadgen")).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
}

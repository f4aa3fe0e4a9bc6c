//! The reply types write exactly the bytes the `json!` bodies they replaced wrote: the same
//! names, values, key order (`json!` sorted its keys), `null` where it wrote `null` and no
//! key where it wrote none. Each expected body below is built as the producer built it
//! before.
// Test code unwraps on purpose: a bad answer should fail the test loudly.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use crate::{
    BackendReport, Compare, CompareSide, Distribution, ErrorBody, FanoutCall, FanoutMode,
    FanoutSummary, FaultStatus, Handling, Kind, Probe, ProbeStatus,
};

fn same_bytes(typed: &impl serde::Serialize, before: &Value) {
    assert_eq!(
        serde_json::to_string(typed).unwrap(),
        serde_json::to_string(before).unwrap()
    );
}

fn backend() -> BackendReport {
    BackendReport {
        dist: Distribution::Lognormal,
        error: None,
        finished_at: "2026-11-30T20:00:00.130Z".to_owned(),
        latency_ms: 129.731,
        median_ms: 100,
        message: None,
        pid: 42,
        service: "backend".to_owned(),
        started_at: "2026-11-30T20:00:00.000Z".to_owned(),
    }
}

#[test]
fn the_backend_report_and_its_failure_on_purpose() {
    let mut before = json!({
        "service": "backend",
        "latency_ms": 129.731,
        "median_ms": 100,
        "dist": Distribution::Lognormal,
        "pid": 42,
        "started_at": "2026-11-30T20:00:00.000Z",
        "finished_at": "2026-11-30T20:00:00.130Z",
    });
    same_bytes(&backend(), &before);
    before["error"] = json!("injected_error");
    before["message"] = json!("failed on purpose (error_rate 1)");
    let failed = BackendReport {
        error: Some("injected_error".to_owned()),
        message: Some("failed on purpose (error_rate 1)".to_owned()),
        ..backend()
    };
    same_bytes(&failed, &before);
}

#[test]
fn the_comparison_and_its_sides() {
    let work = json!({"service": "worker", "queued_ms": 0, "service_ms": 12.5});
    let error = json!({"error": "upstream_timeout", "message": "m", "request_id": "r"});
    let before = json!({
        "kind": Kind::Io,
        "path": "/work/io?ms=5",
        "elapsed_ms": 13.25,
        "async": {"status": 200, "elapsed_ms": 13.0, "result": work},
        "threadpool": {"status": 504, "elapsed_ms": 13.25, "result": error},
    });
    let typed = Compare {
        async_side: CompareSide {
            elapsed_ms: 13.0,
            result: work.clone(),
            status: 200,
        },
        elapsed_ms: 13.25,
        kind: Kind::Io,
        path: "/work/io?ms=5".to_owned(),
        threadpool: CompareSide {
            elapsed_ms: 13.25,
            result: error,
            status: 504,
        },
    };
    same_bytes(&typed, &before);
    // The worker's body is passed on as sent: an integer 0 stays `0`, not `0.0`.
    assert!(
        serde_json::to_string(&typed)
            .unwrap()
            .contains(r#""queued_ms":0,"#)
    );
}

#[test]
fn the_fanout_summary_with_and_without_a_limit() {
    let calls = vec![
        FanoutCall {
            elapsed_ms: 100.5,
            error: None,
            index: 0,
            sent_at_ms: Some(0.01),
            status: Some(200),
            thread_id: Some(140_213),
        },
        FanoutCall {
            elapsed_ms: 1000.0,
            error: Some("not finished within the fan-out deadline of 1000 ms".to_owned()),
            index: 1,
            sent_at_ms: None,
            status: None,
            thread_id: None,
        },
    ];
    // The calls were a struct of their own, turned into a map (sorted) by `json!`.
    let calls_before = json!([
        {"index": 0, "sent_at_ms": 0.01, "elapsed_ms": 100.5, "status": 200, "thread_id": 140_213},
        {"index": 1, "elapsed_ms": 1000.0,
         "error": "not finished within the fan-out deadline of 1000 ms"},
    ]);
    for (mode, limit) in [
        (FanoutMode::Concurrent, None),
        (FanoutMode::Limited, Some(5)),
    ] {
        let before = json!({
            "mode": mode,
            "n": 2,
            "limit": limit,
            "handling": Handling::Threadpool,
            "path": "/work/io?ms=100",
            "elapsed_ms": 1000.2,
            "ok": 1,
            "failed": 1,
            "calls": calls_before,
        });
        let typed = FanoutSummary {
            calls: calls.clone(),
            elapsed_ms: 1000.2,
            failed: 1,
            handling: Handling::Threadpool,
            limit,
            mode,
            n: 2,
            ok: 1,
            path: "/work/io?ms=100".to_owned(),
        };
        same_bytes(&typed, &before);
    }
    // `limit` is written as null when there is none, not left out.
    let json = serde_json::to_string(&FanoutSummary {
        calls: vec![],
        elapsed_ms: 0.0,
        failed: 0,
        handling: Handling::Async,
        limit: None,
        mode: FanoutMode::Sequential,
        n: 0,
        ok: 0,
        path: String::new(),
    })
    .unwrap();
    assert!(json.contains(r#""limit":null"#), "{json}");
}

#[test]
fn the_error_body_leaves_out_what_it_does_not_have() {
    let body = ErrorBody {
        error: "bad_request".to_owned(),
        message: "ms must be a whole number".to_owned(),
        param: Some("ms".to_owned()),
        request_id: Some("abc".to_owned()),
        details: None,
    };
    assert_eq!(
        serde_json::to_string(&body).unwrap(),
        r#"{"error":"bad_request","message":"ms must be a whole number","param":"ms","request_id":"abc"}"#
    );
    let bare = ErrorBody {
        error: "stall_detection_off".to_owned(),
        message: "off".to_owned(),
        param: None,
        request_id: None,
        details: Some(json!({"failed": 1})),
    };
    assert_eq!(
        serde_json::to_string(&bare).unwrap(),
        r#"{"error":"stall_detection_off","message":"off","details":{"failed":1}}"#
    );
}

#[test]
fn the_probes_and_the_fault_status() {
    for (status, name) in [
        (ProbeStatus::Ok, "ok"),
        (ProbeStatus::Ready, "ready"),
        (ProbeStatus::Draining, "draining"),
    ] {
        same_bytes(&Probe::new(status), &json!({"status": name}));
    }
    let message = "the app port did not answer /healthz within 1000 ms".to_owned();
    same_bytes(
        &Probe {
            message: Some(message.clone()),
            status: ProbeStatus::Unresponsive,
        },
        &json!({"status": "unresponsive", "message": message}),
    );
    same_bytes(&FaultStatus { status: 418 }, &json!({"status": 418}));
}

#[test]
fn a_body_with_a_field_the_type_lacks_is_refused() {
    // The negative control for the tests that read replies as these types: a producer
    // that adds a field without adding it here fails them instead of passing silently.
    let mut body = serde_json::to_value(backend()).unwrap();
    assert!(serde_json::from_value::<BackendReport>(body.clone()).is_ok());
    body["surprise"] = json!(1);
    assert!(serde_json::from_value::<BackendReport>(body).is_err());
    let probe = json!({"status": "ready", "extra": true});
    assert!(serde_json::from_value::<Probe>(probe).is_err());
    let error = json!({"error": "x", "message": "y", "code": 3});
    assert!(serde_json::from_value::<ErrorBody>(error).is_err());
}

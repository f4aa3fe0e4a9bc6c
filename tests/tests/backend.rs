//! The backend's latency and error injection, set at start and per request.
use contract::{BackendReport, Distribution};
use loopscope_tests::{assert_bad_request, start};

#[test]
fn latency_and_errors_follow_settings_and_per_request_overrides() {
    let _machine = loopscope_tests::machine::shared();
    let svc = start("backend", &["--latency-ms", "30", "--workers", "1"]);
    let (status, body): (_, BackendReport) = svc.get_as("/query");
    assert_eq!(status, 200, "{body:?}");
    assert_eq!(body.median_ms, 30);
    assert_eq!(body.latency_ms, 30.0);
    assert_eq!(body.dist, Distribution::Fixed);
    assert_eq!((body.service.as_str(), body.error), ("backend", None));

    let (_, body): (_, BackendReport) = svc.get_as("/query?ms=80&dist=uniform&spread=0.25");
    assert!((60.0..=100.0).contains(&body.latency_ms), "{body:?}");

    // A failure on purpose: the report, and why.
    let (status, body): (_, BackendReport) = svc.get_as("/query?ms=1&error_rate=1");
    assert_eq!(
        (status, body.error.as_deref()),
        (503, Some("injected_error")),
        "{body:?}"
    );
    assert!(body.message.is_some_and(|m| m.contains("error_rate")));
    assert_eq!(svc.get("/query?ms=1&error_rate=0").0, 200);

    assert_bad_request(&svc, "/query?ms=-1", "ms");
    assert_bad_request(&svc, "/query?error_rate=2", "error_rate");
    assert_bad_request(&svc, "/query?dist=pareto", "dist");
    assert_bad_request(&svc, "/query?spread=x", "spread");
}

#[test]
fn errors_set_at_start_apply_to_every_query() {
    let _machine = loopscope_tests::machine::shared();
    let svc = start(
        "backend",
        &["--latency-ms", "1", "--error-rate", "1", "--workers", "1"],
    );
    assert_eq!(svc.get("/query").0, 503);
}

//! A registry filled like `make bench`'s scrape section leaves a worker: every route, several
//! statuses, 2 event loops, the stall series at zero, upstream calls. Shared by the exposition
//! tests and the render-cost measurement.
use std::time::Duration;

use actix_web::http::{Method, StatusCode};
use opentelemetry::KeyValue;

use super::names::*;
use super::{Instruments, Telemetry};

pub(super) const ROUTES: &[&str] = &[
    "/fault/error",
    "/fault/panic",
    "/fault/status/{code}",
    "/work/block",
    "/work/call",
    "/work/cpu",
    "/work/io",
    "/metrics",
];
const WORKERS: &[&str] = &["0", "1"];
const CLASSIFICATIONS: &[&str] = &["cpu", "sleep", "lock", "io", "starved", "unknown"];
const OUTCOMES: &[&str] = &["captured", "unsupported", "failed", "rate_limited"];
const STATUSES: &[u16] = &[
    200, 201, 204, 301, 302, 304, 400, 401, 403, 404, 409, 418, 422, 429, 500, 501, 502, 503, 504,
];

pub(super) fn service() -> crate::ServiceInfo {
    crate::ServiceInfo {
        name: "worker",
        handling: Some("async"),
        default_port: 0,
        default_admin_port: 0,
    }
}

/// A telemetry with every family of a worker after the bench's exercise.
pub(super) fn filled() -> Telemetry {
    let t = Telemetry::new(&service()).expect("a registry");
    let http = &t.http;
    let ms = |v: f64| v / 1e3;
    for round in 0..4 {
        let r = f64::from(round);
        for (route, status) in [
            ("/work/io", 200),
            ("/work/cpu", 200),
            ("/work/block", 200),
            ("/work/call", 200),
            ("/work/call", 502),
            ("/fault/error", 500),
            ("/fault/panic", 500),
            ("/work/io", 400),
            ("UNMATCHED", 404),
            ("/work/io", 405),
        ] {
            let status = StatusCode::from_u16(status).expect("a status");
            http.observe_for_test(route, &Method::GET, status, ms(1.3 + r));
        }
        for &code in STATUSES {
            let status = StatusCode::from_u16(code).expect("a status");
            http.observe_for_test("/fault/status/{code}", &Method::GET, status, ms(0.4 + r));
        }
        http.observe_for_test(
            "/work/io",
            &Method::POST,
            StatusCode::METHOD_NOT_ALLOWED,
            2e-4,
        );
    }
    fill_instruments(&t.instruments);
    t
}

/// The OpenTelemetry instruments' part of [`filled`].
pub(super) fn fill_instruments(i: &Instruments) {
    for kind in ["io", "cpu", "block", "call"] {
        i.record_work(kind, Duration::from_micros(1_100));
    }
    for worker in WORKERS {
        let by_worker = [KeyValue::new(LABEL_WORKER, worker.to_string())];
        i.event_loop_lag.record(0.0011, &by_worker);
        i.event_loop_lag.record(0.0023, &by_worker);
    }
    i.upstream_duration
        .record(0.0015, &[KeyValue::new(LABEL_UPSTREAM, "backend")]);
    i.upstream_requests.add(
        4,
        &[
            KeyValue::new(LABEL_UPSTREAM, "backend"),
            KeyValue::new(LABEL_OUTCOME, "ok"),
        ],
    );
    i.http_in_flight.series().add(1);
    i.server_workers.record(2, &[]);
    i.blocking_threads_max.record(80, &[]);
    i.layers([("sentry".to_owned(), false), ("stall".to_owned(), false)]);
    for route in ROUTES {
        for worker in WORKERS {
            let by_worker = [
                KeyValue::new(LABEL_ENDPOINT, route.to_string()),
                KeyValue::new(LABEL_WORKER, worker.to_string()),
            ];
            i.blocked_polls.add(0, &by_worker);
            i.blocked_seconds.add(0.0, &by_worker);
            for c in CLASSIFICATIONS {
                let mut labels = by_worker.to_vec();
                labels.push(KeyValue::new(LABEL_CLASSIFICATION, *c));
                i.stalls.add(0, &labels);
            }
        }
        for o in OUTCOMES {
            i.stall_captures.add(
                0,
                &[
                    KeyValue::new(LABEL_ENDPOINT, route.to_string()),
                    KeyValue::new(LABEL_OUTCOME, *o),
                ],
            );
        }
        let culprit = [KeyValue::new(LABEL_CULPRIT, route.to_string())];
        i.delayed_requests.add(0, &culprit);
        i.delayed_seconds.add(0.0, &culprit);
    }
}

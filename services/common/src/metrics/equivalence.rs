//! The scrape's own text against what it replaced: the `prometheus` crate's `TextEncoder` over
//! its vecs and the opentelemetry-prometheus exporter, fed the same observations, must write
//! the same bytes. Names, labels, label order, HELP, TYPE, `le` values and numbers: everything
//! dashboards, alert rules and Prometheus itself read. And the filled registry's page passes
//! `promtool check metrics`.
use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};

use actix_web::http::{Method, StatusCode};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use prometheus::{Encoder, TextEncoder};

use super::instruments::{IN_FLIGHT_HELP, KEYED, WORK_DURATION_HELP};
use super::names::{
    HTTP_IN_FLIGHT, HTTP_REQUESTS, HTTP_REQUESTS_DURATION, LABEL_KIND, LATENCY_BUCKETS,
    WORK_DURATION,
};
use super::per_request::{StaticLabelHistogram, UnlabelledGauge};
use super::{
    Counter, FloatCounter, HttpMetrics, Instruments, KeyedCounter, Registry, fixture, otel,
};

/// One registry label only: `prometheus` writes several in its `HashMap`'s order.
const LABELS: &[(&str, &str)] = &[("service", "worker")];

fn reference_registry() -> prometheus::Registry {
    let labels = LABELS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect::<HashMap<_, _>>();
    prometheus::Registry::new_custom(None, Some(labels)).expect("a registry")
}

/// The opentelemetry-prometheus exporter as the services had it, writing into `reference`.
fn exporter(reference: &prometheus::Registry) -> opentelemetry_prometheus::PrometheusExporter {
    opentelemetry_prometheus::exporter()
        .with_registry(reference.clone())
        .without_target_info()
        .scope_info_enabled(false)
        .build()
        .expect("an exporter")
}

/// Both sides of a comparison of families fed the OpenTelemetry way: a reference registry
/// the exporter writes into, the provider whose meter feeds it, and our registry.
fn exporter_and_ours() -> (prometheus::Registry, SdkMeterProvider, Registry) {
    let reference = reference_registry();
    let provider = SdkMeterProvider::builder()
        .with_reader(exporter(&reference))
        .build();
    (
        reference,
        provider,
        Registry::new(LABELS, otel::Reader::default()),
    )
}

fn encode(registry: &prometheus::Registry) -> String {
    let mut buf = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut buf)
        .expect("encodes");
    String::from_utf8(buf).expect("utf-8")
}

/// The page less the families of these name prefixes, which only one side has.
fn without(page: &str, prefixes: &[String]) -> String {
    page.lines()
        .filter(|l| {
            let name = l
                .strip_prefix("# HELP ")
                .or_else(|| l.strip_prefix("# TYPE "))
                .unwrap_or(l);
            let name = name.split(['{', ' ']).next().unwrap_or_default();
            !prefixes.iter().any(|p| name.starts_with(p.as_str()))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The page less the process collector's families.
fn without_process(page: &str) -> String {
    without(page, &["process_".to_owned()])
}

/// The exported names of the stall counters and the per-request instruments, our own
/// families now.
fn keyed_names() -> Vec<String> {
    KEYED
        .iter()
        .map(|s| otel::prometheus_name(s.name, s.unit, true))
        .chain([
            otel::prometheus_name(HTTP_IN_FLIGHT, "", false),
            otel::prometheus_name(WORK_DURATION, "s", false),
        ])
        .collect()
}

#[test]
fn http_families_write_what_prometheus_wrote() {
    let reference = reference_registry();
    let labels = &["endpoint", "method", "status"];
    let requests = prometheus::IntCounterVec::new(
        prometheus::Opts::new(HTTP_REQUESTS, "Total number of HTTP requests"),
        labels,
    )
    .expect("a vec");
    let duration = prometheus::HistogramVec::new(
        prometheus::HistogramOpts::new(
            HTTP_REQUESTS_DURATION,
            "HTTP request duration in seconds for all requests",
        )
        .buckets(LATENCY_BUCKETS.to_vec()),
        labels,
    )
    .expect("a vec");
    reference
        .register(Box::new(requests.clone()))
        .expect("registers");
    reference
        .register(Box::new(duration.clone()))
        .expect("registers");

    let ours = Registry::new(LABELS, otel::Reader::default());
    let http = HttpMetrics::new(&ours).expect("registers");
    // Values on and between bucket bounds, below the first and above the last, odd labels.
    let cases = [
        ("/work/io", Method::GET, 200, 0.0005),
        ("/work/io", Method::GET, 200, 0.000_501),
        ("/work/io", Method::GET, 200, 0.0),
        ("/work/io", Method::POST, 405, 0.2),
        ("/work/cpu", Method::GET, 200, 31.0),
        ("/fault/status/{code}", Method::GET, 599, 1.0),
        (
            "UNMATCHED",
            Method::from_bytes(b"FOO").expect("a token"),
            404,
            0.0123,
        ),
        ("/a\"b\\c\nd", Method::GET, 500, 0.07),
    ];
    for (endpoint, method, status, seconds) in cases {
        let status = StatusCode::from_u16(status).expect("a status");
        http.observe_for_test(endpoint, &method, status, seconds);
        let method = super::http::method_label(&method);
        let status_label = super::http::status_label(status);
        requests
            .with_label_values(&[endpoint, method, &status_label])
            .inc();
        duration
            .with_label_values(&[endpoint, method, super::http::status_class(status)])
            .observe(seconds);
    }
    assert_eq!(without_process(&ours.render()), encode(&reference));
}

#[test]
fn otel_families_write_what_the_exporter_wrote() {
    let reference = reference_registry();
    let reader = otel::Reader::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(exporter(&reference))
        .with_reader(reader.clone())
        .build();
    let ours = Registry::new(LABELS, reader);
    let instruments = Instruments::new(&provider, &ours).expect("registers");
    instruments.build_info();
    fixture::fill_instruments(&instruments);
    // A negative value, a fraction, and a unitless counter of the exporter's own naming.
    instruments.blocking_in_flight.add(-3, &[]);
    instruments.blocked_seconds.add(
        0.123_456_789,
        &[opentelemetry::KeyValue::new("endpoint", "/work/block")],
    );
    let mut skip = keyed_names();
    skip.push("process_".to_owned());
    let (theirs, ours) = (encode(&reference), without(&ours.render(), &skip));
    assert!(theirs.contains("loopscope_upstream_duration_seconds_bucket{upstream=\"backend\""));
    assert_eq!(ours, theirs);
}

#[test]
fn keyed_counters_write_what_the_exporter_wrote() {
    use opentelemetry::KeyValue;
    use opentelemetry::metrics::MeterProvider;

    let (reference, provider, ours) = exporter_and_ours();
    let meter = provider.meter("loopscope");
    for spec in KEYED {
        // Every combination of two values a label, added to in an odd order.
        let combos: Vec<Vec<KeyValue>> = (0..1u32 << spec.labels.len())
            .rev()
            .map(|bits| {
                spec.labels
                    .iter()
                    .enumerate()
                    .map(|(i, l)| {
                        let v = if bits & (1 << i) == 0 {
                            "/work/{kind}"
                        } else {
                            "0"
                        };
                        KeyValue::new(*l, v)
                    })
                    .rev()
                    .collect()
            })
            .collect();
        if spec.unit == "s" {
            let theirs = meter
                .f64_counter(spec.name)
                .with_unit(spec.unit)
                .with_description(spec.help)
                .build();
            let mine = KeyedCounter::<FloatCounter>::new(&ours, spec).expect("registers");
            for (i, attrs) in combos.iter().enumerate() {
                let v = 0.125 * i as f64 + 1e-9;
                theirs.add(v, attrs);
                mine.add(v, attrs);
            }
        } else {
            let theirs = meter
                .u64_counter(spec.name)
                .with_unit(spec.unit)
                .with_description(spec.help)
                .build();
            let mine = KeyedCounter::<Counter>::new(&ours, spec).expect("registers");
            for (i, attrs) in combos.iter().enumerate() {
                theirs.add(i as u64, attrs);
                mine.add(i as u64, attrs);
            }
        }
    }
    let theirs = encode(&reference);
    assert!(theirs.contains("loopscope_event_loop_stalls_total{classification="));
    assert_eq!(without_process(&ours.render()), theirs);
}

#[test]
fn per_request_instruments_write_what_the_exporter_wrote() {
    use opentelemetry::KeyValue;
    use opentelemetry::metrics::MeterProvider;

    let (reference, provider, ours) = exporter_and_ours();
    let meter = provider.meter("loopscope");

    let their_in_flight = meter
        .i64_up_down_counter(HTTP_IN_FLIGHT)
        .with_description(IN_FLIGHT_HELP)
        .build();
    let my_in_flight = UnlabelledGauge::new(&ours, HTTP_IN_FLIGHT, IN_FLIGHT_HELP)
        .expect("registers")
        .series();
    // Up past zero and back below it (a value the exporter writes as a float).
    for delta in [1, 1, -1, 5, -9] {
        their_in_flight.add(delta, &[]);
        my_in_flight.add(delta);
    }

    let their_work = meter
        .f64_histogram(WORK_DURATION)
        .with_unit("s")
        .with_description(WORK_DURATION_HELP)
        .with_boundaries(LATENCY_BUCKETS.to_vec())
        .build();
    let my_work = StaticLabelHistogram::new(
        &ours,
        WORK_DURATION,
        WORK_DURATION_HELP,
        &[LABEL_KIND],
        LATENCY_BUCKETS,
    )
    .expect("registers");
    // Kinds in an odd order, values on a bound, between bounds, below the first and past the
    // last, and a sum that is not a round number.
    let values = [0.0005, 0.000_123, 0.0011, 0.25, 7.0, 99.5, 0.001_000_1];
    for (i, kind) in ["io", "cpu", "block", "io", "call", "cpu", "io"]
        .into_iter()
        .enumerate()
    {
        for v in &values[..=i % values.len()] {
            their_work.record(*v, &[KeyValue::new(LABEL_KIND, kind)]);
            my_work.record(*v, kind);
        }
    }
    let theirs = encode(&reference);
    assert!(theirs.contains("loopscope_work_duration_seconds_bucket{kind=\"block\""));
    assert!(theirs.contains("loopscope_http_requests_in_flight{service=\"worker\"} -3\n"));
    assert_eq!(without_process(&ours.render()), theirs);
}

#[test]
fn a_filled_page_passes_promtool() {
    let page = fixture::filled().registry.render();
    assert!(page.lines().count() > 1_500, "the fixture fills the page");
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        panic!("promtool is not on PATH: run `make tools` (Debian's prometheus package)");
    };
    child
        .stdin
        .take()
        .expect("a stdin")
        .write_all(page.as_bytes())
        .expect("promtool reads the page");
    let out = child.wait_with_output().expect("promtool ends");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The negative control: a page promtool must refuse, so a silent pass cannot hide here.
    let broken = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .and_then(|mut c| {
            c.stdin
                .take()
                .expect("a stdin")
                .write_all(b"# TYPE a counter\na{b=\"c} 1\n")?;
            c.wait()
        })
        .expect("promtool runs");
    assert!(!broken.success(), "promtool accepted a broken page");
}

#[test]
fn one_block_a_family_name() {
    use opentelemetry::metrics::MeterProvider;

    let reader = otel::Reader::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(reader.clone())
        .build();
    let ours = Registry::new(LABELS, reader);
    let http = HttpMetrics::new(&ours).expect("registers");
    assert!(
        HttpMetrics::new(&ours).is_err(),
        "a second family of one name"
    );
    http.observe_for_test("/work/io", &Method::GET, StatusCode::OK, 0.001);
    // An instrument the exporter names `loopscope_http_requests_total`.
    provider
        .meter("loopscope")
        .u64_counter("loopscope.http.requests")
        .build()
        .add(1, &[]);
    let page = ours.render();
    assert_eq!(
        page.matches("# TYPE loopscope_http_requests_total ")
            .count(),
        1,
        "{page}"
    );
    assert!(page.contains("loopscope_http_requests_total{endpoint=\"/work/io\""));
}

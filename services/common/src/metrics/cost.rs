//! Where a render of /metrics spends its time, on a registry filled like the bench's worker.
//! A measurement, not a check: run it on a release build,
//! `cargo test --release -p common render_cost -- --ignored --nocapture`.
//!
//! Measured before the scrape wrote its own text (`prometheus`' gather and `TextEncoder`, the
//! opentelemetry-prometheus exporter), 1,777 series, 227 KiB: render 735-1,109 µs = gather
//! 276-430 (HTTP families 24-45, process collector 27-47, the exporter and the registry's
//! merge 200-338, of which the SDK's own collect 28) + text encoding 382-740. Encoding by
//! family (the slower run): HTTP duration histogram 437 µs for 14 series (30 µs a histogram
//! series: two `f64::to_string` a bucket line), work duration 118 (4), lag 29 (2), upstream 14
//! (1), stalls 13 (96 counters), the other counters 0.2-4 µs each.
//! After (own families, OpenTelemetry text, the stall counters ours): 62-91 µs = HTTP
//! families 13, SDK collect 3, process collector 27-34, OpenTelemetry text 9-10, the rest the
//! stall counters and the merge. Per request, the HTTP counter and histogram: 17 ns (was 34).

use std::hint::black_box;
use std::time::{Duration, Instant};

use prometheus::core::Collector;

use super::fixture;

/// The best of 7 runs of `f`, each `n` calls: the machine is shared.
fn best(n: u32, f: &mut dyn FnMut()) -> Duration {
    (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed() / n
        })
        .min()
        .unwrap_or_default()
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[test]
#[ignore = "a measurement: run it on a release build"]
fn render_cost() {
    let t = fixture::filled();
    let n = 300;
    let full = best(n, &mut || {
        black_box(super::render(&t.registry));
    });
    let process = prometheus::process_collector::ProcessCollector::for_self();
    let process_collect = best(n, &mut || {
        black_box(process.collect());
    });
    let own = t.http.families_for_cost();
    let own_render = best(n, &mut || {
        let mut out = String::with_capacity(256 * 1024);
        for f in &own {
            f.render(&mut out);
        }
        black_box(out);
    });
    let otel_collect = best(n, &mut || {
        black_box(t.registry.otel_collect_for_cost());
    });
    let collected = t.registry.otel_collect_for_cost();
    let otel_render = best(n, &mut || {
        let mut out = String::with_capacity(256 * 1024);
        for f in super::otel::families(&collected) {
            f.render(&mut out, "service=\"worker\",handling=\"async\"");
        }
        black_box(out);
    });
    let body = super::render(&t.registry);
    let lines = body.lines().filter(|l| !l.starts_with('#')).count();
    eprintln!(
        "{lines} series, {} KiB: render {:.0} µs: HTTP families {:.0} µs, OpenTelemetry SDK \
         collect {:.0} µs, process collector's /proc reads {:.0} µs, OpenTelemetry text {:.0} µs",
        body.len() / 1024,
        us(full),
        us(own_render),
        us(otel_collect),
        us(process_collect),
        us(otel_render),
    );
}

/// What one request's HTTP record costs in the series' own storage, against the `prometheus`
/// crate's counter and histogram it replaced (same 71 buckets).
#[test]
#[ignore = "a measurement: run it on a release build"]
fn observe_cost() {
    use super::family::{Buckets, CounterVec, HistogramVec};
    use super::names::LATENCY_BUCKETS;

    let n = 1_000_000;
    let ours_c = CounterVec::new("c", "h", &["k"], "".into(), ()).with_label_values(&["a"]);
    let ours_h = HistogramVec::new("h", "h", &["k"], "".into(), Buckets::new(LATENCY_BUCKETS))
        .with_label_values(&["a"]);
    let theirs_c = prometheus::IntCounter::new("c", "h").expect("a counter");
    let theirs_h = prometheus::Histogram::with_opts(
        prometheus::HistogramOpts::new("h", "h").buckets(LATENCY_BUCKETS.to_vec()),
    )
    .expect("a histogram");
    // A spread of latencies, so the bucket search is not always the first comparison.
    let values: Vec<f64> = (0..64).map(|i| 0.0004 * 1.12f64.powi(i)).collect();
    let mut i = 0;
    let ours = best(n, &mut || {
        i = (i + 1) & 63;
        ours_c.inc();
        ours_h.observe(black_box(values[i]));
    });
    let theirs = best(n, &mut || {
        i = (i + 1) & 63;
        theirs_c.inc();
        theirs_h.observe(black_box(values[i]));
    });
    eprintln!(
        "one request's counter + histogram: ours {:.1} ns, prometheus' {:.1} ns",
        d_ns(ours),
        d_ns(theirs)
    );
}

fn d_ns(d: Duration) -> f64 {
    d.as_secs_f64() * 1e9
}

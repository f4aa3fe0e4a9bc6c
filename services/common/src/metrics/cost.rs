//! Where a render of /metrics spends its time, on a registry filled like the bench's worker.
//! A measurement, not a check: run it on a release build,
//! `cargo test --release -p common render_cost -- --ignored --nocapture`.
//!
//! Measured before the scrape wrote its own text (`prometheus`' gather and `TextEncoder`, the
//! opentelemetry-prometheus exporter), 1,777 series, 227 KiB: render 735–1,109 µs = gather
//! 276–430 (HTTP families 24–45, process collector 27–47, the exporter and the registry's
//! merge 200–338, of which the SDK's own collect 28) + text encoding 382–740 (the HTTP
//! duration histogram alone 437 µs of it at the slower end, 30 µs a histogram series).
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

//! The two instruments fed on every request, kept as families of our own: the requests in
//! flight and the work's duration by kind.
//!
//! Through the OpenTelemetry SDK, a histogram record hashed its attribute set with SipHash,
//! found the series in a map under a lock and locked the series to add, and the in-flight
//! counter went through the SDK's measure twice: ~940 instructions a request more than now
//! (callgrind, `make test-cost`'s route). Here a record is a short scan of the kinds seen so
//! far and two atomic adds; the in-flight gauge is one atomic. Exported exactly as the
//! opentelemetry-prometheus exporter exported them: name, unit suffix, help, type and series
//! (a test compares the two pages). One difference, on purpose: the in-flight gauge is
//! written at 0 from the server's start, where the SDK's appeared with the first request.
use std::sync::{Arc, PoisonError, RwLock};

use super::Registry;
use super::family::{Buckets, Histogram, HistogramVec, IntGauge, MetricVec};
use super::otel::prometheus_name;

/// A gauge family with no labels of its own. Its one series is created by [`Self::series`]:
/// a service with the layer off leaves it out of the page, so a dashboard tells a service
/// that does not count from one with nothing in flight.
#[derive(Clone)]
pub struct UnlabelledGauge(MetricVec<IntGauge>);

impl UnlabelledGauge {
    pub(super) fn new(
        registry: &Registry,
        name: &str,
        help: &'static str,
    ) -> Result<Self, prometheus::Error> {
        let vec = MetricVec::new(
            prometheus_name(name, "", false),
            help,
            &[],
            registry.labels(),
            (),
        );
        registry.register(Box::new(vec.clone()))?;
        Ok(Self(vec))
    }

    /// The series, at 0 when first asked for. Kept by the caller: asking allocates.
    pub fn series(&self) -> Arc<IntGauge> {
        self.0.with_label_values::<&str>(&[])
    }
}

/// The series of a [`StaticLabelHistogram`] used so far, by label value.
type Seen = Vec<(&'static str, Arc<Histogram>)>;

/// A histogram in seconds with one label, whose values are our own `&'static str`s (a
/// kind, never a client's string): a record finds its series without allocating.
#[derive(Clone)]
pub struct StaticLabelHistogram {
    vec: HistogramVec,
    /// The series used so far, by label value: a handful, scanned under a read lock that is
    /// written only when a value is seen for the first time.
    seen: Arc<RwLock<Seen>>,
}

impl StaticLabelHistogram {
    pub(super) fn new(
        registry: &Registry,
        name: &str,
        help: &'static str,
        label: &'static [&'static str; 1],
        bounds: &'static [f64],
    ) -> Result<Self, prometheus::Error> {
        let vec = MetricVec::new(
            prometheus_name(name, "s", false),
            help,
            label,
            registry.labels(),
            Buckets::new(bounds),
        );
        registry.register(Box::new(vec.clone()))?;
        Ok(Self {
            vec,
            seen: Arc::default(),
        })
    }

    pub fn record(&self, seconds: f64, value: &'static str) {
        if self.observe_seen(seconds, value) {
            return;
        }
        let series = self.vec.with_label_values(&[value]);
        series.observe(seconds);
        let mut seen = self.seen.write().unwrap_or_else(PoisonError::into_inner);
        if !seen.iter().any(|(v, _)| *v == value) {
            seen.push((value, series));
        }
    }

    /// Observes into the series of `value` if it was seen before.
    fn observe_seen(&self, seconds: f64, value: &str) -> bool {
        let seen = self.seen.read().unwrap_or_else(PoisonError::into_inner);
        seen.iter()
            .find(|(v, _)| *v == value)
            .map(|(_, series)| series.observe(seconds))
            .is_some()
    }
}

//! Counters fed the OpenTelemetry way (a value and its attributes, `add(1, &[KeyValue])`) and
//! kept as our own families: the stall counters, pre-created at zero for every route and
//! worker (176 series on the bench's worker), were most of the OpenTelemetry SDK's collect
//! and of the text written from it at each scrape, for values that are almost always 0.
//! Exported exactly as the opentelemetry-prometheus exporter exported them: its name (unit
//! and `_total` suffixes), label keys in sorted order (a test compares the two).
use std::borrow::Cow;

use opentelemetry::KeyValue;

use super::Registry;
use super::family::{Counter, FloatCounter, Metric, MetricVec};
use super::otel::prometheus_name;

/// What a counter family is declared with: its OpenTelemetry-style name, unit, help and the
/// attribute keys it is fed, sorted (the exporter's label order).
pub(super) struct Spec {
    pub(super) name: &'static str,
    pub(super) unit: &'static str,
    pub(super) help: &'static str,
    pub(super) labels: &'static [&'static str],
}

/// A counter's value type: `u64` counts, `f64` seconds.
pub trait Add: Metric<Config = ()> {
    type Value: Copy;
    fn add(&self, v: Self::Value);
}

impl Add for Counter {
    type Value = u64;
    fn add(&self, v: u64) {
        self.inc_by(v);
    }
}

impl Add for FloatCounter {
    type Value = f64;
    fn add(&self, v: f64) {
        self.inc_by(v);
    }
}

/// A counter family fed with attributes: each attribute key is one of the spec's labels.
pub struct KeyedCounter<M: Add> {
    vec: MetricVec<M>,
    labels: &'static [&'static str],
}

impl<M: Add> Clone for KeyedCounter<M> {
    fn clone(&self) -> Self {
        Self {
            vec: self.vec.clone(),
            labels: self.labels,
        }
    }
}

impl<M: Add> KeyedCounter<M> {
    pub(super) fn new(registry: &Registry, spec: &Spec) -> Result<Self, prometheus::Error> {
        debug_assert!(spec.labels.is_sorted(), "{}: labels unsorted", spec.name);
        let vec = MetricVec::new(
            prometheus_name(spec.name, spec.unit, true),
            spec.help,
            spec.labels,
            registry.labels(),
            (),
        );
        registry.register(Box::new(vec.clone()))?;
        Ok(Self {
            vec,
            labels: spec.labels,
        })
    }

    /// Adds `value` to the series of these attributes (an absent one is an empty label, which
    /// Prometheus reads as no label). Called on stalls, not per request: the lookup allocates.
    pub fn add(&self, value: M::Value, attributes: &[KeyValue]) {
        debug_assert!(
            attributes
                .iter()
                .all(|kv| self.labels.contains(&kv.key.as_str())),
            "an attribute outside the labels {:?}",
            self.labels
        );
        let values: Vec<Cow<'_, str>> = self
            .labels
            .iter()
            .map(|label| {
                attributes
                    .iter()
                    .find(|kv| kv.key.as_str() == *label)
                    .map_or(Cow::Borrowed(""), |kv| kv.value.as_str())
            })
            .collect();
        let values: Vec<&str> = values.iter().map(AsRef::as_ref).collect();
        self.vec.with_label_values(&values).add(value);
    }
}

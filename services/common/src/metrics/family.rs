//! Counter, gauge and histogram families of our own, written to text straight from their
//! atomics.
//!
//! The `prometheus` crate renders a family by building a protobuf `MetricFamily` (a struct
//! per bucket, the registry's labels cloned into every series) and formatting each value with
//! `to_string`: for the HTTP duration histogram, 73 lines a series, most of a scrape's time.
//! Here each series keeps its label set already formatted (registry labels included) and
//! each `le="…"` is formatted once per family, so a bucket line is a few `push_str`s and one
//! integer. Output and series order are the ones `prometheus` writes (tests/exposition.rs
//! compares the two).
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use super::text;

/// What a family's series are: a counter or a histogram.
pub trait Metric: Send + Sync + 'static {
    /// The `# TYPE` of the family.
    const KIND: &'static str;
    /// Shared by a family's series: the bucket bounds of a histogram.
    type Config: Send + Sync + 'static;
    fn new(config: &Self::Config) -> Self;
    /// Appends the series' sample lines; `labels` is the inside of its label set.
    fn render(&self, config: &Self::Config, out: &mut String, name: &str, labels: &str);
}

/// A monotonic integer counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.inc_by(1);
    }

    pub fn inc_by(&self, v: u64) {
        self.0.fetch_add(v, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Metric for Counter {
    const KIND: &'static str = "counter";
    type Config = ();

    fn new((): &()) -> Self {
        Self::default()
    }

    fn render(&self, (): &(), out: &mut String, name: &str, labels: &str) {
        text::sample(out, name, "", labels, "");
        text::u64_value(out, self.get());
    }
}

/// A monotonic float counter (seconds spent), its `f64` bits added to by compare-and-swap.
#[derive(Debug, Default)]
pub struct FloatCounter(AtomicU64);

impl FloatCounter {
    pub fn inc_by(&self, v: f64) {
        add_f64(&self.0, v);
    }

    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

impl Metric for FloatCounter {
    const KIND: &'static str = "counter";
    type Config = ();

    fn new((): &()) -> Self {
        Self(AtomicU64::new(0f64.to_bits()))
    }

    fn render(&self, (): &(), out: &mut String, name: &str, labels: &str) {
        text::sample(out, name, "", labels, "");
        text::f64_value(out, self.get());
    }
}

/// An integer gauge (requests being served now), written as the exporter wrote its `f64`s.
#[derive(Debug, Default)]
pub struct IntGauge(AtomicI64);

impl IntGauge {
    pub fn add(&self, v: i64) {
        self.0.fetch_add(v, Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Metric for IntGauge {
    const KIND: &'static str = "gauge";
    type Config = ();

    fn new((): &()) -> Self {
        Self::default()
    }

    fn render(&self, (): &(), out: &mut String, name: &str, labels: &str) {
        text::sample(out, name, "", labels, "");
        // The exporter's values are `f64`s: an integer prints the same either way.
        text::f64_value(out, self.get() as f64);
    }
}

/// Adds to an `f64` kept as its bits in an atomic.
fn add_f64(bits: &AtomicU64, v: f64) {
    let mut old = bits.load(Ordering::Relaxed);
    loop {
        let new = (f64::from_bits(old) + v).to_bits();
        match bits.compare_exchange_weak(old, new, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break,
            Err(current) => old = current,
        }
    }
}

/// Bucket bounds, with each bucket's `le="…"` formatted as `prometheus` formats it.
pub(crate) struct Buckets {
    bounds: &'static [f64],
    le: Vec<String>,
}

impl Buckets {
    pub(crate) fn new(bounds: &'static [f64]) -> Self {
        let le = bounds
            .iter()
            .map(|b| format!("le=\"{b}\""))
            .chain(std::iter::once("le=\"+Inf\"".to_owned()))
            .collect();
        Self { bounds, le }
    }
}

/// A histogram: one counter per bucket (not cumulative: one atomic add per observation) and
/// the sum. `_count` is the `+Inf` bucket, added up at render, so the two always agree.
#[derive(Debug)]
pub(crate) struct Histogram {
    bounds: &'static [f64],
    buckets: Box<[AtomicU64]>,
    /// The sum's `f64` bits, added to by compare-and-swap.
    sum: AtomicU64,
}

impl Histogram {
    pub(crate) fn observe(&self, v: f64) {
        // The first bucket whose bound is >= v; NaN, like v above every bound, lands in +Inf.
        let i = if v.is_nan() {
            self.bounds.len()
        } else {
            self.bounds.partition_point(|b| *b < v)
        };
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        add_f64(&self.sum, v);
    }

    #[cfg(test)]
    pub(crate) fn get_sample_count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    pub(crate) fn get_sample_sum(&self) -> f64 {
        f64::from_bits(self.sum.load(Ordering::Relaxed))
    }
}

impl Metric for Histogram {
    const KIND: &'static str = "histogram";
    type Config = Buckets;

    fn new(config: &Buckets) -> Self {
        Self {
            bounds: config.bounds,
            buckets: (0..=config.bounds.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    fn render(&self, config: &Buckets, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bucket, le) in self.buckets.iter().zip(&config.le) {
            cumulative += bucket.load(Ordering::Relaxed);
            text::sample(out, name, "_bucket", labels, le);
            text::u64_value(out, cumulative);
        }
        text::sample(out, name, "_sum", labels, "");
        text::f64_value(out, self.get_sample_sum());
        text::sample(out, name, "_count", labels, "");
        text::u64_value(out, cumulative);
    }
}

/// A family of series told apart by label values, like `prometheus`' `MetricVec`.
pub(crate) struct MetricVec<M: Metric> {
    inner: Arc<Inner<M>>,
}

impl<M: Metric> Clone for MetricVec<M> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<M: Metric> {
    name: Cow<'static, str>,
    help: &'static str,
    label_names: &'static [&'static str],
    /// The registry's labels, formatted: they end every series' label set.
    registry_labels: Arc<str>,
    config: M::Config,
    /// Keyed by label values: the order `prometheus` sorts a family's series in.
    series: RwLock<BTreeMap<Vec<String>, Series<M>>>,
}

struct Series<M> {
    labels: Arc<str>,
    metric: Arc<M>,
}

pub(crate) type CounterVec = MetricVec<Counter>;
pub(crate) type HistogramVec = MetricVec<Histogram>;

impl<M: Metric> MetricVec<M> {
    pub(super) fn new(
        name: impl Into<Cow<'static, str>>,
        help: &'static str,
        label_names: &'static [&'static str],
        registry_labels: Arc<str>,
        config: M::Config,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                name: name.into(),
                help,
                label_names,
                registry_labels,
                config,
                series: RwLock::default(),
            }),
        }
    }

    /// The series of these label values (one per label name, in order), created on first use.
    /// Callers keep the handle: a lookup allocates its key.
    ///
    /// # Panics
    /// When the number of values is not the number of label names: a programming error.
    pub(crate) fn with_label_values<V: AsRef<str>>(&self, values: &[V]) -> Arc<M> {
        let inner = &*self.inner;
        assert_eq!(
            values.len(),
            inner.label_names.len(),
            "{}: label values do not match the label names",
            inner.name
        );
        let key: Vec<String> = values.iter().map(|v| v.as_ref().to_owned()).collect();
        if let Some(series) = inner
            .series
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return series.metric.clone();
        }
        let mut labels = String::new();
        text::label_pairs(
            &mut labels,
            inner
                .label_names
                .iter()
                .copied()
                .zip(values.iter().map(AsRef::as_ref)),
        );
        if !inner.registry_labels.is_empty() {
            if !labels.is_empty() {
                labels.push(',');
            }
            labels.push_str(&inner.registry_labels);
        }
        let mut series = inner.series.write().unwrap_or_else(PoisonError::into_inner);
        series
            .entry(key)
            .or_insert_with(|| Series {
                labels: labels.into(),
                metric: Arc::new(M::new(&inner.config)),
            })
            .metric
            .clone()
    }
}

/// A family the registry renders: its name (families are written in name order) and text.
pub(super) trait Render: Send + Sync {
    fn name(&self) -> &str;
    fn render(&self, out: &mut String);
}

impl<M: Metric> Render for MetricVec<M> {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn render(&self, out: &mut String) {
        let inner = &*self.inner;
        // A snapshot of the handles, so no worker creating a series waits for the render.
        let series: Vec<(Arc<str>, Arc<M>)> = inner
            .series
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|s| (s.labels.clone(), s.metric.clone()))
            .collect();
        // Like `prometheus`: a family with no series is not written at all.
        if series.is_empty() {
            return;
        }
        text::header(out, &inner.name, inner.help, M::KIND);
        for (labels, metric) in &series {
            metric.render(&inner.config, out, &inner.name, labels);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_le_and_cumulative() {
        static BOUNDS: &[f64] = &[0.5, 1.0];
        let h: HistogramVec = MetricVec::new("h", "help", &["k"], "s=\"x\"".into(), {
            Buckets::new(BOUNDS)
        });
        let s = h.with_label_values(&["a"]);
        for v in [0.5, 0.7, 3.0, f64::NAN] {
            s.observe(v);
        }
        s.observe(0.25);
        assert_eq!(s.get_sample_count(), 5);
        let mut out = String::new();
        h.render(&mut out);
        assert!(
            out.contains("h_bucket{k=\"a\",s=\"x\",le=\"0.5\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("h_bucket{k=\"a\",s=\"x\",le=\"1\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains("h_bucket{k=\"a\",s=\"x\",le=\"+Inf\"} 5\n"),
            "{out}"
        );
        assert!(out.contains("h_count{k=\"a\",s=\"x\"} 5\n"), "{out}");
    }
}

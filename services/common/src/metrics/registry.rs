//! The process's one registry: our own families (metrics/family.rs), the OpenTelemetry
//! instruments (metrics/otel.rs) and the `prometheus` crate's process collector, all labelled
//! with `service` and `handling`, rendered in one pass into one `String`, families in name
//! order as `prometheus`' registry wrote them.
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use prometheus::core::Collector;
use prometheus::process_collector::ProcessCollector;
use prometheus::proto::{MetricFamily, MetricType};

use super::family::Render;
use super::otel::{self, Reader};
use super::text;

/// Whether the page had two families of one name yet: said once, not at every scrape.
static DUPLICATE_WARNED: AtomicBool = AtomicBool::new(false);

#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    /// `service="…",handling="…"`, formatted once.
    labels: Arc<str>,
    own: Mutex<Vec<Arc<dyn Render>>>,
    otel: Reader,
    process: ProcessCollector,
    /// The last render's size: the next one allocates its buffer once.
    last_len: AtomicUsize,
}

/// A family of any source, by its exported name.
enum Source<'a> {
    Own(&'a dyn Render),
    Otel(otel::Family<'a>),
    Process(&'a MetricFamily),
}

impl Registry {
    /// `labels` go on every series, in this order.
    pub(super) fn new(labels: &[(&str, &str)], otel: Reader) -> Self {
        let mut text = String::new();
        text::label_pairs(&mut text, labels.iter().copied());
        Self {
            inner: Arc::new(Inner {
                labels: text.into(),
                own: Mutex::default(),
                otel,
                process: ProcessCollector::for_self(),
                last_len: AtomicUsize::new(16 * 1024),
            }),
        }
    }

    /// The registry's labels, formatted: the end of every series' label set.
    pub(super) fn labels(&self) -> Arc<str> {
        self.inner.labels.clone()
    }

    /// Adds a family of ours; a second family of the same name would be a second block of
    /// that name on the page, which Prometheus rejects, so it is refused.
    pub(super) fn register(&self, family: Box<dyn Render>) -> Result<(), prometheus::Error> {
        let mut own = self
            .inner
            .own
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if own.iter().any(|f| f.name() == family.name()) {
            return Err(prometheus::Error::AlreadyReg);
        }
        own.push(Arc::from(family));
        Ok(())
    }

    /// The text exposition of everything registered.
    pub fn render(&self) -> String {
        let inner = &*self.inner;
        let own = inner
            .own
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let collected = inner.otel.collect_now();
        let process = inner.process.collect();
        let mut sources: Vec<Source<'_>> = Vec::with_capacity(64);
        sources.extend(own.iter().map(|f| Source::Own(&**f)));
        sources.extend(otel::families(&collected).into_iter().map(Source::Otel));
        sources.extend(process.iter().map(Source::Process));
        sources.sort_by(|a, b| a.name().cmp(b.name()));
        // An OpenTelemetry instrument exported under the name of one of our families: one
        // block a name, ours (the sort is stable and ours come first).
        sources.dedup_by(|later, first| {
            let same = later.name() == first.name();
            if same && !DUPLICATE_WARNED.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    family = later.name(),
                    "two metric families of one name: one dropped"
                );
            }
            same
        });

        let mut out = String::with_capacity(inner.last_len.load(Ordering::Relaxed) + 4096);
        for source in &sources {
            match source {
                Source::Own(f) => f.render(&mut out),
                Source::Otel(f) => f.render(&mut out, &inner.labels),
                Source::Process(f) => proto_family(&mut out, f, &inner.labels),
            }
        }
        inner.last_len.store(out.len(), Ordering::Relaxed);
        out
    }
}

impl Source<'_> {
    fn name(&self) -> &str {
        match self {
            Source::Own(f) => f.name(),
            Source::Otel(f) => &f.name,
            Source::Process(f) => f.name(),
        }
    }
}

/// A counter or gauge family from a `prometheus` collector (the process metrics).
#[cfg(test)]
impl Registry {
    pub(super) fn otel_collect_for_cost(
        &self,
    ) -> opentelemetry_sdk::metrics::data::ResourceMetrics {
        self.inner.otel.collect_now()
    }
}

fn proto_family(out: &mut String, mf: &MetricFamily, registry_labels: &str) {
    let kind = match mf.get_field_type() {
        MetricType::COUNTER => "counter",
        MetricType::GAUGE => "gauge",
        // The process collector has no other kind.
        _ => return,
    };
    if mf.get_metric().is_empty() {
        return;
    }
    text::header(out, mf.name(), mf.help(), kind);
    let mut labels = String::new();
    for m in mf.get_metric() {
        labels.clear();
        text::label_pairs(
            &mut labels,
            m.get_label().iter().map(|l| (l.name(), l.value())),
        );
        if !registry_labels.is_empty() {
            if !labels.is_empty() {
                labels.push(',');
            }
            labels.push_str(registry_labels);
        }
        let value = match mf.get_field_type() {
            MetricType::COUNTER => m.get_counter().get_value(),
            _ => m.get_gauge().get_value(),
        };
        text::sample(out, mf.name(), "", &labels, "");
        text::f64_value(out, value);
    }
}

//! One registry per process, passed around, never a global: HTTP metrics from our own
//! middleware (http.rs), custom instruments from OpenTelemetry, process metrics, all in it, all
//! labelled with `service` and `handling` by the registry itself (registry.rs). A scrape
//! writes the text straight from the instruments (family.rs, otel.rs, text.rs): see
//! docs/benchmarks.md, "Scrape cost", for what that buys.
#[cfg(test)]
mod cost;
#[cfg(test)]
mod equivalence;
mod exposition;
mod family;
#[cfg(test)]
mod fixture;
pub mod http;
mod instruments;
mod keyed;
pub mod names;
mod otel;
mod per_request;
mod registry;
mod text;

use opentelemetry::metrics::{Meter, MeterProvider};
use opentelemetry_sdk::metrics::SdkMeterProvider;

pub use exposition::{metrics_handler, render};
pub use family::{Counter, FloatCounter, IntGauge, Metric};
pub use http::HttpMetrics;
pub use instruments::Instruments;
pub use keyed::{Add, KeyedCounter};
pub use per_request::{StaticLabelHistogram, UnlabelledGauge};
pub use registry::Registry;

use crate::ServiceInfo;

/// Everything a service records into, built once per process.
#[derive(Clone)]
pub struct Telemetry {
    pub registry: Registry,
    pub http: HttpMetrics,
    pub instruments: Instruments,
    /// Kept so the OpenTelemetry pipeline lives as long as the process.
    _meter_provider: SdkMeterProvider,
}

#[derive(Debug, thiserror::Error)]
#[error("metrics setup failed: {0}")]
pub struct MetricsError(String);

impl Telemetry {
    pub fn new(service: &ServiceInfo) -> Result<Self, MetricsError> {
        let mut labels = vec![("service", service.name)];
        if let Some(handling) = service.handling {
            labels.push(("handling", handling));
        }
        // The registry's labels reach every family: the HTTP metrics, the OpenTelemetry
        // instruments and the process collector's, with no per-instrument bookkeeping.
        let reader = otel::Reader::default();
        let err = |e: &dyn std::fmt::Display| MetricsError(e.to_string());
        let registry = Registry::new(&labels, reader.clone());
        let http = HttpMetrics::new(&registry).map_err(|e| err(&e))?;
        let meter_provider = SdkMeterProvider::builder().with_reader(reader).build();
        let instruments = Instruments::new(&meter_provider, &registry).map_err(|e| err(&e))?;
        instruments.build_info();

        Ok(Self {
            registry,
            http,
            instruments,
            _meter_provider: meter_provider,
        })
    }

    /// A meter on the process's pipeline, for a service's own instruments: what it records
    /// is exported into the same registry, with the same `service` label.
    pub fn meter(&self) -> Meter {
        self._meter_provider.meter("loopscope")
    }
}

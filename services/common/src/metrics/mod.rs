//! One registry per process, passed around, never the global default: HTTP metrics from our
//! own middleware (http.rs), custom instruments from OpenTelemetry, process metrics, all in it, all
//! labelled with `service` and `handling` by the registry itself.
mod exposition;
pub mod http;
mod instruments;
pub mod names;

use std::collections::HashMap;

use opentelemetry::metrics::{Meter, MeterProvider};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use prometheus::Registry;

pub use exposition::{metrics_handler, render};
pub use http::HttpMetrics;
pub use instruments::Instruments;

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
        let err = |e: &dyn std::fmt::Display| MetricsError(e.to_string());
        let mut labels = HashMap::from([("service".to_owned(), service.name.to_owned())]);
        if let Some(handling) = service.handling {
            labels.insert("handling".to_owned(), handling.to_owned());
        }
        // Common labels on the registry reach every family: the HTTP metrics, the OTel
        // exporter's and the process collector's, with no per-instrument bookkeeping.
        let registry = Registry::new_custom(None, Some(labels)).map_err(|e| err(&e))?;

        let process = prometheus::process_collector::ProcessCollector::for_self();
        registry.register(Box::new(process)).map_err(|e| err(&e))?;

        let http = HttpMetrics::new(&registry).map_err(|e| err(&e))?;

        let exporter = opentelemetry_prometheus::exporter()
            // Without this the exporter keeps a private registry and its metrics vanish.
            .with_registry(registry.clone())
            .without_target_info()
            .scope_info_enabled(false)
            .build()
            .map_err(|e| err(&e))?;
        let meter_provider = SdkMeterProvider::builder().with_reader(exporter).build();
        let instruments = Instruments::new(&meter_provider);
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

//! The routes a service serves, so the per-route stall series exist at zero from the start:
//! `rate()` and `increase()` miss a counter's first increment when it is born with it.
use std::collections::BTreeSet;
use std::sync::Mutex;

use opentelemetry::KeyValue;

use super::classify::Classification;
use super::report::CaptureOutcome;
use crate::metrics::Instruments;
use crate::metrics::names::{
    LABEL_CLASSIFICATION, LABEL_CULPRIT, LABEL_ENDPOINT, LABEL_OUTCOME, LABEL_WORKER,
};

static ROUTES: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Called by [`crate::get_route`] for every route pattern it registers.
pub(crate) fn declare_route(pattern: &str) {
    let mut routes = ROUTES.lock().unwrap_or_else(|p| p.into_inner());
    if !routes.contains(pattern) {
        routes.insert(pattern.to_owned());
    }
}

/// Creates, at zero, every stall series of every declared route for this worker. Call it on
/// the worker thread after its routes were configured.
pub(crate) fn precreate_series(instruments: &Instruments) {
    let worker = super::current_worker_label();
    let routes: Vec<String> = ROUTES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .cloned()
        .collect();
    for route in routes {
        let by_worker = [
            KeyValue::new(LABEL_ENDPOINT, route.clone()),
            KeyValue::new(LABEL_WORKER, worker.clone()),
        ];
        instruments.blocked_polls.add(0, &by_worker);
        instruments.blocked_seconds.add(0.0, &by_worker);
        for c in Classification::ALL {
            let mut labels = by_worker.to_vec();
            labels.push(KeyValue::new(LABEL_CLASSIFICATION, c.as_str()));
            instruments.stalls.add(0, &labels);
        }
        for o in CaptureOutcome::COUNTED {
            instruments.stall_captures.add(
                0,
                &[
                    KeyValue::new(LABEL_ENDPOINT, route.clone()),
                    KeyValue::new(LABEL_OUTCOME, o.as_str()),
                ],
            );
        }
        let culprit = [KeyValue::new(LABEL_CULPRIT, route.clone())];
        instruments.delayed_requests.add(0, &culprit);
        instruments.delayed_seconds.add(0.0, &culprit);
    }
}

//! Blocked-event-loop reports to Sentry (the client itself is set up in `sentry/`).
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sentry::Level;

/// Sends blocked-event-loop reports to Sentry, at most one per route per interval: a stuck
/// route blocks on every request, and one event a minute says it as well as a thousand.
#[derive(Clone)]
pub struct StallReporter {
    interval: Duration,
    last: Arc<Mutex<HashMap<String, Instant>>>,
}

impl StallReporter {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: Arc::default(),
        }
    }

    pub fn report(&self, endpoint: &str, took: Duration, threshold: Duration) {
        if sentry::Hub::current().client().is_none() {
            return;
        }
        {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            match last.get(endpoint) {
                Some(at) if now.duration_since(*at) < self.interval => return,
                _ => last.insert(endpoint.to_owned(), now),
            };
        }
        let blocked_ms = took.as_secs_f64() * 1e3;
        let mut event = sentry::protocol::Event {
            level: Level::Warning,
            message: Some(format!(
                "event loop blocked for {blocked_ms:.0} ms in {endpoint}"
            )),
            fingerprint: vec!["event-loop-blocked".into(), endpoint.to_owned().into()].into(),
            ..Default::default()
        };
        event
            .tags
            .insert("endpoint".to_owned(), endpoint.to_owned());
        event
            .extra
            .insert("blocked_ms".to_owned(), blocked_ms.into());
        event.extra.insert(
            "threshold_ms".to_owned(),
            (threshold.as_millis() as u64).into(),
        );
        // The request being served: its route, id and trace, like every request event.
        if let Some(request) = crate::sentry::RequestSnapshot::current() {
            request.apply(&mut event);
        }
        sentry::Hub::current().capture_event(event);
    }
}

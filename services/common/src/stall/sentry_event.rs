//! The blocked-loop event, shaped like Sentry's own hang events (App Hangs, Node's
//! eventLoopBlockIntegration): one `EventLoopBlocked` exception whose stacktrace is the
//! blocked thread's stack, that thread marked crashed, the request's trace, one fingerprint
//! per route; at most one event per route per interval, with the count suppressed since.
use std::collections::HashMap;
use std::time::{Duration, Instant};

use sentry::Hub;
use sentry::protocol::{
    Context, Event, Exception, Frame, Level, Mechanism, Stacktrace, Thread, Value,
};

use super::report::StallRecord;

pub(crate) struct SentryStallReporter {
    interval: Duration,
    service: &'static str,
    handling: Option<&'static str>,
    /// Per route: when the last event went out, and how many stalls were skipped since.
    last: HashMap<String, (Instant, u64)>,
}

impl SentryStallReporter {
    pub(crate) fn new(
        interval: Duration,
        service: &'static str,
        handling: Option<&'static str>,
    ) -> Self {
        Self {
            interval,
            service,
            handling,
            last: HashMap::new(),
        }
    }

    pub(crate) fn report(&mut self, record: &StallRecord) {
        // One process hub: the request's data travels in the record, not in a scope.
        let hub = Hub::main();
        if hub.client().is_none() {
            return;
        }
        let route = record.route.clone().unwrap_or_else(|| "UNKNOWN".to_owned());
        let now = Instant::now();
        let suppressed = match self.last.get_mut(&route) {
            Some((at, skipped)) if now.duration_since(*at) < self.interval => {
                *skipped += 1;
                return;
            }
            Some((at, skipped)) => {
                *at = now;
                std::mem::take(skipped)
            }
            None => {
                self.last.insert(route.clone(), (now, 0));
                0
            }
        };
        hub.capture_event(self.event(record, &route, suppressed));
    }

    fn event(&self, r: &StallRecord, route: &str, suppressed: u64) -> Event<'static> {
        // Sentry wants the outermost frame first and the crashing one last.
        let frames: Vec<Frame> = r
            .frames
            .iter()
            .rev()
            .map(|f| Frame {
                function: Some(f.function.clone()),
                filename: f.file.clone(),
                abs_path: f.file.clone(),
                lineno: f.line.map(u64::from),
                in_app: Some(f.in_app),
                instruction_addr: u64::from_str_radix(f.address.trim_start_matches("0x"), 16)
                    .ok()
                    .map(Into::into),
                ..Default::default()
            })
            .collect();
        let stacktrace = (!frames.is_empty()).then(|| Stacktrace {
            frames,
            ..Default::default()
        });
        let method = r.method.as_deref().unwrap_or("GET");
        let transaction = format!("{method} {route}");
        let blocked_ms = r.blocked_ms.unwrap_or(r.running_ms);
        let mut event = Event {
            level: Level::Warning,
            transaction: Some(transaction.clone()),
            fingerprint: vec!["event-loop-blocked".into(), route.to_owned().into()].into(),
            exception: vec![Exception {
                ty: "EventLoopBlocked".into(),
                value: Some(format!(
                    "{transaction} blocked event loop {} for {blocked_ms:.0} ms{} ({})",
                    r.worker,
                    if r.in_progress { " and counting" } else { "" },
                    r.classification.as_str()
                )),
                stacktrace: stacktrace.clone(),
                thread_id: Some(r.thread_id.into()),
                mechanism: Some(Mechanism {
                    ty: "event_loop_blocked".into(),
                    handled: Some(true),
                    ..Default::default()
                }),
                ..Default::default()
            }]
            .into(),
            threads: vec![Thread {
                id: Some(r.thread_id.into()),
                name: Some(format!("actix-worker-{}", r.worker)),
                stacktrace,
                crashed: true,
                current: true,
                ..Default::default()
            }]
            .into(),
            ..Default::default()
        };
        let mut tag = |k: &str, v: &str| {
            event.tags.insert(k.to_owned(), v.to_owned());
        };
        tag("service", self.service);
        if let Some(handling) = self.handling {
            tag("handling", handling);
        }
        tag("route", route);
        tag("worker", &r.worker);
        tag("classification", r.classification.as_str());
        tag("kind", "event_loop_blocked");
        tag("capture", r.capture.as_str());
        if let Some(id) = &r.request_id {
            tag("request_id", id);
        }
        let extra = [
            ("blocked_ms", Value::from(blocked_ms)),
            ("still_blocked", Value::from(r.in_progress)),
            ("suppressed_since_last", Value::from(suppressed)),
            ("captured_after_ms", r.captured_after_ms.into()),
            ("capture_error", r.capture_error.clone().into()),
        ];
        for (k, v) in extra {
            event.extra.insert(k.to_owned(), v);
        }
        if let Some(trace) = &r.trace {
            event
                .contexts
                .insert("trace".to_owned(), Context::Trace(Box::new(trace.clone())));
        }
        event
    }
}

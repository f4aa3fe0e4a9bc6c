//! Sampled transactions, recorded by us instead of the SDK's `Transaction`.
//!
//! Why: through the SDK a sampled transaction cost ~73 k instructions (callgrind, the
//! `make test-cost` route at traces 1.0): ~27 k on the event loop (an `Arc<Mutex>`
//! transaction, each tag a `String` pair in a `BTreeMap`, the scope applied, the protocol
//! `Transaction` built whole) and ~46 k on the sender's thread (serde of the protocol types
//! into a `Vec` grown from empty, then freeing all of it). At the default 1 request in 10 that
//! was ~1.1 µs of CPU per request, more than every other layer together. Here the event loop
//! copies what it knows into a plain [`Finished`] record, queued to the transport, and the
//! sender writes the envelope straight from it ([`super::transaction_json`]).
//!
//! What Sentry receives is what the SDK sent: the transaction with its name, tags, request,
//! trace context, child spans, release, environment, server name and SDK, and a dynamic
//! sampling context in the envelope header. Plus `transaction_info.source = route`: the name
//! is a route pattern, which lets Sentry group by it without guessing.
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;

use sentry::protocol::{SpanId, SpanStatus};

use super::transport::TransactionQueue;

/// Spans kept per transaction; later ones are counted and dropped (the SDK keeps 1,000; a
/// request of ours has a handful, so this bounds only a runaway loop of calls).
pub(crate) const MAX_SPANS: usize = 256;

/// What every transaction of this process says the same way: release, environment, server,
/// SDK, the service's tags and the DSN's public key, serialized once at start.
#[derive(Debug)]
pub(crate) struct Constant {
    /// `"release":…,"environment":…,"server_name":…,"sdk":{…},"platform":"native"`: fields of
    /// the transaction object, without braces.
    pub(crate) fields: String,
    /// `"service":"worker","handling":"async"`: the first tags, without braces.
    pub(crate) tags: String,
    /// The DSN's public key, for the dynamic sampling context.
    pub(crate) public_key: String,
    /// The configured traces sample rate, as the dynamic sampling context states it.
    pub(crate) sample_rate: f32,
}

impl Constant {
    /// What `client` puts on every event (release, environment, server name, SDK: through
    /// its own `prepare_event`, so the integrations that fill them have run), and `tags`.
    pub(crate) fn of(client: &sentry::Client, tags: &[(&str, &str)], sample_rate: f32) -> Self {
        #[derive(serde::Serialize)]
        struct Fields<'a> {
            platform: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            release: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            environment: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            server_name: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            sdk: Option<&'a sentry::protocol::ClientSdkInfo>,
        }
        let probe = client.prepare_event(sentry::protocol::Event::default(), None);
        let probe = probe.as_ref();
        let fields = Fields {
            platform: "native",
            release: probe.and_then(|e| e.release.as_deref()),
            environment: probe.and_then(|e| e.environment.as_deref()),
            server_name: probe.and_then(|e| e.server_name.as_deref()),
            sdk: probe.and_then(|e| e.sdk.as_deref()),
        };
        let tags: serde_json::Map<String, serde_json::Value> = tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).into()))
            .collect();
        Self {
            fields: inside_braces(serde_json::to_string(&fields).unwrap_or_default()),
            tags: inside_braces(serde_json::to_string(&tags).unwrap_or_default()),
            public_key: client
                .dsn()
                .map(|d| d.public_key().to_owned())
                .unwrap_or_default(),
            sample_rate,
        }
    }
}

/// `{…}` without its braces, to be written inside another object.
fn inside_braces(object: String) -> String {
    object
        .strip_prefix('{')
        .and_then(|o| o.strip_suffix('}'))
        .unwrap_or_default()
        .to_owned()
}

/// Where finished transactions go, once Sentry is set up with a DSN.
struct Sink {
    queue: TransactionQueue,
    constant: Arc<Constant>,
}

static SINK: RwLock<Option<Sink>> = RwLock::new(None);

/// Sends this process's transactions to `queue` from now on.
pub(crate) fn install(queue: TransactionQueue, constant: Constant) {
    *SINK.write().unwrap_or_else(PoisonError::into_inner) = Some(Sink {
        queue,
        constant: Arc::new(constant),
    });
}

/// Stops sending transactions (Sentry is closing).
pub(crate) fn uninstall() {
    *SINK.write().unwrap_or_else(PoisonError::into_inner) = None;
}

/// The spans a transaction's children finished, shared with the pool threads they may run on.
#[derive(Debug, Default)]
struct SpanList {
    closed: bool,
    finished: Vec<FinishedSpan>,
    dropped: u32,
}

/// Ids as numbers (written as hex by the sender: the SDK's ids format through a `String`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ids {
    pub(crate) trace: u128,
    pub(crate) span: u64,
    pub(crate) parent: Option<u64>,
}

/// A sampled request's transaction while it runs.
#[derive(Clone, Debug)]
pub(crate) struct Recording {
    ids: Ids,
    start: SystemTime,
    spans: Arc<Mutex<SpanList>>,
}

impl Recording {
    pub(crate) fn start(trace: u128, span: u64, parent: Option<u64>) -> Self {
        Self {
            ids: Ids {
                trace,
                span,
                parent,
            },
            start: SystemTime::now(),
            spans: Arc::default(),
        }
    }

    /// A child span of this transaction, started now.
    pub(crate) fn child(&self, op: &'static str, description: String) -> Span {
        Span {
            spans: self.spans.clone(),
            ids: Ids {
                trace: self.ids.trace,
                span: super::context::random(),
                parent: Some(self.ids.span),
            },
            op,
            description,
            start: SystemTime::now(),
            status: None,
        }
    }

    /// Ends the transaction now and queues it, if Sentry is set up; spans finished later
    /// are not sent (as the SDK does).
    pub(crate) fn finish(&self, ending: Ending) {
        let end = SystemTime::now();
        let (spans, dropped_spans) = {
            let mut list = self.spans.lock().unwrap_or_else(PoisonError::into_inner);
            list.closed = true;
            (std::mem::take(&mut list.finished), list.dropped)
        };
        let sink = SINK.read().unwrap_or_else(PoisonError::into_inner);
        let Some(sink) = sink.as_ref() else {
            return;
        };
        sink.queue.send(Box::new(Finished {
            constant: sink.constant.clone(),
            event_id: super::context::random(),
            ids: self.ids,
            start: self.start,
            end,
            ending,
            spans,
            dropped_spans,
        }));
    }
}

/// How the request ended, as the transaction tells it.
#[derive(Debug)]
pub(crate) struct Ending {
    /// `GET /work/cpu`; empty when the request failed before an answer.
    pub(crate) name: String,
    pub(crate) status: SpanStatus,
    /// After the service's own tags, in this order.
    pub(crate) tags: Vec<(&'static str, String)>,
    pub(crate) request: Option<RequestLine>,
}

/// The request as a transaction shows it (no headers: see the middleware).
#[derive(Debug)]
pub(crate) struct RequestLine {
    pub(crate) url: String,
    pub(crate) method: String,
    pub(crate) query_string: Option<String>,
}

/// A finished transaction, waiting in the transport's queue.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) constant: Arc<Constant>,
    pub(crate) event_id: u128,
    pub(crate) ids: Ids,
    pub(crate) start: SystemTime,
    pub(crate) end: SystemTime,
    pub(crate) ending: Ending,
    pub(crate) spans: Vec<FinishedSpan>,
    pub(crate) dropped_spans: u32,
}

impl Finished {
    /// The protocol transaction's shape, only for the loss counts of a client report (a
    /// transaction and its spans), on the rare path where one is dropped.
    pub(crate) fn as_lost(&self) -> sentry::protocol::Transaction<'static> {
        sentry::protocol::Transaction {
            spans: vec![sentry::protocol::Span::default(); self.spans.len()],
            ..Default::default()
        }
    }
}

#[derive(Debug)]
pub(crate) struct FinishedSpan {
    /// With the transaction's span as parent.
    pub(crate) ids: Ids,
    pub(crate) op: &'static str,
    pub(crate) description: String,
    pub(crate) status: Option<SpanStatus>,
    pub(crate) start: SystemTime,
    pub(crate) end: SystemTime,
}

/// A child span of a sampled request's transaction: an outgoing call, a pool job, the work.
/// `finish` it; one dropped unfinished is not sent.
#[derive(Debug)]
pub struct Span {
    spans: Arc<Mutex<SpanList>>,
    ids: Ids,
    op: &'static str,
    description: String,
    start: SystemTime,
    status: Option<SpanStatus>,
}

impl Span {
    pub fn span_id(&self) -> SpanId {
        SpanId::from(self.ids.span.to_be_bytes())
    }

    pub fn set_status(&mut self, status: SpanStatus) {
        self.status = Some(status);
    }

    pub fn finish(self) {
        let end = SystemTime::now();
        let Self {
            spans,
            ids,
            op,
            description,
            start,
            status,
        } = self;
        let mut list = spans.lock().unwrap_or_else(PoisonError::into_inner);
        if list.closed {
            return;
        }
        if list.finished.len() >= MAX_SPANS {
            list.dropped = list.dropped.saturating_add(1);
            return;
        }
        list.finished.push(FinishedSpan {
            ids,
            op,
            description,
            status,
            start,
            end,
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn recording() -> Recording {
        Recording::start(1, 2, Some(3))
    }

    #[test]
    fn spans_finished_before_the_end_are_kept_in_order_and_bounded() {
        let r = recording();
        for i in 0..MAX_SPANS + 3 {
            let mut span = r.child("work", format!("{i}"));
            span.set_status(SpanStatus::Ok);
            span.finish();
        }
        let list = r.spans.lock().unwrap();
        assert_eq!(list.finished.len(), MAX_SPANS);
        assert_eq!(list.dropped, 3);
        assert_eq!(list.finished[0].description, "0");
        assert_eq!(list.finished[0].ids.parent, Some(2));
        assert_eq!(list.finished[0].ids.trace, 1);
        assert_ne!(list.finished[0].ids.span, list.finished[1].ids.span);
    }

    #[test]
    fn a_span_finished_after_its_transaction_is_not_kept() {
        let r = recording();
        let early = r.child("pool.job", "early".into());
        let late = r.child("pool.job", "late".into());
        early.finish();
        // No sink is installed in unit tests: finishing only closes the list.
        r.finish(Ending {
            name: String::new(),
            status: SpanStatus::Ok,
            tags: Vec::new(),
            request: None,
        });
        late.finish();
        let list = r.spans.lock().unwrap();
        assert!(list.closed);
        assert!(
            list.finished.is_empty(),
            "taken at the end; the late one not added"
        );
    }
}

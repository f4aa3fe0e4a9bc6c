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

pub(crate) use super::transaction_constant::Constant;
use super::transport::TransactionQueue;

/// Spans kept per transaction; later ones are counted and dropped (the SDK keeps 1,000; a
/// request of ours has a handful, so this bounds only a runaway loop of calls).
pub(crate) const MAX_SPANS: usize = 256;

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
    /// The rate this service sampled the trace at; `None` when it followed its caller's
    /// decision, whose rate it does not know (the sampling context then leaves it out).
    sample_rate: Option<f32>,
    start: SystemTime,
    spans: Arc<Mutex<SpanList>>,
}

impl Recording {
    pub(crate) fn start(ids: Ids, sample_rate: Option<f32>) -> Self {
        Self {
            ids,
            sample_rate,
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

    /// Closes the span list: the spans finished so far and how many were dropped; `None`
    /// if it was closed already. Spans finished later are not sent (as with the SDK).
    fn close(&self) -> Option<(Vec<FinishedSpan>, u32)> {
        let mut list = self.spans.lock().unwrap_or_else(PoisonError::into_inner);
        if list.closed {
            return None;
        }
        list.closed = true;
        Some((std::mem::take(&mut list.finished), list.dropped))
    }

    /// Ends the transaction now and queues it, if Sentry is set up. Once: a second call
    /// sends nothing.
    pub(crate) fn finish(&self, ending: Ending) {
        let end = SystemTime::now();
        let Some((spans, dropped_spans)) = self.close() else {
            return;
        };
        let sink = SINK.read().unwrap_or_else(PoisonError::into_inner);
        let Some(sink) = sink.as_ref() else {
            return;
        };
        sink.queue.send(Box::new(Finished {
            constant: sink.constant.clone(),
            event_id: super::context::random(),
            ids: self.ids,
            sample_rate: self.sample_rate,
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
    /// `GET /work/cpu`, a route; `None` when the request failed before an answer (the
    /// transaction is then named by its operation, `http.server`).
    pub(crate) route_name: Option<String>,
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
    pub(crate) sample_rate: Option<f32>,
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
        let ids = Ids {
            trace: 1,
            span: 2,
            parent: Some(3),
        };
        Recording::start(ids, Some(0.1))
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
    fn a_span_finished_after_its_transaction_is_not_kept_and_it_ends_once() {
        let r = recording();
        let early = r.child("pool.job", "early".into());
        let late = r.child("pool.job", "late".into());
        early.finish();
        let (spans, dropped) = r.close().expect("the first close");
        assert_eq!(dropped, 0);
        let kept: Vec<&str> = spans.iter().map(|s| s.description.as_str()).collect();
        assert_eq!(kept, ["early"]);
        late.finish();
        assert!(
            r.spans.lock().unwrap().finished.is_empty(),
            "the late one not added"
        );
        assert!(
            r.close().is_none(),
            "closed once: a second finish sends nothing"
        );
    }
}

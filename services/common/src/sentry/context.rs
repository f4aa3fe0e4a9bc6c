//! The request being served, as Sentry needs it: its trace (continued from an incoming
//! `sentry-trace` header or new), whether it is sampled, its transaction when it is, and a
//! handle to the `HttpRequest` once routing is done. Kept in a task-local, so nothing is
//! built unless an event is captured; the pool thread of a blocking job gets a copy
//! ([`Propagation`]) for the duration of the job.
use std::cell::RefCell;
use std::rc::Rc;

use actix_web::HttpRequest;
use rand::distr::{Distribution, StandardUniform};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use sentry::protocol::{SpanId, TraceId};

use super::transaction::{Ids, Recording, Span};

tokio::task_local! {
    static CURRENT: Rc<RequestTrace>;
}

thread_local! {
    /// The trace of the request a blocking-pool job serves, while the job runs.
    static ON_POOL_THREAD: RefCell<Option<Propagation>> = const { RefCell::new(None) };

    /// Trace and span ids and the sampling draw are random but not secret: a small, fast
    /// generator per thread (seeded from the OS-seeded thread generator), as OpenTelemetry's
    /// SDK makes its ids, instead of `rand::random`'s ChaCha (~600 instructions a request).
    static RNG: RefCell<SmallRng> = RefCell::new(SmallRng::from_rng(&mut rand::rng()));
}

/// A random value from this thread's fast generator.
pub(crate) fn random<T>() -> T
where
    StandardUniform: Distribution<T>,
{
    // A thread being torn down has no generator left: the thread's own, then.
    RNG.try_with(|rng| rng.borrow_mut().random())
        .unwrap_or_else(|_| rand::random())
}

pub(crate) struct RequestTrace {
    pub(crate) trace_id: TraceId,
    /// `trace_id` in hex, for the access log of every request (the SDK's `Display` of an id
    /// formats it a byte at a time).
    trace_hex: [u8; 32],
    /// This service's span of the request: the transaction's when sampled, a fresh id if not.
    pub(crate) span_id: SpanId,
    pub(crate) parent_span_id: Option<SpanId>,
    /// The transaction, when sampled.
    pub(crate) transaction: Option<Recording>,
    /// Set by the route wrapper after routing (an actix request is a reference count).
    pub(crate) request: RefCell<Option<HttpRequest>>,
}

impl RequestTrace {
    /// Continues the incoming trace, or starts one; samples only when asked to, at the rate
    /// `drawn_at` when this service drew the decision (`None`: the caller's decision).
    pub(crate) fn start(
        incoming: Option<IncomingTrace>,
        sampled: bool,
        drawn_at: Option<f32>,
    ) -> Self {
        // One draw for the id: the SDK's `TraceId::default()` draws it a byte at a time.
        let raw = incoming.map_or_else(random::<u128>, |t| t.raw);
        let trace_id = incoming.map_or_else(|| TraceId::from(raw.to_be_bytes()), |t| t.trace_id);
        let parent_span_id = incoming.map(|t| t.span_id);
        let span_raw = random::<u64>();
        let span_id = SpanId::from(span_raw.to_be_bytes());
        let ids = Ids {
            trace: raw,
            span: span_raw,
            parent: incoming.map(|t| t.span_raw),
        };
        let transaction = sampled.then(|| Recording::start(ids, drawn_at));
        Self {
            trace_id,
            trace_hex: hex(raw),
            span_id,
            parent_span_id,
            transaction,
            request: RefCell::new(None),
        }
    }

    /// The trace id as 32 lowercase hex digits.
    pub(crate) fn trace_hex(&self) -> &[u8; 32] {
        &self.trace_hex
    }

    pub(crate) fn sampled(&self) -> bool {
        self.transaction.is_some()
    }

    pub(crate) fn propagation(&self) -> Propagation {
        Propagation {
            trace_id: self.trace_id,
            span_id: self.span_id,
            sampled: self.sampled(),
            parent: self.transaction.clone(),
            request_id: crate::request_tracking::current_request_id(),
        }
    }
}

/// A `sentry-trace` header's content: `<trace id>-<span id>[-<sampled>]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IncomingTrace {
    pub(crate) trace_id: TraceId,
    /// The same id as a number, for [`hex`].
    raw: u128,
    pub(crate) span_id: SpanId,
    /// The same id as a number.
    span_raw: u64,
    pub(crate) sampled: Option<bool>,
}

impl IncomingTrace {
    pub(crate) fn parse(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let trace_hex = parts.next().filter(|p| p.len() == 32)?;
        let trace_id = trace_hex.parse().ok()?;
        let raw = u128::from_str_radix(trace_hex, 16).ok()?;
        // Digits only: `from_str_radix` would take a sign.
        let span_hex = parts
            .next()
            .filter(|p| p.len() == 16 && p.bytes().all(|b| b.is_ascii_hexdigit()))?;
        let span_raw = u64::from_str_radix(span_hex, 16).ok()?;
        let span_id = SpanId::from(span_raw.to_be_bytes());
        let sampled = match parts.next() {
            None => None,
            Some("1") => Some(true),
            Some("0") => Some(false),
            Some(_) => return None,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Self {
            trace_id,
            raw,
            span_id,
            span_raw,
            sampled,
        })
    }
}

/// `id` as 32 lowercase hex digits, big-endian like `TraceId`'s own display.
pub(crate) fn hex(id: u128) -> [u8; 32] {
    hex_digits(id)
}

/// `id` as 16 lowercase hex digits, big-endian like `SpanId`'s own display.
pub(crate) fn hex64(id: u64) -> [u8; 16] {
    hex_digits(u128::from(id))
}

fn hex_digits<const N: usize>(id: u128) -> [u8; N] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0; N];
    for (i, digit) in out.iter_mut().enumerate() {
        *digit = DIGITS[((id >> (4 * (N - 1 - i))) & 0xf) as usize];
    }
    out
}

/// Runs `f` with `trace` as the current request's trace.
pub(crate) fn scope<F: std::future::Future>(
    trace: Rc<RequestTrace>,
    f: F,
) -> impl std::future::Future<Output = F::Output> {
    CURRENT.scope(trace, f)
}

/// `f` of the current request's trace, if this task serves one.
pub(crate) fn with_current<R>(f: impl FnOnce(&RequestTrace) -> R) -> Option<R> {
    CURRENT.try_with(|t| f(t)).ok()
}

/// Remembers the routed request, for an event captured while the handler runs (a panic).
pub(crate) fn set_request(request: &HttpRequest) {
    let _ = CURRENT.try_with(|t| *t.request.borrow_mut() = Some(request.clone()));
}

/// The trace of the current request, to carry to a pool thread ([`Propagation::run`]).
pub(crate) fn propagation() -> Option<Propagation> {
    with_current(RequestTrace::propagation).or_else(|| ON_POOL_THREAD.with(|p| p.borrow().clone()))
}

/// What a thread needs to continue a request's trace: for the outgoing headers, the child
/// spans and the events of a blocking job.
#[derive(Clone)]
pub(crate) struct Propagation {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub sampled: bool,
    /// The transaction children attach to; `None` when not sampled.
    pub parent: Option<Recording>,
    pub request_id: Option<String>,
}

impl Propagation {
    /// Runs `f` on this thread as part of the request.
    pub(crate) fn run<R>(self, f: impl FnOnce() -> R) -> R {
        let previous = ON_POOL_THREAD.with(|p| p.borrow_mut().replace(self));
        let _restore =
            crate::defer::defer(move || ON_POOL_THREAD.with(|p| *p.borrow_mut() = previous));
        f()
    }

    /// The `sentry-trace` header value for a call made on behalf of this request.
    pub(crate) fn sentry_trace(&self, span_id: SpanId) -> String {
        format!(
            "{}-{}-{}",
            self.trace_id,
            span_id,
            if self.sampled { "1" } else { "0" }
        )
    }

    /// A child span of the request's transaction, when it is sampled.
    pub(crate) fn child(&self, op: &'static str, description: &str) -> Option<Span> {
        self.parent
            .as_ref()
            .map(|parent| parent.child(op, description.to_owned()))
    }
}

/// A child span of the current request's transaction; `None` (and no cost) when unsampled.
/// Finish it with `Span::finish`; one dropped unfinished is not sent.
pub fn child_span(op: &'static str, description: &str) -> Option<Span> {
    with_current(|t| {
        t.transaction
            .as_ref()
            .map(|tx| tx.child(op, description.to_owned()))
    })
    .flatten()
}

/// Calls `f` with the current request's trace id in hex, if this task serves a request.
pub(crate) fn with_trace_hex<R>(f: impl FnOnce(Option<&[u8]>) -> R) -> R {
    let mut f = Some(f);
    CURRENT
        .try_with(|t| (f.take().expect("called once"))(Some(t.trace_hex().as_slice())))
        .unwrap_or_else(|_| (f.take().expect("called once"))(None))
}

/// The current request's trace ids (a copy: no allocation, and no random draw, which a
/// `TraceContext`'s defaults would make for ids it then drops).
pub(crate) fn current_trace_ids() -> Option<super::event::TraceIds> {
    with_current(|t| super::event::TraceIds::from(t))
}

/// Whether this thread is running a request's job on the blocking pool (Sentry on).
pub(crate) fn on_pool_thread() -> bool {
    ON_POOL_THREAD.with(|p| p.borrow().is_some())
}

#[cfg(test)]
mod tests {
    use super::IncomingTrace;
    use sentry::protocol::TraceId;

    #[test]
    fn parses_sentry_trace_headers_and_rejects_bad_ones() {
        let t = IncomingTrace::parse("0123456789abcdef0123456789abcdef-0123456789abcdef-1")
            .expect("valid");
        assert_eq!(t.sampled, Some(true));
        assert_eq!(t.trace_id.to_string(), "0123456789abcdef0123456789abcdef");
        assert_eq!(
            &super::hex(t.raw),
            b"0123456789abcdef0123456789abcdef",
            "hex() formats like TraceId"
        );
        assert_eq!(
            TraceId::from(t.raw.to_be_bytes()),
            t.trace_id,
            "the number and the id agree"
        );
        assert_eq!(t.span_id.to_string(), "0123456789abcdef");
        assert_eq!(&super::hex64(t.span_raw), b"0123456789abcdef");
        let t = IncomingTrace::parse("0123456789abcdef0123456789abcdef-0123456789abcdef")
            .expect("valid without a decision");
        assert_eq!(t.sampled, None);
        for bad in [
            "",
            "abc-def",
            "0123456789abcdef0123456789abcdef-0123456789abcdef-2",
            "0123456789abcdef0123456789abcdeX-0123456789abcdef-1",
            "0123456789abcdef0123456789abcdef-0123456789abcdef-1-1",
            "0123456789abcdef0123456789abcdef-+123456789abcdef-1",
        ] {
            assert_eq!(IncomingTrace::parse(bad), None, "{bad}");
        }
    }
}

//! What every request-bound event says about its request, built only when one is captured:
//! `transaction` = `GET /work/block` (method and route pattern), tags `route`, `kind`,
//! `request_id`, `worker`, `status`, the request context with filtered headers and redacted
//! query, and the request's trace. A [`RequestSnapshot`] is plain data (`Send`), so an event
//! can be finished on another thread (panics are symbolicated off the event loop).
use std::borrow::Cow;
use std::cell::RefCell;
use std::panic::Location;

use actix_web::HttpRequest;
use sentry::protocol::{
    Event, Frame, Map, Request, SpanId, Stacktrace, TraceContext, TraceId, Url,
};

use super::context::RequestTrace;
use super::transaction::RequestLine;
use crate::recent::Recent;

/// Query parameters whose value never leaves the process: a key containing any of these.
const SENSITIVE: &[&str] = &[
    "token",
    "password",
    "passwd",
    "pwd",
    "secret",
    "key",
    "auth",
    "session",
    "signature",
    "credential",
    "jwt",
    "cookie",
];

/// Headers kept on events: what helps to reproduce, none that can authenticate.
const KEPT_HEADERS: &[&str] = &[
    "accept",
    "accept-encoding",
    "content-length",
    "content-type",
    "host",
    "user-agent",
    "x-request-id",
    "sentry-trace",
    "baggage",
    "x-forwarded-for",
    "x-forwarded-proto",
];

pub(crate) const FILTERED: &str = "[Filtered]";

/// The route pattern of a routed request (`/work/block`), or `UNMATCHED`.
pub(crate) fn route(req: &HttpRequest) -> String {
    req.match_pattern()
        .unwrap_or_else(|| crate::route_pattern::UNMATCHED.to_owned())
}

/// The worker's job kind: a `{kind}` path parameter or the last segment of a `/work/` route.
pub(crate) fn kind(req: &HttpRequest, route: &str) -> Option<String> {
    if let Some(kind) = req.match_info().get("kind") {
        return Some(kind.to_owned());
    }
    // Not `rsplit_once("/work/")`: a substring searcher's set-up costs more than this scan.
    const WORK: &[u8] = b"/work/";
    let at = route
        .as_bytes()
        .windows(WORK.len())
        .rposition(|w| w == WORK)?;
    let last = &route[at + WORK.len()..];
    (!last.is_empty() && !last.contains(['/', '{'])).then(|| last.to_owned())
}

/// `query` with the values of sensitive parameters replaced by `[Filtered]`.
pub(crate) fn redact_query(query: &str) -> String {
    let sensitive = |pair: &&str| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        !value.is_empty() && is_sensitive(key)
    };
    // The common case, nothing to hide, without a `Vec` and a `String` per parameter.
    if !query.split('&').any(|pair| sensitive(&pair)) {
        return query.to_owned();
    }
    query
        .split('&')
        .map(|pair| {
            if sensitive(&pair) {
                let key = pair.split_once('=').map_or(pair, |(key, _)| key);
                Cow::Owned(format!("{key}={FILTERED}"))
            } else {
                Cow::Borrowed(pair)
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Whether a parameter named `key` holds a secret: its name contains one of [`SENSITIVE`],
/// in any case.
fn is_sensitive(key: &str) -> bool {
    SENSITIVE.iter().any(|word| {
        key.as_bytes()
            .windows(word.len())
            .any(|w| w.eq_ignore_ascii_case(word.as_bytes()))
    })
}

/// The request as Sentry shows it: URL (query redacted), method, and, for error events, the
/// headers in [`KEPT_HEADERS`].
pub(crate) fn request_context(req: &HttpRequest, with_headers: bool) -> Request {
    let line = request_line(req);
    let headers: Map<String, String> = req
        .headers()
        .iter()
        .filter(|_| with_headers)
        .filter(|(name, _)| KEPT_HEADERS.contains(&name.as_str()))
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_owned())))
        .collect();
    Request {
        url: parse_url(&line.url),
        method: Some(line.method),
        query_string: line.query_string,
        headers,
        ..Default::default()
    }
}

/// The URL (query redacted) and method of `req`, as a transaction and an event show them.
pub(crate) fn request_line(req: &HttpRequest) -> RequestLine {
    // Not `connection_info()`: it borrows the request's extensions, and this also runs in
    // the panic hook, where a handler may have panicked holding them (a double panic aborts).
    let scheme = if req.app_config().secure() {
        "https"
    } else {
        "http"
    };
    let host = req
        .headers()
        .get(actix_web::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_else(|| req.app_config().host());
    let query = redact_query(req.query_string());
    let url = if query.is_empty() {
        format!("{scheme}://{host}{}", req.path())
    } else {
        format!("{scheme}://{host}{}?{query}", req.path())
    };
    RequestLine {
        url,
        method: req.method().to_string(),
        query_string: (!query.is_empty()).then_some(query),
    }
}

thread_local! {
    /// The last URLs parsed on this thread: the error events of a repeated request (host,
    /// path and query alike, as in an error storm) share one parse, ~7 k instructions with
    /// `url`. (Transactions carry the URL as text: see `transaction_json`.)
    static PARSED: RefCell<Recent<Option<Url>>> = const { RefCell::new(Recent::new(8, 256)) };
}

fn parse_url(url: &str) -> Option<Url> {
    PARSED
        .try_with(|parsed| match parsed.try_borrow_mut() {
            Ok(mut parsed) => parsed.get_or_insert_with(url, || url.parse().ok()),
            // Only if a panic hit inside the memo and its hook reports this request.
            Err(_) => url.parse().ok(),
        })
        .unwrap_or_else(|_| url.parse().ok())
}

/// The trace an event belongs to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TraceIds {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) parent_span_id: Option<SpanId>,
}

impl TraceIds {
    /// The ids as an event's trace context (for a report made later from another thread,
    /// such as the stall capture's).
    pub(crate) fn context(self) -> TraceContext {
        TraceContext {
            trace_id: self.trace_id,
            span_id: self.span_id,
            parent_span_id: self.parent_span_id,
            ..Default::default()
        }
    }
}

impl From<&RequestTrace> for TraceIds {
    fn from(t: &RequestTrace) -> Self {
        Self {
            trace_id: t.trace_id,
            span_id: t.span_id,
            parent_span_id: t.parent_span_id,
        }
    }
}

/// Everything a request-bound event carries about its request, as owned data.
#[derive(Clone, Debug)]
pub(crate) struct RequestSnapshot {
    /// `GET /work/block`.
    pub transaction: String,
    pub tags: Vec<(&'static str, String)>,
    pub request: Request,
    trace: Option<TraceIds>,
}

impl RequestSnapshot {
    pub(crate) fn new(
        req: &HttpRequest,
        request_id: Option<String>,
        trace: Option<TraceIds>,
    ) -> Self {
        let route = route(req);
        let mut tags = vec![("worker", crate::stall::current_worker_label())];
        if let Some(kind) = kind(req, &route) {
            tags.push(("kind", kind));
        }
        if let Some(id) = request_id {
            tags.push(("request_id", id));
        }
        let transaction = format!("{} {route}", req.method());
        tags.push(("route", route));
        Self {
            transaction,
            tags,
            request: request_context(req, true),
            trace,
        }
    }

    /// The snapshot of the request this task serves, once it is routed.
    pub(crate) fn current() -> Option<Self> {
        super::context::with_current(|t| {
            let req = t.request.borrow().clone()?;
            Some(Self::new(
                &req,
                crate::request_tracking::current_request_id(),
                Some(t.into()),
            ))
        })
        .flatten()
    }

    pub(crate) fn with_tag(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.tags.push((key, value.into()));
        self
    }

    /// Puts the request on `event` (tags already on the event win).
    pub(crate) fn apply(self, event: &mut Event<'static>) {
        event.transaction = Some(self.transaction);
        for (key, value) in self.tags {
            event.tags.entry(key.to_owned()).or_insert(value);
        }
        event.request = Some(self.request);
        if let Some(t) = self.trace {
            event.contexts.insert(
                "trace".to_owned(),
                TraceContext {
                    trace_id: t.trace_id,
                    span_id: t.span_id,
                    parent_span_id: t.parent_span_id,
                    op: Some("http.server".to_owned()),
                    ..Default::default()
                }
                .into(),
            );
        }
    }
}

/// A one-frame stack: the line of our code an error was raised at.
/// (A `Location` has no function name; Sentry then shows the file and line.)
pub(crate) fn stack_at(at: &'static Location<'static>) -> Stacktrace {
    Stacktrace {
        frames: vec![Frame {
            filename: Some(at.file().to_owned()),
            abs_path: Some(at.file().to_owned()),
            lineno: Some(u64::from(at.line())),
            colno: Some(u64::from(at.column())),
            in_app: Some(true),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::redact_query;

    #[test]
    fn sensitive_query_values_are_redacted_and_the_rest_kept() {
        assert_eq!(
            redact_query("ms=5&token=abc&API_KEY=x&password=&auth_code=1&kind=io"),
            "ms=5&token=[Filtered]&API_KEY=[Filtered]&password=&auth_code=[Filtered]&kind=io"
        );
        assert_eq!(redact_query(""), "");
        assert_eq!(redact_query("ms=1"), "ms=1");
        assert_eq!(redact_query("ms=1&kind=io"), "ms=1&kind=io");
        assert_eq!(redact_query("Session_ID=7&x"), "Session_ID=[Filtered]&x");
        assert_eq!(
            redact_query("jw=1&t=jwt"),
            "jw=1&t=jwt",
            "names are searched, not values"
        );
    }
}

//! Calls to other services: the gateway to the workers, the worker to the backend. Every call
//! has a timeout, carries the Sentry trace headers of the request it serves (one trace spans
//! gateway → worker → backend), is counted by outcome, and fails as a typed error.
use std::future::Future;
use std::panic::Location;
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use serde_json::Value;

use crate::error::error_chain;
use crate::metrics::Instruments;
use crate::metrics::names::{LABEL_OUTCOME, LABEL_UPSTREAM};

mod error;
pub use error::UpstreamError;

/// What came back from a call that got an HTTP answer, whatever its status.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub elapsed: Duration,
}

impl Reply {
    /// The reply if its status is a success, else a typed failure carrying the body.
    #[track_caller]
    pub fn success(self, upstream: &'static str) -> Result<Reply, UpstreamError> {
        if (200..300).contains(&self.status) {
            return Ok(self);
        }
        let e = UpstreamError::Failed {
            upstream,
            status: self.status,
            body: self.body,
            at: Location::caller(),
        };
        tracing::warn!(upstream, outcome = e.outcome(), error = %e, "upstream call failed");
        Err(e)
    }
}

/// Redirects are not followed (see [`client`]); one is a failed call, not an answer to pass on.
const REDIRECT: &str = "a redirect, not followed";

fn is_redirect(status: u16) -> bool {
    (300..400).contains(&status)
}

/// Bodies larger than this are refused (`bad_body`) unless [`Upstream::max_body_bytes`] says.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// One downstream service, by name (the `upstream` label) and base URL.
#[derive(Clone)]
pub struct Upstream {
    pub name: &'static str,
    base: String,
    timeout: Duration,
    max_body: usize,
    instruments: Instruments,
}

/// An async client for calls between services: rustls, `timeout`, and no redirects (a
/// service that answers a redirect is misconfigured; following it could leave the cluster).
pub fn client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// The blocking counterpart of [`client`], for pool threads.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into()
}

/// The headers a call carries for the request it serves: `sentry-trace` (with the span of
/// the call when sampled) and `x-request-id`, so the callee joins the same trace and log id.
fn request_headers(span: Option<&crate::sentry::Span>) -> Vec<(&'static str, String)> {
    let Some(p) = crate::sentry::propagation() else {
        return Vec::new();
    };
    let span_id = span.map_or(p.span_id, crate::sentry::Span::span_id);
    let mut headers = vec![("sentry-trace", p.sentry_trace(span_id))];
    if let Some(id) = crate::request_tracking::current_request_id().or(p.request_id) {
        headers.push(("x-request-id", id));
    }
    headers
}

/// A child span of the request's transaction for one call, when the request is sampled.
fn call_span(upstream: &str, path_and_query: &str) -> Option<crate::sentry::Span> {
    let path = path_and_query.split('?').next().unwrap_or_default();
    crate::sentry::propagation()?.child("http.client", &format!("GET {upstream} {path}"))
}

fn finish_span(span: Option<crate::sentry::Span>, result: Result<&Reply, &UpstreamError>) {
    if let Some(mut span) = span {
        let status = match result {
            Ok(r) if r.status < 400 => sentry::protocol::SpanStatus::Ok,
            Ok(_) => sentry::protocol::SpanStatus::InternalError,
            Err(e) if e.is_timeout() => sentry::protocol::SpanStatus::DeadlineExceeded,
            Err(_) => sentry::protocol::SpanStatus::Unavailable,
        };
        span.set_status(status);
        span.finish();
    }
}

impl Upstream {
    pub fn new(
        name: &'static str,
        base: &str,
        timeout: Duration,
        instruments: Instruments,
    ) -> Self {
        Self {
            name,
            base: base.trim_end_matches('/').to_owned(),
            timeout,
            max_body: DEFAULT_MAX_BODY_BYTES,
            instruments,
        }
    }

    /// Refuse answers larger than `bytes` (a dependency gone wrong must not fill our memory).
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn record(&self, started: Instant, outcome: Result<&Reply, &UpstreamError>) {
        let outcome = match outcome {
            Ok(r) if r.status < 400 => "ok",
            Ok(r) if r.status < 500 => "client_error",
            Ok(_) => "server_error",
            Err(e) => e.outcome(),
        };
        let labels = [
            KeyValue::new(LABEL_UPSTREAM, self.name),
            KeyValue::new(LABEL_OUTCOME, outcome),
        ];
        self.instruments.upstream_requests.add(1, &labels);
        self.instruments
            .upstream_duration
            .record(started.elapsed().as_secs_f64(), &labels);
    }

    fn timed_out(&self, at: &'static Location<'static>) -> UpstreamError {
        UpstreamError::Timeout {
            upstream: self.name,
            timeout_ms: self.timeout.as_millis() as u64,
            at,
        }
    }

    fn bad_body(
        &self,
        status: u16,
        reason: &'static str,
        at: &'static Location<'static>,
    ) -> UpstreamError {
        UpstreamError::BadBody {
            upstream: self.name,
            status,
            reason,
            at,
        }
    }

    /// GET `path_and_query` with the async client. (Not an `async fn`, so that the error can
    /// say which line of ours made the call.)
    #[track_caller]
    pub fn get<'a>(
        &'a self,
        client: &'a reqwest::Client,
        path_and_query: &'a str,
    ) -> impl Future<Output = Result<Reply, UpstreamError>> + 'a {
        let at = Location::caller();
        async move {
            let started = Instant::now();
            let span = call_span(self.name, path_and_query);
            let mut request = client
                .get(format!("{}{path_and_query}", self.base))
                .timeout(self.timeout);
            for (name, value) in request_headers(span.as_ref()) {
                request = request.header(name, value);
            }
            let result = async {
                let mut response = request.send().await.map_err(|e| self.classify(&e, at))?;
                let status = response.status().as_u16();
                if is_redirect(status) {
                    return Err(self.bad_body(status, REDIRECT, at));
                }
                if response
                    .content_length()
                    .is_some_and(|n| n > self.max_body as u64)
                {
                    return Err(self.bad_body(status, "too large", at));
                }
                let mut bytes = Vec::new();
                while let Some(chunk) = response.chunk().await.map_err(|e| {
                    if e.is_timeout() {
                        self.timed_out(at)
                    } else {
                        self.bad_body(status, "cut short", at)
                    }
                })? {
                    if bytes.len() + chunk.len() > self.max_body {
                        return Err(self.bad_body(status, "too large", at));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                let body = serde_json::from_slice::<Value>(&bytes)
                    .map_err(|_| self.bad_body(status, "not JSON", at))?;
                Ok(Reply {
                    status,
                    body,
                    elapsed: started.elapsed(),
                })
            }
            .await;
            self.record(started, result.as_ref());
            if let Err(e) = &result {
                tracing::warn!(upstream = self.name, outcome = e.outcome(), error = %e, detail = e.detail(), "upstream call failed");
            }
            finish_span(span, result.as_ref());
            result
        }
    }

    fn classify(&self, e: &reqwest::Error, at: &'static Location<'static>) -> UpstreamError {
        if e.is_timeout() {
            return self.timed_out(at);
        }
        let reason = match io_kind(e) {
            Some(std::io::ErrorKind::ConnectionRefused) => "connection refused",
            _ if e.is_connect() => "connection failed",
            _ => "request failed",
        };
        UpstreamError::Unreachable {
            upstream: self.name,
            reason,
            detail: error_chain(e),
            at,
        }
    }

    /// GET `path_and_query` with a blocking client: for the threadpool mode, on a pool thread.
    #[track_caller]
    pub fn get_blocking(
        &self,
        agent: &ureq::Agent,
        path_and_query: &str,
    ) -> Result<Reply, UpstreamError> {
        let at = Location::caller();
        let started = Instant::now();
        let span = call_span(self.name, path_and_query);
        let mut request = agent
            .get(format!("{}{path_and_query}", self.base))
            .config()
            .timeout_global(Some(self.timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .build();
        for (name, value) in request_headers(span.as_ref()) {
            request = request.header(name, value);
        }
        let result = match request.call() {
            Ok(response) if is_redirect(response.status().as_u16()) => {
                Err(self.bad_body(response.status().as_u16(), REDIRECT, at))
            }
            Ok(mut response) => {
                let status = response.status().as_u16();
                match response
                    .body_mut()
                    .with_config()
                    .limit(self.max_body as u64)
                    .read_to_vec()
                {
                    Ok(bytes) => serde_json::from_slice::<Value>(&bytes)
                        .map(|body| Reply {
                            status,
                            body,
                            elapsed: started.elapsed(),
                        })
                        .map_err(|_| self.bad_body(status, "not JSON", at)),
                    Err(ureq::Error::Timeout(_)) => Err(self.timed_out(at)),
                    Err(ureq::Error::BodyExceedsLimit(_)) => {
                        Err(self.bad_body(status, "too large", at))
                    }
                    Err(_) => Err(self.bad_body(status, "cut short", at)),
                }
            }
            Err(ureq::Error::Timeout(_)) => Err(self.timed_out(at)),
            Err(e) => Err(UpstreamError::Unreachable {
                upstream: self.name,
                reason: match &e {
                    ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                        "connection refused"
                    }
                    ureq::Error::HostNotFound => "name not resolved",
                    ureq::Error::ConnectionFailed | ureq::Error::Io(_) => "connection failed",
                    _ => "request failed",
                },
                detail: e.to_string(),
                at,
            }),
        };
        self.record(started, result.as_ref());
        if let Err(e) = &result {
            tracing::warn!(upstream = self.name, outcome = e.outcome(), error = %e, detail = e.detail(), "upstream call failed");
        }
        finish_span(span, result.as_ref());
        result
    }
}

/// The `io::ErrorKind` somewhere in an error's causes.
fn io_kind(e: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = s.source();
    }
    None
}

//! How envelopes reach Sentry: sentry's own transport thread and rate limiter, with a send
//! of ours that backs off when Sentry cannot be reached.
//!
//! sentry's reqwest transport tries every envelope anew: with Sentry down (DNS gone, a
//! refused port, a firewall) each sampled transaction and each event paid a connection
//! attempt and its error path, ~100 k instructions each (callgrind; `make bench` runs with a
//! DSN to a closed port). An SRE expects a client to stop hammering a dependency that is
//! down: after a failed send, envelopes are dropped unsent (and recorded as lost, like a
//! rate limit) for a backoff that doubles from 1 s to 60 s and resets on the next success.
//! Sentry's own rate limits (429, `Retry-After`, `X-Sentry-Rate-Limits`) are honoured as
//! sentry's transport honours them. Content-Type is set: Spotlight drops envelopes without it.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sentry::client_report::Reason as LostReason;
use sentry::transports::{RateLimiter, TokioTransportThread, TokioTransportThreadOptions};
use sentry::{ClientOptions, Envelope, Transport, TransportOptions};

/// The first backoff after a failed send, and the longest.
const FIRST_BACKOFF_SECS: u64 = 1;
const MAX_BACKOFF_SECS: u64 = 60;

pub(crate) struct BackingOffTransport {
    thread: TokioTransportThread,
}

impl Transport for BackingOffTransport {
    fn send_envelope(&self, envelope: Envelope) {
        self.thread.send(envelope);
    }

    fn flush(&self, timeout: Duration) -> bool {
        self.thread.flush(timeout)
    }

    fn shutdown(&self, timeout: Duration) -> bool {
        self.flush(timeout)
    }
}

/// The next backoff after a failure, given the current one (0 = healthy).
fn next_backoff(current_secs: u64) -> u64 {
    if current_secs == 0 {
        FIRST_BACKOFF_SECS
    } else {
        (current_secs * 2).min(MAX_BACKOFF_SECS)
    }
}

impl BackingOffTransport {
    pub(crate) fn new(options: &ClientOptions, http: reqwest::Client) -> Self {
        let TransportOptions {
            dsn,
            user_agent,
            client_report_recorder,
            transport_channel_capacity,
            ..
        } = TransportOptions::try_from_client_options(options)
            .expect("the transport factory only runs when a DSN is set");
        // Parsed and validated once: per envelope, parsing the URL and the auth header showed
        // as ~30 k instructions of reqwest's ~135 k (callgrind).
        let target = Target {
            url: dsn.envelope_api_url(),
            auth: reqwest::header::HeaderValue::from_str(
                &dsn.to_auth(Some(&user_agent)).to_string(),
            )
            .ok(),
        };
        let host = dsn.host().to_owned();
        // Seconds of the backoff in force; 0 while sends succeed.
        let backoff = Arc::new(AtomicU64::new(0));
        let recorder = client_report_recorder.clone();
        let send = move |envelope: Envelope, mut limits: RateLimiter| {
            let mut body = Vec::new();
            let serialized = envelope.to_writer(&mut body).is_ok();
            let request = target.post(&http, body);
            let (backoff, recorder, host) = (backoff.clone(), recorder.clone(), host.clone());
            async move {
                if !serialized {
                    recorder.record_lost_data(&envelope, LostReason::InternalError);
                    return limits;
                }
                match request.send().await {
                    Ok(response) => {
                        backoff.store(0, Ordering::Relaxed);
                        let header = |name: &str| {
                            response
                                .headers()
                                .get(name)
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned)
                        };
                        if let Some(limit) = header("x-sentry-rate-limits") {
                            limits.update_from_sentry_header(&limit);
                        } else if let Some(after) = header("retry-after") {
                            limits.update_from_retry_after(&after);
                        } else if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
                            limits.update_from_429();
                        }
                        let status = response.status();
                        if (status.is_client_error() || status.is_server_error())
                            && status != reqwest::StatusCode::TOO_MANY_REQUESTS
                        {
                            recorder.record_lost_data(&envelope, LostReason::SendError);
                        }
                        // Read to the end, so the connection is kept for the next envelope.
                        let _ = response.bytes().await;
                    }
                    Err(error) => {
                        recorder.record_lost_data(&envelope, LostReason::NetworkError);
                        let secs = next_backoff(backoff.load(Ordering::Relaxed));
                        if backoff.swap(secs, Ordering::Relaxed) == 0 {
                            tracing::warn!(
                                sentry_host = %host,
                                error = %error,
                                backoff_s = secs,
                                "sentry unreachable: events and transactions are dropped unsent \
                                 while it stays so (backoff 1 s doubling to 60 s)"
                            );
                        }
                        // Everything is held back for the backoff, as for a rate limit.
                        limits.update_from_retry_after(&secs.to_string());
                    }
                }
                limits
            }
        };
        let mut thread = TokioTransportThreadOptions::new(send)
            .with_client_report_recorder(client_report_recorder);
        if let Some(capacity) = transport_channel_capacity {
            thread = thread.with_channel_capacity(capacity.get());
        }
        Self {
            thread: thread.spawn_thread(),
        }
    }
}

/// Where envelopes go, prepared once.
struct Target {
    url: reqwest::Url,
    auth: Option<reqwest::header::HeaderValue>,
}

impl Target {
    fn post(&self, http: &reqwest::Client, body: Vec<u8>) -> reqwest::RequestBuilder {
        let mut request = http.post(self.url.clone()).header(
            reqwest::header::CONTENT_TYPE,
            reqwest::header::HeaderValue::from_static("application/x-sentry-envelope"),
        );
        if let Some(auth) = &self.auth {
            request = request.header(X_SENTRY_AUTH, auth.clone());
        }
        request.body(body)
    }
}

const X_SENTRY_AUTH: reqwest::header::HeaderName =
    reqwest::header::HeaderName::from_static("x-sentry-auth");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_to_a_minute() {
        let mut secs = 0;
        let seen: Vec<u64> = (0..8)
            .map(|_| {
                secs = next_backoff(secs);
                secs
            })
            .collect();
        assert_eq!(seen, [1, 2, 4, 8, 16, 32, 60, 60]);
    }
}

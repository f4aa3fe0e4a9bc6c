//! Calls to other services: the gateway to the workers, the worker to the backend. Every call
//! has a timeout, carries the Sentry trace headers of the request it serves (one trace spans
//! gateway → worker → backend), is counted by outcome, and fails as a typed error.
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use serde_json::Value;

use crate::metrics::Instruments;
use crate::metrics::names::{LABEL_OUTCOME, LABEL_UPSTREAM};

/// What came back from a call that got an HTTP answer, whatever its status.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub elapsed: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("{upstream} did not answer within {timeout_ms} ms")]
    Timeout {
        upstream: &'static str,
        timeout_ms: u64,
    },
    #[error("{upstream} is unreachable: {detail}")]
    Unreachable {
        upstream: &'static str,
        detail: String,
    },
    #[error("{upstream} answered {status} with a body that is not JSON")]
    BadBody { upstream: &'static str, status: u16 },
    #[error("{upstream} failed with status {status}")]
    Failed {
        upstream: &'static str,
        status: u16,
        body: Value,
    },
}

impl UpstreamError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }

    fn outcome(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => "timeout",
            Self::Unreachable { .. } => "unreachable",
            Self::BadBody { .. } => "bad_body",
            Self::Failed { .. } => "server_error",
        }
    }
}

impl Reply {
    /// The reply if its status is a success, else a typed failure carrying the body.
    pub fn success(self, upstream: &'static str) -> Result<Reply, UpstreamError> {
        if (200..300).contains(&self.status) {
            Ok(self)
        } else {
            Err(UpstreamError::Failed {
                upstream,
                status: self.status,
                body: self.body,
            })
        }
    }
}

/// One downstream service, by name (the `upstream` label) and base URL.
#[derive(Clone)]
pub struct Upstream {
    pub name: &'static str,
    base: String,
    timeout: Duration,
    instruments: Instruments,
}

fn trace_headers() -> Vec<(&'static str, String)> {
    sentry::Hub::current().configure_scope(|scope| scope.iter_trace_propagation_headers().collect())
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
            instruments,
        }
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

    fn timed_out(&self) -> UpstreamError {
        UpstreamError::Timeout {
            upstream: self.name,
            timeout_ms: self.timeout.as_millis() as u64,
        }
    }

    /// GET `path_and_query` with the async client.
    pub async fn get(
        &self,
        client: &reqwest::Client,
        path_and_query: &str,
    ) -> Result<Reply, UpstreamError> {
        let started = Instant::now();
        let mut request = client
            .get(format!("{}{path_and_query}", self.base))
            .timeout(self.timeout);
        for (name, value) in trace_headers() {
            request = request.header(name, value);
        }
        let result = async {
            let response = request.send().await.map_err(|e| self.classify(&e))?;
            let status = response.status().as_u16();
            let body = response.json::<Value>().await.map_err(|e| {
                if e.is_timeout() {
                    self.timed_out()
                } else {
                    UpstreamError::BadBody {
                        upstream: self.name,
                        status,
                    }
                }
            })?;
            Ok(Reply {
                status,
                body,
                elapsed: started.elapsed(),
            })
        }
        .await;
        self.record(started, result.as_ref());
        result
    }

    fn classify(&self, e: &reqwest::Error) -> UpstreamError {
        if e.is_timeout() {
            self.timed_out()
        } else {
            UpstreamError::Unreachable {
                upstream: self.name,
                detail: error_chain(e),
            }
        }
    }

    /// GET `path_and_query` with a blocking client: for the threadpool mode, on a pool thread.
    pub fn get_blocking(
        &self,
        agent: &ureq::Agent,
        path_and_query: &str,
    ) -> Result<Reply, UpstreamError> {
        let started = Instant::now();
        let mut request = agent
            .get(format!("{}{path_and_query}", self.base))
            .config()
            .timeout_global(Some(self.timeout))
            .http_status_as_error(false)
            .build();
        for (name, value) in trace_headers() {
            request = request.header(name, value);
        }
        let result = match request.call() {
            Ok(mut response) => {
                let status = response.status().as_u16();
                match response.body_mut().read_json::<Value>() {
                    Ok(body) => Ok(Reply {
                        status,
                        body,
                        elapsed: started.elapsed(),
                    }),
                    Err(ureq::Error::Timeout(_)) => Err(self.timed_out()),
                    Err(_) => Err(UpstreamError::BadBody {
                        upstream: self.name,
                        status,
                    }),
                }
            }
            Err(ureq::Error::Timeout(_)) => Err(self.timed_out()),
            Err(e) => Err(UpstreamError::Unreachable {
                upstream: self.name,
                detail: e.to_string(),
            }),
        };
        self.record(started, result.as_ref());
        result
    }
}

/// An error and its causes on one line: reqwest's top-level message is "error sending
/// request"; the causes say why.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

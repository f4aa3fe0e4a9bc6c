//! The load engine and `loadgen run`.
//!
//! Two models, as in wrk2 and every honest load tester:
//!
//! - **open** ([`Model::Open`]): requests leave on a fixed schedule, whatever the server
//!   does; each one is its own task, so a slow answer never delays the next send, and its
//!   latency is counted from the time it was *meant* to leave. A stalled server cannot hide
//!   its queue (no coordinated omission).
//! - **closed** ([`Model::Closed`]): a fixed number of requests in flight, each sent when the
//!   previous one answered; latency from the actual send. This is what most benchmarks do,
//!   and what hides a stall: while the server sleeps, nobody sends.
//!
//! [`execute`] runs a [`Plan`] inside a tokio runtime and returns a [`Summary`]; [`main`] is
//! the command line around it.
mod engine;
mod outcome;
mod progress;
mod run;
mod schedule;
mod summary;
mod table;

use std::time::Duration;

pub use engine::execute;
pub use outcome::{ErrorKind, classify};
pub use progress::Progress;
pub use run::{DEFAULT_CONCURRENCY, DEFAULT_DURATION, main};
pub use schedule::{intended_offset, latency};
pub use summary::{Latency, Summary};

/// What to send, how, and for how long.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub model: Model,
    pub stop: Stop,
    /// Used round-robin; each must be an absolute http(s) URL.
    pub urls: Vec<String>,
    /// Timeout of each request, the whole exchange (connect, headers, body).
    pub timeout: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Model {
    /// Requests per second, on schedule.
    Open { rate: f64 },
    /// Requests in flight.
    Closed { concurrency: usize },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Send for this long (open: no send is scheduled at or after it; closed: no request
    /// starts after it), then wait for the answers still due.
    After(Duration),
    /// Send this many requests in all.
    Count(u64),
}

/// Largest `--rate` accepted: beyond it the scheduler, not the server, is measured.
pub const MAX_RATE: f64 = 100_000.0;
/// Largest `--concurrency` accepted.
pub const MAX_CONCURRENCY: usize = 10_000;

/// A plan the engine cannot run; the message names the flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlanError(pub String);

impl Plan {
    /// Checks what the command line cannot: rates, concurrency, URLs, counts.
    pub fn validate(&self) -> Result<(), PlanError> {
        let fail = |msg: String| Err(PlanError(msg));
        match self.model {
            Model::Open { rate } if !(rate.is_finite() && rate > 0.0) => {
                return fail(format!(
                    "--rate must be a number of requests per second above 0, got {rate}"
                ));
            }
            Model::Open { rate } if rate > MAX_RATE => {
                return fail(format!("--rate must be at most {MAX_RATE}, got {rate}"));
            }
            Model::Closed { concurrency: 0 } => {
                return fail("--concurrency must be at least 1, got 0".to_owned());
            }
            Model::Closed { concurrency } if concurrency > MAX_CONCURRENCY => {
                return fail(format!(
                    "--concurrency must be at most {MAX_CONCURRENCY}, got {concurrency}"
                ));
            }
            _ => {}
        }
        match self.stop {
            Stop::Count(0) => return fail("--requests must be at least 1, got 0".to_owned()),
            Stop::After(d) if d.is_zero() => {
                return fail("--duration must be more than 0".to_owned());
            }
            _ => {}
        }
        if self.timeout.is_zero() {
            return fail("--timeout must be more than 0".to_owned());
        }
        if self.urls.is_empty() {
            return fail("give at least one target URL".to_owned());
        }
        for url in &self.urls {
            check_url(url).map_err(PlanError)?;
        }
        Ok(())
    }
}

/// An absolute http or https URL with a host.
pub fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| format!("target URL `{url}` is not an http(s) URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "target URL `{url}` must start with http:// or https://, not {}://",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("target URL `{url}` has no host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(model: Model) -> Plan {
        Plan {
            model,
            stop: Stop::Count(1),
            urls: vec!["http://127.0.0.1:1/".to_owned()],
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn validation_names_the_flag() {
        let err = |p: Plan| p.validate().expect_err("invalid").0;
        assert!(err(plan(Model::Open { rate: 0.0 })).contains("--rate"));
        assert!(err(plan(Model::Open { rate: -3.0 })).contains("--rate"));
        assert!(err(plan(Model::Open { rate: f64::NAN })).contains("--rate"));
        assert!(
            err(plan(Model::Open {
                rate: f64::INFINITY
            }))
            .contains("--rate")
        );
        assert!(err(plan(Model::Closed { concurrency: 0 })).contains("--concurrency"));
        assert!(
            err(plan(Model::Closed {
                concurrency: 1_000_000
            }))
            .contains("--concurrency")
        );
        let mut p = plan(Model::Closed { concurrency: 1 });
        p.stop = Stop::Count(0);
        assert!(err(p).contains("--requests"));
        for bad in ["notaurl", "ftp://host/x", "http://", "/work/io"] {
            let mut p = plan(Model::Closed { concurrency: 1 });
            p.urls = vec![bad.to_owned()];
            assert!(err(p).contains(bad), "{bad}");
        }
        assert_eq!(plan(Model::Open { rate: 0.5 }).validate(), Ok(()));
        assert_eq!(plan(Model::Closed { concurrency: 10 }).validate(), Ok(()));
    }
}

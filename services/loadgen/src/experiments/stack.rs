//! The stack an experiment runs against, and the few ways it talks to it.
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::cli::StackArgs;

pub(crate) struct Stack {
    pub(crate) gateway: String,
    pub(crate) worker_async: String,
    pub(crate) worker_threadpool: String,
    pub(crate) async_admin: String,
    pub(crate) threadpool_admin: String,
    /// A client that opens a new connection per request: actix hands each connection to one
    /// event loop, so requests spread over the workers as independent clients' would.
    client: reqwest::Client,
}

/// One answered request, timed by the client.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Value,
    pub(crate) sent: DateTime<Utc>,
    pub(crate) elapsed: Duration,
}

impl Answer {
    pub(crate) fn ms(&self) -> f64 {
        self.elapsed.as_secs_f64() * 1e3
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum StackError {
    #[error(
        "{url} is not answering ({detail}); start the stack first: `make up` in another terminal, or `make demo`"
    )]
    Unreachable { url: String, detail: String },
    #[error("GET {url} failed: {detail}")]
    Request { url: String, detail: String },
}

impl Stack {
    pub(crate) fn new(args: &StackArgs, timeout: Duration) -> Self {
        let trim = |s: &str| s.trim_end_matches('/').to_owned();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(0)
            .build()
            .expect("a client with a timeout builds");
        Self {
            gateway: trim(&args.gateway_url),
            worker_async: trim(&args.worker_async_url),
            worker_threadpool: trim(&args.worker_threadpool_url),
            async_admin: trim(&args.worker_async_admin_url),
            threadpool_admin: trim(&args.worker_threadpool_admin_url),
            client,
        }
    }

    pub(crate) fn describe(&self) -> Value {
        json!({
            "gateway": self.gateway,
            "worker_async": self.worker_async,
            "worker_threadpool": self.worker_threadpool,
            "worker_async_admin": self.async_admin,
            "worker_threadpool_admin": self.threadpool_admin,
        })
    }

    /// Every service answers /readyz, or the reason why not.
    pub(crate) async fn check(&self) -> Result<(), StackError> {
        for base in [
            &self.gateway,
            &self.worker_async,
            &self.worker_threadpool,
            &self.async_admin,
            &self.threadpool_admin,
        ] {
            let url = format!("{base}/readyz");
            let res = self
                .client
                .get(&url)
                .timeout(Duration::from_secs(3))
                .send()
                .await;
            match res {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => {
                    return Err(StackError::Unreachable {
                        url,
                        detail: format!("status {}", r.status()),
                    });
                }
                Err(e) => {
                    return Err(StackError::Unreachable {
                        url,
                        detail: crate::experiments::cause(&e),
                    });
                }
            }
        }
        Ok(())
    }

    pub(crate) async fn get(&self, url: &str) -> Result<Answer, StackError> {
        self.get_with_timeout(url, None).await
    }

    pub(crate) async fn get_with_timeout(
        &self,
        url: &str,
        timeout: Option<Duration>,
    ) -> Result<Answer, StackError> {
        let sent = Utc::now();
        let started = Instant::now();
        let mut req = self.client.get(url);
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        let err = |e: reqwest::Error| StackError::Request {
            url: url.to_owned(),
            detail: crate::experiments::cause(&e),
        };
        let res = req.send().await.map_err(err)?;
        let status = res.status().as_u16();
        let text = res.text().await.map_err(err)?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer {
            status,
            body,
            sent,
            elapsed: started.elapsed(),
        })
    }

    /// The first sample of `name` on an admin port's /metrics whose labels include `labels`.
    pub(crate) async fn metric(
        &self,
        admin: &str,
        name: &str,
        labels: &[(&str, &str)],
    ) -> Result<Option<f64>, StackError> {
        let page = self.get(&format!("{admin}/metrics")).await?;
        let text = page.body.as_str().unwrap_or_default().to_owned();
        Ok(sample(&text, name, labels))
    }
}

pub(crate) fn sample(page: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            (metric == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse().ok())
            .flatten()
        })
}

/// Milliseconds since the Unix epoch of an RFC 3339 timestamp from a work response.
pub(crate) fn epoch_ms(rfc3339: &str) -> Option<f64> {
    let t = DateTime::parse_from_rfc3339(rfc3339).ok()?;
    Some(t.timestamp_micros() as f64 / 1e3)
}

pub(crate) fn utc_ms(t: DateTime<Utc>) -> f64 {
    t.timestamp_micros() as f64 / 1e3
}

//! `loadgen serve`: steady, mixed traffic to the gateway, forever, with the client's view
//! exported as metrics. In a cluster it is what makes the dashboards move.
//!
//! The traffic is an open model (requests leave on schedule whatever the gateway does;
//! latency from the intended send time). The mix is `weight:path,...`, sent in a smooth
//! weighted round-robin: deterministic, and each entry spread evenly over the cycle.
//!
//! Metrics, on the admin port with the usual process and HTTP ones:
//! `loopscope_client_requests_total{target,handling,outcome}` and
//! `loopscope_client_request_duration_seconds{target,handling,outcome}`, where `target` is the
//! entry's path without its query, `handling` is `async`, `threadpool`, `both` (compare) or
//! `none`, read from the path, and `outcome` is `ok`, `error_status`, `timeout` or
//! `unreachable`.
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use contract::{Choice, Handling};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::cli::ServeArgs;
use crate::load::{self, MAX_RATE, classify};

/// Exported as `loopscope_client_requests_total`.
pub const CLIENT_REQUESTS: &str = "loopscope.client.requests";
/// Exported as `loopscope_client_request_duration_seconds`.
pub const CLIENT_REQUEST_DURATION: &str = "loopscope.client.request.duration";

/// How far the scheduler may fall behind before it skips the missed sends. Only a starved
/// client falls behind (sends never wait for answers), and a burst of everything it missed
/// would measure the client's stall, not the gateway's.
const MAX_SCHEDULE_LAG: Duration = Duration::from_secs(1);

/// One `weight:path` entry of `--mix`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MixEntry {
    pub weight: u32,
    /// As given, query included: `/api/async/work/io?ms=50`.
    pub path: String,
    /// The `target` label: the path without its query.
    pub target: String,
    /// The `handling` label: `async`, `threadpool`, `both` or `none`.
    pub handling: &'static str,
}

/// Largest weight of one entry.
const MAX_WEIGHT: u32 = 1000;

/// Parses `--mix`: comma-separated `weight:path`, weights 1–1000, paths from `/`.
pub fn parse_mix(mix: &str) -> Result<Vec<MixEntry>, String> {
    let example = "e.g. `4:/api/async/work/io?ms=50,1:/api/compare?kind=io&ms=20`";
    let entries = mix
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let (weight, path) = entry
                .split_once(':')
                .ok_or_else(|| format!("entry `{entry}` is not `weight:path` ({example})"))?;
            let weight: u32 = weight.trim().parse().map_err(|_| {
                format!("entry `{entry}`: the weight `{weight}` is not a whole number")
            })?;
            if !(1..=MAX_WEIGHT).contains(&weight) {
                return Err(format!(
                    "entry `{entry}`: the weight must be between 1 and {MAX_WEIGHT}, got {weight}"
                ));
            }
            let path = path.trim();
            if !path.starts_with('/') {
                return Err(format!(
                    "entry `{entry}`: the path must start with `/` (it is relative to --gateway-url)"
                ));
            }
            let target = path.split(['?', '#']).next().unwrap_or(path).to_owned();
            Ok(MixEntry {
                weight,
                handling: handling_of(path),
                path: path.to_owned(),
                target,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if entries.is_empty() {
        return Err(format!("no entries ({example})"));
    }
    Ok(entries)
}

/// The handling a gateway path exercises: a `handling=` parameter (fan-out), else an
/// `async`/`threadpool` path segment (proxy), `both` for compare, the gateway's default
/// (`async`) for a fan-out without one, `none` for anything else.
fn handling_of(path: &str) -> &'static str {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let named = |value: &str| Handling::from_name(value).map(Handling::as_str);
    if let Some(h) = query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("handling="))
        .find_map(named)
    {
        return h;
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if let Some(h) = segments.iter().find_map(|s| named(s)) {
        return h;
    }
    if segments.contains(&"compare") {
        "both"
    } else if segments.contains(&"fanout") {
        "async"
    } else {
        "none"
    }
}

/// Smooth weighted round-robin (nginx's): one cycle of entry indexes, each `weight` times,
/// interleaved as evenly as the weights allow (4:a,1:b gives a a b a a, not a a a a b).
fn weighted_cycle(weights: &[u32]) -> Vec<usize> {
    let total: i64 = weights.iter().map(|&w| i64::from(w)).sum();
    let mut current = vec![0i64; weights.len()];
    (0..total)
        .map(|_| {
            for (c, &w) in current.iter_mut().zip(weights) {
                *c += i64::from(w);
            }
            let (pick, _) = current
                .iter()
                .enumerate()
                .max_by_key(|&(i, &c)| (c, std::cmp::Reverse(i)))
                .unwrap_or((0, &0));
            current[pick] -= total;
            pick
        })
        .collect()
}

/// The client-side instruments.
#[derive(Clone)]
struct ClientMetrics {
    requests: Counter<u64>,
    duration: Histogram<f64>,
}

impl ClientMetrics {
    fn new(meter: &Meter) -> Self {
        Self {
            requests: meter
                .u64_counter(CLIENT_REQUESTS)
                .with_description("Requests loadgen sent, by mix target, handling and outcome")
                .build(),
            duration: meter
                .f64_histogram(CLIENT_REQUEST_DURATION)
                .with_unit("s")
                .with_description(
                    "Client-side latency, from the intended send time to the whole answer",
                )
                .with_boundaries(common::metrics::names::LATENCY_BUCKETS.to_vec())
                .build(),
        }
    }

    fn record(&self, entry: &MixEntry, outcome: &'static str, took: Duration) {
        let labels = [
            KeyValue::new("target", entry.target.clone()),
            KeyValue::new("handling", entry.handling),
            KeyValue::new("outcome", outcome),
        ];
        self.requests.add(1, &labels);
        self.duration.record(took.as_secs_f64(), &labels);
    }
}

/// The traffic: what to send, where, how often.
struct Traffic {
    entries: Vec<MixEntry>,
    urls: Vec<String>,
    cycle: Vec<usize>,
    rate: f64,
    timeout: Duration,
    client: reqwest::Client,
}

impl Traffic {
    fn from_args(args: &ServeArgs) -> Result<Self, String> {
        if !(args.rate.is_finite() && args.rate > 0.0 && args.rate <= MAX_RATE) {
            return Err(format!(
                "--rate must be a number of requests per second above 0 and at most {MAX_RATE}, got {}",
                args.rate
            ));
        }
        let base = args.gateway_url.trim_end_matches('/');
        load::check_url(base).map_err(|e| format!("--gateway-url: {e}"))?;
        let entries = parse_mix(&args.mix).map_err(|e| format!("--mix: {e}"))?;
        let urls = entries
            .iter()
            .map(|e| {
                let url = format!("{base}{}", e.path);
                load::check_url(&url)
                    .map(|()| url)
                    .map_err(|err| format!("--mix: entry `{}`: {err}", e.path))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let weights: Vec<u32> = entries.iter().map(|e| e.weight).collect();
        let client = reqwest::Client::builder()
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            cycle: weighted_cycle(&weights),
            entries,
            urls,
            rate: args.rate,
            timeout: args.timeout,
            client,
        })
    }

    /// Sends on schedule until SIGTERM/SIGINT; the requests in flight then are dropped.
    async fn run(self: Arc<Self>, metrics: ClientMetrics) {
        let mix: Vec<String> = self
            .entries
            .iter()
            .map(|e| format!("{}:{}", e.weight, e.path))
            .collect();
        tracing::info!(rate = self.rate, mix = %mix.join(","), "traffic started");
        let stop = common::shutdown::signal();
        tokio::pin!(stop);
        let mut tasks = JoinSet::new();
        // Request i leaves at base + (i - base_i) / rate; the base moves only when the
        // scheduler falls too far behind.
        let (mut base, mut base_i) = (Instant::now(), 0u64);
        let mut sent = 0u64;
        for i in 0u64.. {
            let mut due = base + load::intended_offset(i - base_i, self.rate);
            let lag = Instant::now().saturating_duration_since(due);
            if lag > MAX_SCHEDULE_LAG {
                tracing::warn!(
                    lag_ms = lag.as_millis() as u64,
                    "the traffic scheduler fell behind; skipping the sends it missed"
                );
                (base, base_i) = (Instant::now(), i);
                due = base;
            }
            tokio::select! {
                () = tokio::time::sleep_until(due) => {}
                _ = &mut stop => break,
            }
            while tasks.try_join_next().is_some() {}
            let n = self.cycle[(i % self.cycle.len() as u64) as usize];
            let (traffic, metrics) = (self.clone(), metrics.clone());
            tasks.spawn(async move {
                let outcome = traffic.send(n).await;
                let took = Instant::now().saturating_duration_since(due);
                metrics.record(&traffic.entries[n], outcome, took);
            });
            sent += 1;
        }
        tracing::info!(
            sent,
            in_flight = tasks.len(),
            "traffic stopped: shutdown requested"
        );
    }

    /// One request to entry `n`, its body read: the outcome label.
    async fn send(&self, n: usize) -> &'static str {
        let result = async {
            let response = self
                .client
                .get(&self.urls[n])
                .timeout(self.timeout)
                .send()
                .await?;
            let ok = response.status().is_success();
            response.bytes().await?;
            Ok::<bool, reqwest::Error>(ok)
        }
        .await;
        match result {
            Ok(true) => "ok",
            Ok(false) => "error_status",
            Err(e) => classify(&e).outcome(),
        }
    }
}

/// Checks the flags, then runs as a loopscope service: /healthz, /readyz and /metrics on the
/// admin port, JSON logs, Sentry, the drain. The traffic is the service's background task: it
/// starts when the server listens, on the actix System's thread, and stops at SIGTERM.
pub fn main(args: ServeArgs) -> ExitCode {
    let traffic = match Traffic::from_args(&args) {
        Ok(t) => Arc::new(t),
        Err(e) => {
            eprintln!("loadgen serve: {e}");
            return ExitCode::from(2);
        }
    };
    let service = common::ServiceInfo {
        name: "loadgen",
        handling: None,
        default_port: ports::LOADGEN.app,
        default_admin_port: ports::LOADGEN.admin,
    };
    common::run_with_background(service, args.server, move |telemetry| {
        let metrics = ClientMetrics::new(&telemetry.meter());
        let traffic: common::Background = Box::pin(traffic.run(metrics));
        Ok((|_: &mut web::ServiceConfig| {}, Some(traffic)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_parses_into_targets_and_handlings() {
        let mix = parse_mix(crate::cli::DEFAULT_MIX).expect("the default mix parses");
        assert_eq!(mix.len(), 7);
        assert_eq!(mix[0].weight, 4);
        assert_eq!(mix[0].target, "/api/async/work/io");
        assert_eq!(mix[0].handling, "async");
        assert_eq!(mix[1].handling, "threadpool");
        assert_eq!(mix[6].target, "/api/compare");
        assert_eq!(mix[6].handling, "both");
        assert_eq!(mix[6].path, "/api/compare?kind=io&ms=20");
        let one = |p: &str| parse_mix(&format!("1:{p}")).expect("valid")[0].handling;
        assert_eq!(one("/api/fanout?n=3&handling=threadpool"), "threadpool");
        assert_eq!(one("/api/fanout?n=3"), "async");
        assert_eq!(one("/healthz"), "none");
        assert_eq!(
            parse_mix(" 2:/a , 3:/b ,")
                .expect("spaces and a trailing comma")
                .len(),
            2
        );
    }

    #[test]
    fn a_bad_mix_says_what_is_wrong() {
        for (mix, says) in [
            ("", "no entries"),
            ("x", "weight:path"),
            ("a:/x", "whole number"),
            ("0:/x", "between 1"),
            ("2:x", "start with `/`"),
            ("1:/ok,5000:/x", "between 1"),
        ] {
            let e = parse_mix(mix).expect_err(mix);
            assert!(e.contains(says), "{mix}: {e}");
        }
    }

    #[test]
    fn the_cycle_interleaves_by_weight() {
        assert_eq!(weighted_cycle(&[4, 1]), vec![0, 0, 1, 0, 0]);
        assert_eq!(weighted_cycle(&[1, 1, 1]), vec![0, 1, 2]);
        let cycle = weighted_cycle(&[4, 4, 2, 2, 1, 1, 1]);
        assert_eq!(cycle.len(), 15);
        for (i, w) in [4, 4, 2, 2, 1, 1, 1].iter().enumerate() {
            assert_eq!(cycle.iter().filter(|&&c| c == i).count(), *w);
        }
    }
}

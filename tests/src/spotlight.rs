//! Spotlight, Sentry's local receiver, as a test fixture: what the services send to "Sentry"
//! can be asserted on, with no account and no network.
//!
//! [`Spotlight::start`] runs `spotlight server -p 0` from `tools/spotlight` (installed by
//! `make tools`), reads the port it bound, and subscribes to its `/stream` endpoint: the
//! server-sent events that `spotlight tail` and the Spotlight UI read too. Each event there
//! is one whole envelope as Spotlight parsed it, `[header, [[item header, payload], ...]]`, so
//! the tests see the full payloads (tags, release, exception, `contexts.trace`, `extra`,
//! `request`), where `spotlight tail -f json` prints a flattened summary of errors and traces.
//! The process is killed when the fixture is dropped.
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// `tools/spotlight/node_modules/.bin/spotlight`; panics with how to install it if missing.
pub fn binary() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tools/spotlight/node_modules/.bin/spotlight");
    assert!(
        path.exists(),
        "Spotlight is not installed ({} is missing): run `make tools` (or `make spotlight`, \
         i.e. `npm ci` in tools/spotlight) first",
        path.display()
    );
    path
}

#[derive(Default)]
struct Received {
    /// Every envelope item payload, in arrival order, with its item type in `type`.
    items: Mutex<Vec<Value>>,
    arrived: Condvar,
}

/// A running Spotlight server and everything it has received since it started.
pub struct Spotlight {
    child: Child,
    pub port: u16,
    received: Arc<Received>,
    output: Arc<Mutex<Vec<String>>>,
}

impl Spotlight {
    /// Starts Spotlight on a free port and returns once its event stream is subscribed, so
    /// nothing a service sends afterwards can be missed.
    pub fn start() -> Self {
        let mut cmd = Command::new(binary());
        cmd.args(["server", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, _) in std::env::vars() {
            if key.starts_with("SENTRY_") {
                cmd.env_remove(key);
            }
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start Spotlight (is Node.js installed?): {e}"));
        let output: Arc<Mutex<Vec<String>>> = Arc::default();
        let (tx, rx) = mpsc::channel();
        // Its banner and logs go to both pipes; drain them for its whole life.
        for pipe in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let output = output.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Some(port) = line
                        .split("listening on ")
                        .nth(1)
                        .and_then(|rest| rest.trim().parse::<u16>().ok())
                    {
                        let _ = tx.send(port);
                    }
                    output.lock().unwrap().push(line);
                }
            });
        }
        let port = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "Spotlight did not say which port it listens on within 30 s; its output:\n{}",
                    output.lock().unwrap().join("\n")
                );
            }
        };
        let mut spotlight = Self {
            child,
            port,
            received: Arc::default(),
            output,
        };
        spotlight.subscribe();
        spotlight
    }

    /// The DSN that makes a Sentry SDK send its envelopes here.
    pub fn dsn(&self) -> String {
        format!("http://public@127.0.0.1:{}/0", self.port)
    }

    fn subscribe(&mut self) {
        let url = format!(
            "http://127.0.0.1:{}/stream?client=loopscope-tests",
            self.port
        );
        // No overall timeout: the stream stays open until Spotlight is killed.
        let client = reqwest::blocking::Client::builder()
            .timeout(None)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("client");
        let deadline = Instant::now() + Duration::from_secs(20);
        let response = loop {
            match client.get(&url).send() {
                Ok(r) if r.status().is_success() => break r,
                outcome if Instant::now() >= deadline => {
                    panic!(
                        "cannot subscribe to Spotlight's {url}: {outcome:?}; its output:\n{}",
                        self.output()
                    )
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        let received = self.received.clone();
        std::thread::spawn(move || read_stream(response, &received));
    }

    /// Every envelope item received so far (events, transactions, client reports, ...).
    pub fn items(&self) -> Vec<Value> {
        self.received.items.lock().unwrap().clone()
    }

    /// Error and message events (item type `event`).
    pub fn errors(&self) -> Vec<Value> {
        of_type(self.items(), "event")
    }

    pub fn transactions(&self) -> Vec<Value> {
        of_type(self.items(), "transaction")
    }

    /// Waits up to `limit` for an item matching `matches`, and returns the first one. Panics,
    /// listing everything received, if none arrives; `what` says what was awaited.
    pub fn wait_for(&self, what: &str, limit: Duration, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        let mut items = self.received.items.lock().unwrap();
        loop {
            if let Some(found) = items.iter().find(|item| matches(item)) {
                return found.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let seen: Vec<String> = items.iter().map(summary).collect();
                drop(items);
                panic!(
                    "Spotlight received no {what} within {limit:?}. It received {} item(s):\n  {}\n\
                     Spotlight's output:\n{}",
                    seen.len(),
                    seen.join("\n  "),
                    self.output()
                );
            }
            items = self.received.arrived.wait_timeout(items, left).unwrap().0;
        }
    }

    /// Spotlight's own output (banner, warnings such as "No content type, skipping payload").
    pub fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }
}

impl Drop for Spotlight {
    fn drop(&mut self) {
        // Killing it also ends the stream, and with it the reader thread.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn of_type(items: Vec<Value>, kind: &str) -> Vec<Value> {
    items.into_iter().filter(|i| i["type"] == kind).collect()
}

/// Reads server-sent events: `event:` and `data:` lines, a blank line ending each event.
fn read_stream(response: reqwest::blocking::Response, received: &Received) {
    let mut event = String::new();
    let mut data = String::new();
    for line in BufReader::new(response).lines() {
        let Ok(line) = line else { return };
        if line.is_empty() {
            if event.starts_with("application/x-sentry-envelope")
                && let Ok(envelope) = serde_json::from_str::<Value>(&data)
            {
                let payloads = envelope[1]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|item| item.get(1).filter(|p| p.is_object()).cloned());
                received.items.lock().unwrap().extend(payloads);
                received.arrived.notify_all();
            }
            event.clear();
            data.clear();
        } else if let Some(value) = line.strip_prefix("event:") {
            event = value.trim().to_owned();
        } else if let Some(value) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(value.strip_prefix(' ').unwrap_or(value));
        }
    }
}

/// A tag of an event or transaction.
pub fn tag<'a>(item: &'a Value, name: &str) -> Option<&'a str> {
    item["tags"][name].as_str()
}

/// `contexts.trace.<field>`: `trace_id`, `span_id`, `parent_span_id`, `op`, `status`.
pub fn trace<'a>(item: &'a Value, field: &str) -> Option<&'a str> {
    item["contexts"]["trace"][field].as_str()
}

/// The URL of the request an event or transaction belongs to.
pub fn request_url(item: &Value) -> Option<&str> {
    item["request"]["url"].as_str()
}

/// The first exception's type and value.
pub fn exception(item: &Value) -> Option<(&str, &str)> {
    let first = &item["exception"]["values"][0];
    Some((
        first["type"].as_str()?,
        first["value"].as_str().unwrap_or(""),
    ))
}

/// One line describing an item, for failure messages.
pub fn summary(item: &Value) -> String {
    let what = exception(item)
        .map(|(t, v)| format!("{t}: {v}"))
        .or_else(|| item["message"].as_str().map(str::to_owned))
        .or_else(|| item["transaction"].as_str().map(str::to_owned))
        .unwrap_or_default();
    format!(
        "{} {what:?} tags={} trace={} url={}",
        item["type"].as_str().unwrap_or("?"),
        item["tags"],
        trace(item, "trace_id").unwrap_or("-"),
        request_url(item).unwrap_or("-"),
    )
}

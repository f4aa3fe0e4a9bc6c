//! The harness of the cross-service tests: it starts the real binaries on free ports, reads
//! the ports they bound from their "listening" log line, and talks HTTP to them. No mocks.
//!
//! The binaries come from `target/debug` (or `$LOOPSCOPE_BIN_DIR`); `make test` builds them
//! first. Tests never change their own environment: each child gets its settings as flags,
//! and inherited LOOPSCOPE_* and SENTRY_* variables are removed.
//!
//! The captured start, scrubbing, signals and waits come from the launcher's library
//! (services/launcher): the process layer `loopscope up` starts the local stack with.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use launcher::capture::{LISTENING, Lines, listening_addrs, spawn_captured};

use contract::ErrorBody;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub mod machine;
pub mod metrics;
pub mod prometheus;
pub mod spotlight;
pub mod stack;

/// Where the service binaries are.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LOOPSCOPE_BIN_DIR") {
        return dir.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("debug")
}

pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` (make test does) first",
        path.display()
    );
    assert_built_from_current_sources(&path);
    path
}

/// Panics when a workspace source file the binary was built from changed after it was
/// built: the tests would run the old code and fail (or pass) for it. `cargo test -p
/// loopscope-tests` does not build the services; `make test` does. The sources are the ones
/// cargo lists in its dep-info file beside the binary; without one, nothing is checked.
fn assert_built_from_current_sources(binary: &Path) {
    static CHECKED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    let mut checked = CHECKED.lock().unwrap_or_else(PoisonError::into_inner);
    if checked.iter().any(|b| b == binary) {
        return;
    }
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let (Some(built), Ok(dep_info)) = (
        modified(binary),
        std::fs::read_to_string(binary.with_extension("d")),
    ) else {
        return;
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("/"));
    let newer: Vec<&str> = dep_info
        .split_once(": ")
        .map_or("", |(_, sources)| sources)
        .split_whitespace()
        // The git HEAD the build script watches for the revision moves with every commit.
        .filter(|s| Path::new(s).starts_with(workspace) && !s.contains("/.git/"))
        .filter(|s| modified(Path::new(s)).is_some_and(|m| m > built))
        .collect();
    assert!(
        newer.is_empty(),
        "{} is older than its sources ({}{}): run `cargo build --workspace --bins` (make test \
         does) first",
        binary.display(),
        newer[..newer.len().min(3)].join(", "),
        if newer.len() > 3 { ", …" } else { "" }
    );
    checked.push(binary.to_owned());
}

/// A running service process, killed when dropped.
pub struct Service {
    child: Child,
    pub app: SocketAddr,
    pub admin: Option<SocketAddr>,
    logs: Lines,
}

/// Starts `name` with `args` plus free ports, waiting until it logs that it listens.
pub fn start(name: &str, args: &[&str]) -> Service {
    start_with_env(name, args, &[])
}

pub fn start_with_env(name: &str, args: &[&str], env: &[(&str, &str)]) -> Service {
    launch(name, &[], args, env)
}

/// `loadgen serve` with `args`, on free ports: a service too, behind a subcommand.
pub fn start_loadgen_serve(args: &[&str]) -> Service {
    launch("loadgen", &["serve"], args, &[])
}

/// A command for one of our binaries with piped output and none of the caller's
/// `LOOPSCOPE_*` / `SENTRY_*` settings: a test sees only the settings it passes.
pub fn service_command(name: &str) -> Command {
    let mut cmd = launcher::process::scrubbed_command(bin(name));
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

fn launch(name: &str, subcommand: &[&str], args: &[&str], env: &[(&str, &str)]) -> Service {
    let mut cmd = service_command(name);
    cmd.args(subcommand)
        .args(["--port", "0", "--admin-port", "0"])
        .args(args);
    cmd.env("LOOPSCOPE_LOG_FORMAT", "json")
        .env("RUST_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut started =
        spawn_captured(&mut cmd, LISTENING).unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let Some(line) = started.wait_for(Duration::from_secs(20)) else {
        let _ = started.child.kill();
        panic!(
            "{name} did not start within 20 s; its output:\n{}",
            started.lines().join("\n")
        )
    };
    let (app, admin) = listening_addrs(&line).expect("app_addr in the listening line");
    let logs = started.line_buffer();
    Service {
        child: started.child,
        app,
        admin,
        logs,
    }
}

impl Service {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.app)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!(
            "http://{}{path}",
            self.admin.expect("this service has an admin port")
        )
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.app)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// GET on the app port: status and JSON body (Null when the body is not JSON).
    pub fn get(&self, path: &str) -> (u16, Value) {
        get(&self.url(path))
    }

    /// GET on the app port: status and the body read as a reply type of the contract.
    pub fn get_as<T: DeserializeOwned>(&self, path: &str) -> (u16, T) {
        get_as(&self.url(path))
    }

    /// The Prometheus text of the admin port.
    pub fn metrics(&self) -> String {
        get_text(&self.admin_url("/metrics")).1
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Sends `sig` (a `libc::SIG*` number) to the process.
    pub fn signal(&self, sig: i32) {
        let sig = launcher::process::Signal::try_from(sig).expect("a signal number");
        launcher::process::signal(self.child.id(), sig);
    }

    /// Waits for the process to exit, up to `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        launcher::process::wait_timeout(&mut self.child, limit)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One client per call: no pooled connection survives into another test step, and each
/// request of a concurrent batch gets its own connection.
pub fn client(timeout: Duration) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(timeout)
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

pub fn get(url: &str) -> (u16, Value) {
    let (status, text) = get_text(url);
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// GET: status and the body read as `T`, a reply type of the contract; fails the test,
/// showing the body, when it is not one.
pub fn get_as<T: DeserializeOwned>(url: &str) -> (u16, T) {
    let (status, text) = get_text(url);
    match serde_json::from_str(&text) {
        Ok(body) => (status, body),
        Err(e) => panic!(
            "GET {url}: {status}, not a {} ({e}): {text}",
            std::any::type_name::<T>()
        ),
    }
}

/// A JSON value (a body already read, or a part of one) as a reply type of the contract.
pub fn read_as<T: DeserializeOwned>(value: &Value) -> T {
    T::deserialize(value)
        .unwrap_or_else(|e| panic!("not a {} ({e}): {value}", std::any::type_name::<T>()))
}

pub fn get_text(url: &str) -> (u16, String) {
    let res = client(Duration::from_secs(30))
        .get(url)
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    (res.status().as_u16(), res.text().unwrap_or_default())
}

/// A whole answer: status, headers and JSON body (Null when the body is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// A response header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// GET with a client of `timeout` and extra request `headers`; `Err` when no answer came
/// (the connection closed or the client timed out), for tests whose point is that case.
pub fn try_get_reply(
    url: &str,
    timeout: Duration,
    headers: &[(&str, &str)],
) -> Result<Reply, reqwest::Error> {
    let mut request = client(timeout).get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let res = request.send()?;
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = serde_json::from_str(&res.text()?).unwrap_or(Value::Null);
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// [`try_get_reply`] that fails the test when no answer came.
pub fn get_reply(url: &str, timeout: Duration, headers: &[(&str, &str)]) -> Reply {
    try_get_reply(url, timeout, headers).unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// The DSN of a Sentry "host" listening at `addr` (a test's own listener).
pub fn dsn_at(addr: SocketAddr) -> String {
    format!("http://public@{addr}/0")
}

/// Sends all `urls` at once, each on its own thread and connection; returns in input order
/// the status, body and the client-side time from the common start to the answer.
pub fn get_concurrently(urls: &[String]) -> Vec<(u16, Value, Duration)> {
    let start = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = urls
            .iter()
            .map(|url| {
                s.spawn(move || {
                    let (status, body) = get(url);
                    (status, body, start.elapsed())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("request thread"))
            .collect()
    })
}

/// Asserts a 400 with a JSON error body that names `param`.
pub fn assert_bad_request(svc: &Service, path: &str, param: &str) {
    let (status, body): (_, ErrorBody) = svc.get_as(path);
    assert_eq!(status, 400, "{path}: {body:?}");
    assert_eq!(body.error, "bad_request", "{path}: {body:?}");
    assert_eq!(body.param.as_deref(), Some(param), "{path}: {body:?}");
    assert!(!body.message.is_empty(), "{path}: {body:?}");
    assert!(
        body.request_id.as_ref().is_some_and(|id| !id.is_empty()),
        "{path}: {body:?}"
    );
}

/// Waits up to a minute (a debug build on a busy machine) for a log line containing `text`.
pub fn wait_for_log(svc: &Service, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !svc.logs().iter().any(|l| l.contains(text)) {
        assert!(
            Instant::now() < deadline,
            "no log line with {text:?} within 60 s:\n{}",
            svc.logs().join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `args`, reporting to Sentry at `dsn` with `traces` as the traces sample rate.
pub fn reporting_to<'a>(dsn: &'a str, traces: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    [
        args,
        &["--sentry-dsn", dsn, "--sentry-traces-sample-rate", traces],
    ]
    .concat()
}

/// Ports for a process that is told its ports (it does not bind 0 and say which it got).
/// A port `bind(0)` returned is in the kernel's ephemeral range: once we close it, another
/// test's outgoing connection or listener may get it before the process binds it (it
/// happened: "cannot bind the admin port …: Address already in use"). The kernel hands out
/// none below that range by itself, so these come from there.
pub fn quiet_port_numbers(n: usize) -> Vec<u16> {
    quiet_ports(n)
        .iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect()
}

/// `n` listeners on ports the kernel does not hand out by itself: random ones in the 10,000
/// below its ephemeral range (so two tests picking at once rarely try the same), or any free
/// ports if that range starts too low to leave room.
pub fn quiet_ports(n: usize) -> Vec<std::net::TcpListener> {
    use std::hash::BuildHasher;
    let ephemeral_start: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let any = || std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    if ephemeral_start < 11_024 {
        return (0..n).map(|_| any()).collect();
    }
    let low = ephemeral_start - 10_000;
    let random = std::collections::hash_map::RandomState::new();
    let mut listeners = Vec::with_capacity(n);
    for attempt in 0u64.. {
        if listeners.len() == n {
            break;
        }
        assert!(
            attempt < 10_000,
            "no {n} free ports in {low}..{ephemeral_start}"
        );
        let port = low + (random.hash_one(attempt) % 10_000) as u16;
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            listeners.push(l);
        }
    }
    listeners
}

/// A TCP port that accepts connections and never answers: a hung dependency.
pub fn black_hole() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    (listener, url)
}

/// A port nothing listens on.
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    url
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    #[test]
    fn quiet_ports_are_distinct_free_and_below_the_ephemeral_range() {
        let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .expect("the ephemeral range");
        let start: u16 = range.split_whitespace().next().unwrap().parse().unwrap();
        let ports = quiet_port_numbers(11);
        assert_eq!(ports.len(), 11);
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 11, "{ports:?}");
        assert!(
            ports.iter().all(|&p| p < start && p >= start - 10_000),
            "{ports:?} not in the 10,000 below {start}"
        );
        // Closed again: free for the process they are for.
        for port in ports {
            std::net::TcpListener::bind(("127.0.0.1", port)).expect("free again");
        }
    }

    #[test]
    fn a_binary_older_than_a_source_it_lists_is_refused() {
        // Inside the workspace (only its files are checked), in a folder of this test's own.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/stale-binary-test")
            .join(std::process::id().to_string());
        std::fs::create_dir_all(&dir).expect("a folder");
        let (binary, source) = (dir.join("service"), dir.join("main.rs"));
        std::fs::write(&source, "fn main() {}").expect("a source");
        std::fs::write(&binary, "").expect("a binary");
        std::fs::write(
            binary.with_extension("d"),
            format!("{}: {}\n", binary.display(), source.display()),
        )
        .expect("dep-info");
        let set_age = |path: &Path, secs_ago: u64| {
            let at = SystemTime::now() - Duration::from_secs(secs_ago);
            std::fs::File::options()
                .write(true)
                .open(path)
                .and_then(|f| f.set_modified(at))
                .expect("set mtime");
        };
        // Built after its source changed: accepted.
        set_age(&source, 20);
        set_age(&binary, 10);
        assert_built_from_current_sources(&binary);
        // A fresh binary path (the check is remembered per binary) built before the change.
        let stale = dir.join("stale");
        std::fs::copy(&binary, &stale).expect("a copy");
        std::fs::copy(binary.with_extension("d"), stale.with_extension("d")).expect("a copy");
        set_age(&stale, 30);
        let refused = std::panic::catch_unwind(|| assert_built_from_current_sources(&stale));
        let _ = std::fs::remove_dir_all(&dir);
        let message = refused.expect_err("a stale binary is refused");
        let text = message
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(
            text.contains("is older than its sources") && text.contains("main.rs"),
            "{text}"
        );
    }
}

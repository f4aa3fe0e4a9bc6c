//! `loopscope` (services/launcher), the launcher behind `make up`, `make down` and
//! `make demo`, run for real: the whole stack and a Prometheus on free ports, every service
//! ready, the scrape targets from this run's ports, then `down` (or Ctrl-C) and nothing left.
//! Each test has its own state folder and ports, so they run in parallel with each other and
//! with a `make up` on the default ports.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use launcher::process::is_alive;
use loopscope_tests::{bin, get_text, service_command};
use serde_json::Value;

/// A state folder of this test's own, emptied; dropped, it stops whatever is still recorded
/// there (a failed assertion must not leave a stack running) and is removed.
struct StateDir(PathBuf);

impl StateDir {
    fn new(test: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("loopscope-launcher-{}-{test}", std::process::id()));
        Self(dir)
    }
}

impl std::ops::Deref for StateDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        if self.0.join("state.json").exists() {
            let _ = loopscope("down", &self.0, &[]).output();
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Flags for every port `up` needs, each a port free right now
/// ([`loopscope_tests::quiet_ports`]).
fn free_port_flags() -> Vec<String> {
    let names = [
        "gateway",
        "gateway-admin",
        "worker-async",
        "worker-async-admin",
        "worker-threadpool",
        "worker-threadpool-admin",
        "backend",
        "backend-admin",
        "prometheus",
        "spotlight",
        "grafana",
    ];
    // All listeners open at once, so no two names get the same port.
    let listeners = loopscope_tests::quiet_ports(names.len());
    names
        .iter()
        .zip(&listeners)
        .flat_map(|(name, l)| {
            [
                format!("--{name}-port"),
                l.local_addr().expect("addr").port().to_string(),
            ]
        })
        .collect()
}

fn port_of(flags: &[String], name: &str) -> u16 {
    let i = flags
        .iter()
        .position(|f| *f == format!("--{name}-port"))
        .expect(name);
    flags[i + 1].parse().expect("port")
}

/// `loopscope SUBCOMMAND --state-dir DIR ARGS...`, no Spotlight or Grafana (not on the test
/// machines); Prometheus is required (make test-rust installs it).
fn loopscope(sub: &str, dir: &Path, args: &[String]) -> Command {
    let mut cmd = service_command("loopscope");
    cmd.arg(sub).arg("--state-dir").arg(dir).args(args);
    if sub != "down" {
        cmd.args([
            "--spotlight",
            "no",
            "--grafana",
            "no",
            "--prometheus",
            "yes",
        ]);
        cmd.args(["--ready-timeout", "60"]);
    }
    cmd
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// (name, pid) of every process `up` recorded.
fn recorded(dir: &Path) -> Vec<(String, u32)> {
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("state.json")).expect("state.json"))
            .expect("JSON");
    state["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().expect("name").to_owned(),
                p["pid"].as_u64().expect("pid") as u32,
            )
        })
        .collect()
}

fn assert_all_gone(procs: &[(String, u32)]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alive: Vec<_> = procs.iter().filter(|(_, pid)| is_alive(*pid)).collect();
        if alive.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still running after the stop: {alive:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every service answers its admin /readyz, and Prometheus scrapes exactly this run's admin ports.
fn assert_stack_answers(flags: &[String], procs: &[(String, u32)]) {
    let names: Vec<&str> = procs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "backend",
            "worker-async",
            "worker-threadpool",
            "gateway",
            "prometheus"
        ],
        "start order"
    );
    for name in ["backend", "worker-async", "worker-threadpool", "gateway"] {
        let admin = port_of(flags, &format!("{name}-admin"));
        let (status, body) = get_text(&format!("http://127.0.0.1:{admin}/readyz"));
        assert_eq!(status, 200, "{name} admin /readyz: {body}");
    }
    // The gateway reaches both workers, which reach the backend: the wiring used this run's ports.
    let gateway = port_of(flags, "gateway");
    let (status, body) = get_text(&format!(
        "http://127.0.0.1:{gateway}/api/compare?kind=call&ms=1"
    ));
    assert_eq!(status, 200, "{body}");

    // File-based discovery reads the targets files shortly after Prometheus is ready.
    let prometheus = port_of(flags, "prometheus");
    let want: Vec<(String, String)> = ["backend", "worker-async", "worker-threadpool", "gateway"]
        .iter()
        .map(|name| {
            let admin = port_of(flags, &format!("{name}-admin"));
            (
                (*name).to_owned(),
                format!("http://127.0.0.1:{admin}/metrics"),
            )
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = get_text(&format!("http://127.0.0.1:{prometheus}/api/v1/targets"));
        assert_eq!(status, 200, "{body}");
        let targets: Value = serde_json::from_str(&body).expect("JSON");
        let scraped: Vec<(String, String)> = targets["data"]["activeTargets"]
            .as_array()
            .expect("activeTargets")
            .iter()
            .map(|t| {
                let job = t["labels"]["job"].as_str().unwrap_or("?").to_owned();
                (job, t["scrapeUrl"].as_str().unwrap_or("?").to_owned())
            })
            .collect();
        if want.iter().all(|w| scraped.contains(w)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus does not scrape {want:?} within 30 s: {scraped:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn up_in_the_background_then_down_leaves_nothing_running() {
    let _machine = loopscope_tests::machine::shared();
    let dir = StateDir::new("background");
    let flags = free_port_flags();
    let out = loopscope(
        "up",
        &dir,
        &[&["--background".to_owned()][..], &flags].concat(),
    )
    .output()
    .expect("run loopscope");
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("loopscope is up"), "{}", text(&out));
    assert!(
        stdout.contains("waiting for backend"),
        "progress lines: {}",
        text(&out)
    );

    let procs = recorded(&dir);
    assert_stack_answers(&flags, &procs);

    // The config Prometheus runs is complete: every targets file and the rules are there.
    let check = Command::new("promtool")
        .args(["check", "config"])
        .arg(dir.join("prometheus/prometheus.yml"))
        .output()
        .expect("promtool (make prometheus)");
    assert!(check.status.success(), "{}", text(&check));
    assert!(!text(&check).contains("WARNING"), "{}", text(&check));
    assert!(
        text(&check).contains("1 rule files found"),
        "{}",
        text(&check)
    );

    // A second `up` on the same state refuses, and names what runs.
    let again = loopscope("up", &dir, &flags).output().expect("run");
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already running"),
        "{}",
        text(&again)
    );

    let down = loopscope("down", &dir, &[]).output().expect("run down");
    assert!(down.status.success(), "{}", text(&down));
    assert!(
        String::from_utf8_lossy(&down.stdout).contains("loopscope stopped"),
        "{}",
        text(&down)
    );
    assert_all_gone(&procs);
    assert!(!dir.join("state.json").exists(), "state.json left behind");

    // Nothing to stop is not an error.
    let down = loopscope("down", &dir, &[]).output().expect("run down");
    assert!(down.status.success(), "{}", text(&down));
    assert!(
        String::from_utf8_lossy(&down.stdout).contains("not running"),
        "{}",
        text(&down)
    );
}

#[test]
fn up_in_the_foreground_stops_everything_on_ctrl_c() {
    let _machine = loopscope_tests::machine::shared();
    let dir = StateDir::new("foreground");
    let flags = free_port_flags();
    let mut child = loopscope("up", &dir, &flags)
        .spawn()
        .expect("run loopscope");
    let stdout = child.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let done = line.contains("Ctrl-C stops everything");
        seen.push(line);
        if done {
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l.contains("Ctrl-C stops everything")),
        "loopscope up did not come up:\n{}",
        seen.join("\n")
    );
    let procs = recorded(&dir);
    assert_stack_answers(&flags, &procs);

    launcher::process::signal(child.id(), launcher::process::Signal::SIGINT);
    let status = launcher::process::wait_timeout(&mut child, Duration::from_secs(60))
        .expect("loopscope up stops within 60 s of SIGINT");
    assert!(status.success(), "exit {status:?} after SIGINT");
    assert_all_gone(&procs);
    assert!(!dir.join("state.json").exists(), "state.json left behind");
}

#[test]
fn a_port_in_use_is_named_and_nothing_starts() {
    let _machine = loopscope_tests::machine::shared();
    let dir = StateDir::new("busy");
    let mut flags = free_port_flags();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let i = flags
        .iter()
        .position(|f| f == "--backend-admin-port")
        .expect("flag");
    flags[i + 1] = port.to_string();
    let out = loopscope(
        "up",
        &dir,
        &[&["--background".to_owned()][..], &flags].concat(),
    )
    .output()
    .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("port {port} (backend admin) is already in use")),
        "{}",
        text(&out)
    );
    assert!(
        !dir.join("state.json").exists(),
        "something was started: {}",
        text(&out)
    );
}

#[test]
fn a_service_that_dies_while_starting_fails_up_with_its_log() {
    let _machine = loopscope_tests::machine::shared();
    // A bin folder whose backend exits at once; the others are the real ones (never reached).
    let dir = StateDir::new("dies");
    let bins = dir.join("bin");
    std::fs::create_dir_all(&bins).expect("mkdir");
    let backend = bins.join("backend");
    std::fs::write(&backend, "#!/bin/sh\necho 'cannot bind: pretend'\nexit 3\n").expect("write");
    std::fs::set_permissions(
        &backend,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    for name in ["worker", "gateway"] {
        std::os::unix::fs::symlink(bin(name), bins.join(name)).expect("symlink");
    }
    let flags = free_port_flags();
    let bin_dir = ["--bin-dir".to_owned(), bins.display().to_string()];
    let out = loopscope(
        "up",
        &dir,
        &[&["--background".to_owned()][..], &bin_dir, &flags].concat(),
    )
    .output()
    .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("backend exited during startup (status 3)"),
        "{}",
        text(&out)
    );
    assert!(
        stderr.contains("cannot bind: pretend"),
        "the log tail: {}",
        text(&out)
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("waiting for worker"),
        "{}",
        text(&out)
    );
    assert!(!dir.join("state.json").exists(), "{}", text(&out));
}

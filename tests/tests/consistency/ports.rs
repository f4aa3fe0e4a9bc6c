//! Default ports: the binaries, the README, services/ports and the local Prometheus config.

use std::collections::BTreeMap;
use std::time::Duration;

use launcher::capture::{LISTENING, spawn_captured};

use loopscope_tests::service_command;
use serde_json::Value;

use crate::consistency::flags::help_flags;
use crate::consistency::readme::{rows, section};
use crate::consistency::repo::read;

/// The processes of the README's table of services, as the launcher and Prometheus name them.
pub(crate) const PROCESSES: &[(&str, &str, &[&str])] = &[
    // (key, README's process cell, binary and arguments)
    ("gateway", "`gateway`", &["gateway"]),
    (
        "worker-async",
        "`worker --handling async`",
        &["worker", "--handling", "async"],
    ),
    (
        "worker-threadpool",
        "`worker --handling threadpool`",
        &["worker", "--handling", "threadpool"],
    ),
    ("backend", "`backend`", &["backend"]),
    ("loadgen", "`loadgen serve`", &["loadgen", "serve"]),
];

/// (app, admin) port of each process, from the README's table of services.
pub(crate) fn readme_ports(readme: &str) -> BTreeMap<&'static str, (u16, u16)> {
    let table = rows(&section(readme, "## Services and endpoints"));
    PROCESSES
        .iter()
        .map(|(key, cell, _)| {
            let row = table
                .iter()
                .find(|r| r.first().map(String::as_str) == Some(*cell))
                .unwrap_or_else(|| panic!("README's table of services has no {cell} row"));
            let port = |i: usize| {
                row[i]
                    .parse()
                    .unwrap_or_else(|_| panic!("{cell}: port {}", row[i]))
            };
            (*key, (port(1), port(2)))
        })
        .collect()
}

/// Starts `args` on its default ports, on a loopback address of its own (so nothing else on
/// the machine, nor a `make up` on 127.0.0.1, can be in the way), and reads the ports it bound
/// from its `listening` line; then stops it.
pub(crate) fn default_ports(args: &[&str], host: &str) -> (u16, u16) {
    let mut cmd = service_command(args[0]);
    cmd.args(&args[1..]).args(["--host", host]);
    if args.first() == Some(&"loadgen") {
        // Its traffic goes nowhere: port 9 (discard) on our own address refuses it.
        cmd.env("LOOPSCOPE_GATEWAY_URL", format!("http://{host}:9"));
    }
    cmd.env("LOOPSCOPE_LOG_FORMAT", "json")
        .env("RUST_LOG", "info");
    let mut started = spawn_captured(&mut cmd, LISTENING).expect("spawn");
    let listening = started.wait_for(Duration::from_secs(20));
    let _ = started.child.kill();
    let _ = started.child.wait();
    let line = listening
        .unwrap_or_else(|| panic!("{args:?} did not start:\n{}", started.lines().join("\n")));
    let event: Value = serde_json::from_str(&line).expect("JSON");
    let port = |key: &str| {
        event[key]
            .as_str()
            .and_then(|a| a.rsplit_once(':'))
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or_else(|| panic!("{key} in {line}"))
    };
    (port("app_addr"), port("admin_addr"))
}

/// job name → the files of its `file_sd_configs`, from the local Prometheus config.
pub(crate) fn prometheus_jobs(config: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut job = None;
    for line in config.lines().map(str::trim) {
        if line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix("- job_name:") {
            let name = name.trim().trim_matches('"').to_owned();
            out.entry(name.clone()).or_default();
            job = Some(name);
        } else if let (Some(job), Some(files)) = (&job, line.strip_prefix("- files:")) {
            let files = files.trim().trim_start_matches('[').trim_end_matches(']');
            out.entry(job.clone()).or_default().extend(
                files
                    .split(',')
                    .map(|f| f.trim().trim_matches('"').to_owned())
                    .filter(|f| !f.is_empty()),
            );
        }
    }
    out
}

/// A loopback address of this test run's own: 127.x.y.z is loopback on Linux.
pub(crate) fn own_loopback() -> String {
    let pid = std::process::id();
    format!(
        "127.{}.{}.{}",
        100 + (pid >> 16) % 100,
        (pid >> 8) & 0xff,
        (pid & 0xff).max(2)
    )
}

#[test]
pub(crate) fn default_ports_agree_in_code_readme_ports_crate_and_prometheus() {
    let _machine = loopscope_tests::machine::shared();
    let readme = readme_ports(&read("README.md"));
    let mut problems = Vec::new();

    let host = own_loopback();
    for (key, _, args) in PROCESSES {
        let bound = default_ports(args, &host);
        if bound != readme[key] {
            problems.push(format!(
                "{key} binds {bound:?} by default, the README says {:?}",
                readme[key]
            ));
        }
    }

    // The one place the defaults are written (services/ports): the binaries bind them (above),
    // the launcher starts the stack and writes Prometheus's targets from them.
    let in_crate: BTreeMap<&str, (u16, u16)> = ports::PROCESSES
        .iter()
        .map(|(name, p)| (*name, (p.app, p.admin)))
        .collect();
    if in_crate != readme {
        problems.push(format!(
            "services/ports has {in_crate:?}, the README's table of services {readme:?}"
        ));
    }

    // The local Prometheus reads each job's targets from the file `loopscope up` writes.
    let jobs = prometheus_jobs(&read("deploy/prometheus/prometheus.yml"));
    for key in readme.keys().copied().chain(["prometheus"]) {
        let want = vec![format!("targets/{key}.json")];
        match jobs.get(key) {
            Some(files) if *files == want => {}
            other => problems.push(format!(
                "deploy/prometheus/prometheus.yml: job {key} reads {other:?}, want file_sd {want:?} (loopscope up writes it)"
            )),
        }
    }

    // Default URLs that point one process at another: `--<process>-url` is its app port,
    // `--<process>-admin-url` its admin port.
    for (binary, sub) in [
        ("worker", &[][..]),
        ("gateway", &[]),
        ("loadgen", &["serve"]),
        ("loadgen", &["experiment"]),
    ] {
        for (flag, h) in help_flags(binary, sub) {
            let Some(url) = h.default.filter(|d| d.starts_with("http")) else {
                continue;
            };
            let name = flag.trim_start_matches("--").trim_end_matches("-url");
            let (process, admin) = match name.strip_suffix("-admin") {
                Some(p) => (p, true),
                None => (name, false),
            };
            let Some((app_port, admin_port)) = readme.get(process) else {
                problems.push(format!(
                    "{binary} {flag}: no process {process} in the README's table"
                ));
                continue;
            };
            let want = if admin { admin_port } else { app_port };
            if !url.ends_with(&format!(":{want}")) {
                problems.push(format!(
                    "{binary} {sub:?} {flag} defaults to {url}, the README says port {want}"
                ));
            }
        }
    }

    assert!(
        problems.is_empty(),
        "default ports disagree (README.md's table of services is the reference):\n  {}",
        problems.join("\n  ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_jobs_and_their_files() {
        let _machine = loopscope_tests::machine::shared();
        let t = prometheus_jobs(
            "# - job_name: old\n#  - files: [old.json]\nscrape_configs:\n  - job_name: gateway\n    file_sd_configs:\n      - files: [targets/gateway.json]\n  - job_name: \"static\"\n    static_configs:\n      - targets: [\"127.0.0.1:1\"]\n",
        );
        assert_eq!(
            t,
            BTreeMap::from([
                (
                    "gateway".to_owned(),
                    vec!["targets/gateway.json".to_owned()]
                ),
                ("static".to_owned(), vec![]),
            ])
        );
    }
}

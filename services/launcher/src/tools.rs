//! The optional tools beside the services: finding them, and the local Prometheus's files
//! (deploy/prometheus/prometheus.yml as it is, plus file-based service discovery targets
//! written from this run's ports).

use std::path::{Path, PathBuf};

use crate::cli::PortArgs;
use crate::plan::{Spec, Stage};

/// `name` in a folder of PATH, as an executable file.
pub(crate) fn on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

pub(crate) fn prometheus_spec(bin: PathBuf, state_dir: &Path, port: u16) -> Spec {
    let dir = state_dir.join("prometheus");
    Spec {
        name: "prometheus",
        stage: Stage::Watchers,
        program: bin,
        args: vec![
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ],
        env: Vec::new(),
        ready_url: format!("http://127.0.0.1:{port}/-/ready"),
        shown: (
            format!("http://127.0.0.1:{port}"),
            format!("Prometheus UI, targets: http://127.0.0.1:{port}/targets"),
        ),
    }
}

/// The scrape jobs of deploy/prometheus/prometheus.yml and the admin port each scrapes in
/// this run. `loadgen serve` is not started by `up`: its job stays a down target on its default
/// port until someone runs it.
pub(crate) fn scrape_targets(p: &PortArgs) -> [(&'static str, u16); 6] {
    [
        ("gateway", p.gateway_admin_port),
        ("worker-async", p.worker_async_admin_port),
        ("worker-threadpool", p.worker_threadpool_admin_port),
        ("backend", p.backend_admin_port),
        ("loadgen", ports::LOADGEN.admin),
        ("prometheus", p.prometheus_port),
    ]
}

/// Writes `<state>/prometheus/`: the repository's config unchanged, a `rules` link beside it
/// (its rule_files are relative), and `targets/<job>.json` for each job.
pub(crate) fn prepare_prometheus(
    repo: &Path,
    state_dir: &Path,
    p: &PortArgs,
) -> std::io::Result<()> {
    let dir = state_dir.join("prometheus");
    std::fs::create_dir_all(dir.join("data"))?;
    std::fs::create_dir_all(dir.join("targets"))?;
    std::fs::copy(
        repo.join("deploy/prometheus/prometheus.yml"),
        dir.join("prometheus.yml"),
    )?;
    let rules = dir.join("rules");
    let _ = std::fs::remove_file(&rules);
    std::os::unix::fs::symlink(repo.join("deploy/prometheus/rules"), &rules)?;
    for (job, port) in scrape_targets(p) {
        let group = serde_json::json!([{ "targets": [format!("127.0.0.1:{port}")] }]);
        std::fs::write(dir.join(format!("targets/{job}.json")), group.to_string())?;
    }
    Ok(())
}

/// Grafana configured through GF_* variables only: nothing of a system Grafana changes.
/// Local only (127.0.0.1), so anonymous users may edit (nothing is written back).
pub(crate) fn grafana_spec(
    bin: PathBuf,
    repo: &Path,
    state_dir: &Path,
    home: &Path,
    p: &PortArgs,
) -> Spec {
    let dir = state_dir.join("grafana");
    let path = |sub: &str| dir.join(sub).display().to_string();
    let env = [
        (
            "GF_PATHS_PROVISIONING",
            repo.join("grafana/provisioning").display().to_string(),
        ),
        ("GF_PATHS_DATA", path("data")),
        ("GF_PATHS_LOGS", path("logs")),
        ("GF_PATHS_PLUGINS", path("plugins")),
        ("GF_SERVER_HTTP_ADDR", "127.0.0.1".into()),
        ("GF_SERVER_HTTP_PORT", p.grafana_port.to_string()),
        ("GF_AUTH_ANONYMOUS_ENABLED", "true".into()),
        ("GF_AUTH_ANONYMOUS_ORG_ROLE", "Editor".into()),
        ("GF_ANALYTICS_REPORTING_ENABLED", "false".into()),
        ("GF_ANALYTICS_CHECK_FOR_UPDATES", "false".into()),
        (
            "LOOPSCOPE_PROMETHEUS_URL",
            format!("http://127.0.0.1:{}", p.prometheus_port),
        ),
        (
            "LOOPSCOPE_DASHBOARDS",
            repo.join("grafana/dashboards").display().to_string(),
        ),
        ("LOOPSCOPE_SCRAPE_INTERVAL", "5s".into()),
    ];
    Spec {
        name: "grafana",
        stage: Stage::Watchers,
        program: bin,
        args: vec!["--homepath".into(), home.display().to_string()],
        env: env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        ready_url: format!("http://127.0.0.1:{}/api/health", p.grafana_port),
        shown: (
            format!("http://127.0.0.1:{}", p.grafana_port),
            "dashboards: the loopscope folder".into(),
        ),
    }
}

/// Grafana's data folders, before it starts.
pub(crate) fn prepare_grafana(state_dir: &Path) -> std::io::Result<()> {
    for sub in ["data", "logs", "plugins"] {
        std::fs::create_dir_all(state_dir.join("grafana").join(sub))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Ports {
        #[command(flatten)]
        ports: PortArgs,
    }

    #[test]
    fn every_scrape_job_gets_a_targets_file_with_this_runs_port() {
        let p = Ports::parse_from(["x", "--gateway-admin-port", "19080"]).ports;
        let dir = std::env::temp_dir().join(format!("loopscope-tools-{}", std::process::id()));
        prepare_prometheus(&crate::plan::repo_root(), &dir, &p).expect("prepare");
        let config =
            std::fs::read_to_string(dir.join("prometheus/prometheus.yml")).expect("config");
        let jobs: Vec<&str> = config
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- job_name:"))
            .map(str::trim)
            .collect();
        assert_eq!(jobs.len(), scrape_targets(&p).len(), "jobs: {jobs:?}");
        for (job, port) in scrape_targets(&p) {
            assert!(jobs.contains(&job), "no job {job} in prometheus.yml");
            let file = dir.join(format!("prometheus/targets/{job}.json"));
            let text = std::fs::read_to_string(&file).expect("targets file");
            assert_eq!(text, format!("[{{\"targets\":[\"127.0.0.1:{port}\"]}}]"));
        }
        let gateway = std::fs::read_to_string(dir.join("prometheus/targets/gateway.json"));
        assert!(gateway.expect("gateway").contains(":19080"), "the override");
        assert!(
            dir.join("prometheus/rules")
                .join("loopscope.rules.yml")
                .exists()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

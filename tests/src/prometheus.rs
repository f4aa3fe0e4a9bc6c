//! A real Prometheus for the tests (Debian's 2.42, on PATH after `make tools`), and the
//! Grafana dashboards of `grafana/dashboards` read as data: their panels, queries and
//! variables, with Grafana's variables substituted the way Grafana does it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The one rules file: alerts and recording rules.
pub fn rules_file() -> PathBuf {
    repo_root().join("deploy/prometheus/rules/loopscope.rules.yml")
}

/// Names of the recording rules of the rules file (its `- record: NAME` lines; promtool
/// checks the YAML itself).
pub fn recording_rule_names() -> Vec<String> {
    let text = std::fs::read_to_string(rules_file()).expect("read the rules file");
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("- record:"))
        .map(|n| n.trim().to_owned())
        .collect()
}

/// A Prometheus process with its own data folder, killed and removed when dropped.
pub struct Prometheus {
    child: Child,
    dir: PathBuf,
    pub url: String,
}

/// A scrape job of [`Prometheus::start`]: its name and `host:port` targets.
pub struct Job {
    pub name: String,
    pub targets: Vec<String>,
}

impl Prometheus {
    /// Starts Prometheus scraping `jobs` every `interval`, evaluating `rule_files` as often,
    /// and waits until it is ready.
    pub fn start(jobs: &[Job], rule_files: &[PathBuf], interval: Duration) -> Self {
        let bin = which("prometheus").unwrap_or_else(|| {
            panic!("prometheus is not on PATH: run `make tools` (Debian's prometheus package)")
        });
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "loopscope-prometheus-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(dir.join("data")).expect("create the Prometheus folder");
        let secs = interval.as_secs_f64();
        let mut config = format!(
            "global:\n  scrape_interval: {secs}s\n  scrape_timeout: {secs}s\n  \
             evaluation_interval: {secs}s\nrule_files:\n"
        );
        for f in rule_files {
            config += &format!("  - {:?}\n", f.display().to_string());
        }
        config += "scrape_configs:\n";
        for job in jobs {
            let targets: Vec<String> = job.targets.iter().map(|t| format!("{t:?}")).collect();
            config += &format!(
                "  - job_name: {:?}\n    static_configs:\n      - targets: [{}]\n",
                job.name,
                targets.join(", ")
            );
        }
        let config_file = dir.join("prometheus.yml");
        std::fs::write(&config_file, config).expect("write prometheus.yml");
        let port = crate::quiet_port_numbers(1)[0];
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log file");
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let mut prom = Self {
            child,
            dir,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = prom.child.try_wait() {
                panic!("prometheus exited ({status}) at start:\n{}", prom.log());
            }
            let ready = crate::client(Duration::from_secs(2))
                .get(format!("{}/-/ready", prom.url))
                .send()
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return prom;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready within 60 s:\n{}",
                prom.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Its log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// GET `path` of the HTTP API; the `data` of a successful answer, or the error.
    pub fn api(&self, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
        let res = crate::client(Duration::from_secs(30))
            .get(format!("{}{path}", self.url))
            .query(params)
            .send()
            .map_err(|e| format!("GET {path}: {e}"))?;
        let body: Value = res.json().map_err(|e| format!("GET {path}: {e}"))?;
        if body["status"] == "success" {
            Ok(body["data"].clone())
        } else {
            Err(format!("{}: {}", body["errorType"], body["error"]))
        }
    }

    /// An instant query at the current time: the result vector (or scalar, as one element).
    pub fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let data = self.api("/api/v1/query", &[("query", expr)])?;
        Ok(match data["resultType"].as_str() {
            Some("vector") | Some("matrix") => {
                data["result"].as_array().cloned().unwrap_or_default()
            }
            _ => vec![data["result"].clone()],
        })
    }

    /// The single number an instant query returns (a scalar, or a one-element vector);
    /// None when it returns nothing.
    pub fn value(&self, expr: &str) -> Result<Option<f64>, String> {
        let result = self.query(expr)?;
        let Some(first) = result.first() else {
            return Ok(None);
        };
        if result.len() > 1 {
            return Err(format!("{expr}: {} series, expected one", result.len()));
        }
        let pair = if first["value"].is_array() {
            &first["value"]
        } else {
            first
        };
        pair[1]
            .as_str()
            .and_then(|v| v.parse().ok())
            .map(Some)
            .ok_or_else(|| format!("{expr}: not a number: {first}"))
    }

    /// The largest value any series of `expr` takes from `start` to `end` (Unix seconds),
    /// evaluated every `step` seconds as a graph panel would; None when it has no data.
    pub fn max_over_range(
        &self,
        expr: &str,
        start: f64,
        end: f64,
        step: f64,
    ) -> Result<Option<f64>, String> {
        let (start, end, step) = (format!("{start:.3}"), format!("{end:.3}"), step.to_string());
        let data = self.api(
            "/api/v1/query_range",
            &[
                ("query", expr),
                ("start", &start),
                ("end", &end),
                ("step", &step),
            ],
        )?;
        Ok(data["result"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|series| series["values"].as_array().cloned().unwrap_or_default())
            .filter_map(|pair| pair[1].as_str().and_then(|v| v.parse::<f64>().ok()))
            .reduce(f64::max))
    }

    /// Unix time (seconds) of the last scrape of `job` Prometheus has stored.
    pub fn last_scrape(&self, job: &str) -> Option<f64> {
        self.value(&format!("max(timestamp(up{{job={job:?}}}))"))
            .ok()
            .flatten()
    }

    /// Waits until Prometheus has stored a scrape of `job` that started after `after`
    /// (Unix seconds) and returns its time: every sample of that scrape was taken later.
    pub fn scrape_after(&self, job: &str, after: f64, limit: Duration) -> f64 {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(t) = self.last_scrape(job).filter(|&t| t > after) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "no scrape of {job} after {after} within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The active alerts (pending and firing).
    pub fn alerts(&self) -> Vec<Value> {
        self.api("/api/v1/alerts", &[])
            .map(|d| d["alerts"].as_array().cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Every rule of every group, as /api/v1/rules describes it.
    pub fn rules(&self) -> Vec<Value> {
        let data = self.api("/api/v1/rules", &[]).expect("GET /api/v1/rules");
        data["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    /// How many scrape targets are up, and a description of each one that is not (its
    /// last scrape failed, or has not happened yet).
    pub fn targets(&self) -> (usize, Vec<String>) {
        let data = self.api("/api/v1/targets", &[]).unwrap_or_default();
        let all = data["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let (up, down): (Vec<Value>, Vec<Value>) =
            all.into_iter().partition(|t| t["health"] == "up");
        let down = down
            .iter()
            .map(|t| {
                format!(
                    "{} {} ({})",
                    t["labels"]["job"], t["scrapeUrl"], t["lastError"]
                )
            })
            .collect();
        (up.len(), down)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

// ------------------------------------------------------------------------ dashboards

/// One dashboard file of grafana/dashboards.
pub struct Dashboard {
    pub file: String,
    pub json: Value,
}

/// Every dashboard of grafana/dashboards, sorted by file name.
pub fn dashboards() -> Vec<Dashboard> {
    let dir = repo_root().join("grafana/dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| Dashboard {
            file: file_name(path),
            json: serde_json::from_str(&std::fs::read_to_string(path).expect("read"))
                .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display())),
        })
        .collect()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Dashboard {
    /// Every panel, including those inside collapsed rows, rows themselves included.
    pub fn panels(&self) -> Vec<&Value> {
        fn walk<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
            for p in panels.as_array().into_iter().flatten() {
                out.push(p);
                walk(&p["panels"], out);
            }
        }
        let mut out = Vec::new();
        walk(&self.json["panels"], &mut out);
        out
    }

    /// The templating variables.
    pub fn variables(&self) -> Vec<&Value> {
        self.json["templating"]["list"]
            .as_array()
            .map(|l| l.iter().collect())
            .unwrap_or_default()
    }

    /// Every PromQL query: panel targets, then annotation queries.
    pub fn queries(&self) -> Vec<PanelQuery> {
        let mut out = Vec::new();
        for p in self.panels() {
            for t in p["targets"].as_array().into_iter().flatten() {
                out.push(PanelQuery {
                    place: format!(
                        "{}: panel {:?} query {}",
                        self.file,
                        p["title"].as_str().unwrap_or("?"),
                        t["refId"].as_str().unwrap_or("?")
                    ),
                    expr: t["expr"].as_str().unwrap_or_default().to_owned(),
                    repeat: p["repeat"].as_str().map(str::to_owned),
                });
            }
        }
        for a in self.json["annotations"]["list"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(expr) = a["expr"].as_str() {
                out.push(PanelQuery {
                    place: format!(
                        "{}: annotation {:?}",
                        self.file,
                        a["name"].as_str().unwrap_or("?")
                    ),
                    expr: expr.to_owned(),
                    repeat: None,
                });
            }
        }
        out
    }
}

/// A PromQL query of a dashboard, and where it is.
pub struct PanelQuery {
    pub place: String,
    pub expr: String,
    /// The variable the panel repeats over, if it does.
    pub repeat: Option<String>,
}

/// The query of a Prometheus query variable (`label_values(...)` or plain PromQL).
pub fn variable_query(var: &Value) -> Option<String> {
    match &var["query"] {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("query").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// `label_values(SELECTOR, LABEL)` split into the selector and the label.
pub fn label_values(query: &str) -> Option<(String, String)> {
    let inner = query
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    let (selector, label) = inner.rsplit_once(',')?;
    Some((selector.trim().to_owned(), label.trim().to_owned()))
}

/// Now, as Unix seconds (Prometheus's time axis).
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// Grafana's built-in variables as the tests set them: a 1 s scrape interval makes
/// `$__rate_interval` 4 scrapes; 20 s leaves room for a late scrape on a busy machine.
pub fn builtin_variables() -> Vec<(String, String)> {
    [
        ("__rate_interval", "20s"),
        ("__interval", "5s"),
        ("__interval_ms", "5000"),
        ("__range", "1h"),
        ("__range_s", "3600"),
        ("__range_ms", "3600000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Replaces `$name`, `${name}` and `[[name]]` by their values; longer names first, so
/// `$__range_s` is not read as `$__range` + `_s`.
pub fn substitute(expr: &str, vars: &[(String, String)]) -> String {
    let mut vars: Vec<&(String, String)> = vars.iter().collect();
    vars.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    let mut out = expr.to_owned();
    for (k, v) in vars {
        out = out
            .replace(&format!("${{{k}}}"), v)
            .replace(&format!("[[{k}]]"), v)
            .replace(&format!("${k}"), v);
    }
    out
}

/// What Grafana puts in a Prometheus query for a multi-value variable with these values
/// selected: the values as one regex alternation. (Values here are plain words; Grafana
/// would escape regex characters.)
pub fn regex_of(values: &[String]) -> String {
    for v in values {
        assert!(
            v.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "variable value {v:?} would need regex escaping"
        );
    }
    format!("({})", values.join("|"))
}

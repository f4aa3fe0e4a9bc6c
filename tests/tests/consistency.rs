//! One truth for names, flags and ports: the README is what users read, so the code, the
//! scripts, the Prometheus config, the dashboards and the rules must agree with it. Each test
//! names the file to fix and the missing or extra entry.
//!
//! - metric names: `metrics/names.rs` (and every metric name spelled in the services' code),
//!   every `loopscope_*` family on a running stack's `/metrics` with its label keys, and every
//!   metric a dashboard or a rule queries, against the README's metric catalogue;
//! - flags: every flag in each binary's `--help` (with its env variable and default) against
//!   the README's settings tables, and every row of those tables against `--help`;
//! - default ports: what each binary binds when no port is given, against the README's table
//!   of services, `scripts/*.sh`, `deploy/prometheus/prometheus.yml` and the default URLs that
//!   point services at each other.
//!
//! The parsers here are small on purpose; each has a negative control in `parsers` below, so
//! a parser that silently finds nothing fails instead of passing.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use loopscope_tests::stack::Stack;
use loopscope_tests::{bin, get, start_loadgen_serve};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, ext, out);
            } else if path.extension().is_some_and(|e| e == ext) {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join(dir), ext, &mut out);
    out.sort();
    out
}

fn rel(path: &Path) -> String {
    let root = root().canonicalize().expect("root");
    let path = path.canonicalize().expect("path");
    path.strip_prefix(&root)
        .unwrap_or(&path)
        .display()
        .to_string()
}

// ---------------------------------------------------------------------------------------
// README parsing

/// The lines of the README section whose heading is `heading`, up to the next heading of
/// the same or a higher level.
fn section<'a>(readme: &'a str, heading: &str) -> Vec<&'a str> {
    let level = heading.chars().take_while(|&c| c == '#').count();
    let mut lines = readme.lines().skip_while(|l| l.trim_end() != heading);
    assert!(
        lines.next().is_some(),
        "README.md has no `{heading}` section"
    );
    lines
        .take_while(|l| {
            let hashes = l.chars().take_while(|&c| c == '#').count();
            !(hashes > 0 && hashes <= level && l[hashes..].starts_with(' '))
        })
        .collect()
}

/// The cells of a Markdown table row (`| a | b |`); `\|` inside a cell is kept.
fn cells(line: &str) -> Option<Vec<String>> {
    let line = line.trim();
    if !line.starts_with('|') || line.starts_with("|---") || line.starts_with("| ---") {
        return None;
    }
    let inner = line.trim_start_matches('|').trim_end_matches('|');
    let mut out = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                out.last_mut().expect("cell").push('|');
                chars.next();
            }
            '|' => out.push(String::new()),
            c => out.last_mut().expect("cell").push(c),
        }
    }
    Some(out.into_iter().map(|c| c.trim().to_owned()).collect())
}

/// Rows of every table in `lines`, header rows included (callers skip them by content).
fn rows(lines: &[&str]) -> Vec<Vec<String>> {
    lines.iter().filter_map(|l| cells(l)).collect()
}

/// The `code spans` of a piece of Markdown.
fn code_spans(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn unquote(cell: &str) -> String {
    cell.trim().trim_matches('`').to_owned()
}

/// Every whole-word occurrence of `loopscope_…` in `text`: not part of a longer identifier,
/// and not a piece of a recording rule's name (`level:metric:operations`).
fn metric_tokens(text: &str) -> BTreeSet<String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("loopscope_") {
        if text[..i].chars().next_back().is_some_and(word) {
            continue;
        }
        let token: String = text[i..]
            .chars()
            .take_while(|&c| c.is_ascii_alphanumeric() || c == '_')
            .collect();
        if text[i + token.len()..].starts_with(':') {
            continue;
        }
        out.insert(token);
    }
    out
}

/// The README metric catalogue: exported name → label keys (without the registry's
/// `service` and `handling`). A row may list several names that share the labels.
fn catalogue(readme: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for row in rows(&section(readme, "## Metric catalogue")) {
        let (Some(names), Some(labels)) = (row.first(), row.get(2)) else {
            continue;
        };
        let labels: BTreeSet<String> = labels
            .split(',')
            .filter_map(|part| {
                let key: String = part
                    .trim()
                    .trim_matches('`')
                    .chars()
                    .take_while(|&c| c.is_ascii_alphanumeric() || c == '_')
                    .collect();
                (!key.is_empty()).then_some(key)
            })
            .collect();
        for name in code_spans(names) {
            if name.starts_with("loopscope_") {
                out.insert(name, labels.clone());
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Metric names

/// Suffixes the Prometheus exporter may add to an OpenTelemetry instrument's name: its unit,
/// then `_total` for a counter.
const EXPORT_SUFFIXES: &[&str] = &[
    "",
    "_total",
    "_seconds",
    "_seconds_total",
    "_bytes",
    "_bytes_total",
    "_ratio",
];

/// Families actix-web-prom records under `names::NAMESPACE`: named by that crate, not by us.
const HTTP_FAMILIES: &[&str] = &["http_requests_total", "http_requests_duration_seconds"];

/// The string literals of Rust source, each with its line: enough of a lexer to skip
/// comments and char literals (`'"'`) and to honour escapes; raw strings are read as plain.
fn string_literals(src: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let chars: Vec<char> = src.chars().collect();
    let (mut i, mut line_start) = (0, 0);
    while i < chars.len() {
        match chars[i] {
            '\n' => line_start = i + 1,
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '\'' if chars.get(i + 2) == Some(&'\'') => i += 2,
            '\'' if chars.get(i + 1) == Some(&'\\') && chars.get(i + 3) == Some(&'\'') => i += 3,
            '"' => {
                let mut literal = String::new();
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    literal.extend(chars.get(i));
                    i += 1;
                }
                let line_end = chars[i..]
                    .iter()
                    .position(|&c| c == '\n')
                    .map_or(chars.len(), |p| i + p);
                out.push((literal, chars[line_start..line_end].iter().collect()));
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Every metric name the services' code defines or reads: OpenTelemetry instrument names
/// given to a `const` (`loopscope.work.duration`), and exported names spelled anywhere
/// (`loopscope_build_info`); with the file each is in.
fn names_in_code() -> BTreeMap<String, String> {
    let name_chars = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
    };
    let mut out = BTreeMap::new();
    for path in files("services", "rs") {
        let text = std::fs::read_to_string(&path).expect("source");
        for (literal, line) in string_literals(&text) {
            let otel = literal.starts_with("loopscope.") && line.contains("const ");
            let exported = literal.starts_with("loopscope_") && !literal.contains('.');
            if (otel || exported) && name_chars(&literal) && !literal.ends_with('_') {
                out.insert(literal, rel(&path));
            }
        }
    }
    out
}

/// The catalogue names a name of the code stands for: itself for an exported name, the
/// exporter's spellings for an OpenTelemetry name.
fn exported_as(name: &str, catalogue: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    if name.contains('.') {
        let base = name.replace('.', "_");
        EXPORT_SUFFIXES
            .iter()
            .map(|s| format!("{base}{s}"))
            .filter(|n| catalogue.contains_key(n))
            .collect()
    } else {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        [name, family]
            .into_iter()
            .filter(|n| catalogue.contains_key(*n))
            .map(str::to_owned)
            .collect()
    }
}

#[test]
fn metric_names_in_the_code_are_in_the_readme_catalogue() {
    let catalogue = catalogue(&read("README.md"));
    let code = names_in_code();
    let names_rs = read("services/common/src/metrics/names.rs");
    assert!(
        code.keys().any(|n| names_rs.contains(&format!("\"{n}\""))),
        "no metric name found in services/common/src/metrics/names.rs: the scan is broken"
    );

    let undocumented: Vec<String> = code
        .iter()
        .filter(|(name, _)| exported_as(name, &catalogue).is_empty())
        .map(|(name, file)| format!("{name} ({file})"))
        .collect();
    assert!(
        undocumented.is_empty(),
        "metric names in the code with no row in README.md's metric catalogue (an \
         OpenTelemetry name is exported with dots as underscores, plus its unit and `_total`):\n  {}",
        undocumented.join("\n  ")
    );

    let namespace = names_rs
        .lines()
        .find(|l| l.contains("NAMESPACE"))
        .and_then(|l| l.split('"').nth(1))
        .expect("names::NAMESPACE");
    let from_code: BTreeSet<String> = code
        .keys()
        .flat_map(|n| exported_as(n, &catalogue))
        .chain(HTTP_FAMILIES.iter().map(|f| format!("{namespace}_{f}")))
        .collect();
    let stale: Vec<&String> = catalogue
        .keys()
        .filter(|n| !from_code.contains(*n))
        .collect();
    assert!(
        stale.is_empty(),
        "README.md's metric catalogue lists metrics that no code defines: {stale:?}"
    );
}

#[test]
fn dashboards_and_rules_query_only_catalogued_metrics() {
    let catalogue = catalogue(&read("README.md"));
    let mut sources = files("grafana/dashboards", "json");
    sources.extend(files("deploy/prometheus/rules", "yml"));
    sources.extend(files("deploy/prometheus/tests", "yml"));
    assert!(sources.len() >= 2, "no dashboards or rules found");
    let mut unknown = Vec::new();
    let mut seen = 0;
    for path in &sources {
        let text = std::fs::read_to_string(path).expect("source");
        for token in metric_tokens(&text) {
            seen += 1;
            if exported_as(&token, &catalogue).is_empty() {
                unknown.push(format!("{token} ({})", rel(path)));
            }
        }
    }
    assert!(seen > 10, "only {seen} metric names found in {sources:?}");
    assert!(
        unknown.is_empty(),
        "dashboards or rules use metrics that README.md's catalogue does not list (a typo, or \
         an undocumented metric):\n  {}",
        unknown.join("\n  ")
    );
}

/// `# TYPE` families of a page that start with `loopscope_`, with the label keys their
/// samples carry, less the histogram's `le` and the labels the registry adds to every
/// series of that process (`registry`: `service`, and `handling` on a worker).
fn families_with_labels(page: &str, registry: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = page
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("loopscope_"))
        .map(|n| (n.to_owned(), BTreeSet::new()))
        .collect();
    for line in page.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, _)) = line.rsplit_once(' ') else {
            continue;
        };
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| out.contains_key(*f)))
            .unwrap_or(name);
        if let Some(keys) = out.get_mut(family) {
            for pair in labels.trim_end_matches('}').split("\",") {
                if let Some((key, _)) = pair.split_once("=\"") {
                    let key = key.trim_start_matches(',').trim();
                    if key != "le" && !registry.contains(&key) {
                        keys.insert(key.to_owned());
                    }
                }
            }
        }
    }
    out
}

/// The labels each process's registry adds to all of its series.
const SERVICE: &[&str] = &["service"];
const WORKER: &[&str] = &["service", "handling"];

#[test]
fn every_exported_family_is_catalogued_with_its_labels() {
    let catalogue = catalogue(&read("README.md"));
    let stack = Stack::small();
    let serve = start_loadgen_serve(&["--gateway-url", &stack.gateway.base_url(), "--rate", "50"]);
    // Traffic through every hop, so that series which appear on first use are on the pages.
    for path in [
        "/api/compare?kind=io&ms=1",
        "/api/async/work/call?ms=1",
        "/api/threadpool/work/call?ms=1",
        "/api/async/work/cpu?ms=1",
        "/api/threadpool/work/block?ms=20",
        "/api/async/work/nope",
    ] {
        get(&stack.gateway.url(path));
    }
    std::thread::sleep(Duration::from_millis(500));

    let pages = [
        ("backend", stack.backend.metrics(), SERVICE),
        ("worker async", stack.worker_async.metrics(), WORKER),
        (
            "worker threadpool",
            stack.worker_threadpool.metrics(),
            WORKER,
        ),
        ("gateway", stack.gateway.metrics(), SERVICE),
        // Here `handling` is a label of the client metrics: the mode of the target.
        ("loadgen serve", serve.metrics(), SERVICE),
    ];
    let mut problems = Vec::new();
    let mut families = 0;
    for (process, page, registry) in &pages {
        for (family, labels) in families_with_labels(page, registry) {
            families += 1;
            match catalogue.get(&family) {
                None => problems.push(format!("{process}: {family} is not in the catalogue")),
                // A family with no sample yet shows no labels: nothing to compare.
                Some(documented) if !labels.is_empty() && &labels != documented => problems
                    .push(format!(
                        "{process}: {family} has labels {labels:?}, the catalogue says {documented:?}"
                    )),
                Some(_) => {}
            }
        }
    }
    assert!(
        families > 20,
        "only {families} loopscope_* families on five pages"
    );
    assert!(
        problems.is_empty(),
        "/metrics and README.md's metric catalogue disagree:\n  {}",
        problems.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------
// Flags

/// One option of a `--help` page.
#[derive(Debug, Default)]
struct HelpFlag {
    short: Option<String>,
    env: Option<String>,
    default: Option<String>,
}

/// The long options of `binary args... --help`, with short alias, env and default.
fn help_flags(binary: &str, args: &[&str]) -> BTreeMap<String, HelpFlag> {
    let out = Command::new(bin(binary))
        .args(args)
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(out.status.success(), "{binary} {args:?} --help failed");
    parse_help(&String::from_utf8_lossy(&out.stdout))
}

/// clap's help, long (details on the lines below each option) or short (on the same line).
fn parse_help(text: &str) -> BTreeMap<String, HelpFlag> {
    let mut out = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let (short, long) = match trimmed.split_once(", --") {
            Some((short, long)) if short.len() == 2 && short.starts_with('-') => {
                (Some(short.to_owned()), Some(long))
            }
            _ => (None, trimmed.strip_prefix("--")),
        };
        if let Some(long) = long.filter(|_| indent <= 6) {
            let name: String = long
                .chars()
                .take_while(|&c| c.is_ascii_alphanumeric() || c == '-')
                .collect();
            let flag = format!("--{name}");
            current = None;
            if !["--help", "--version"].contains(&flag.as_str()) {
                out.insert(
                    flag.clone(),
                    HelpFlag {
                        short,
                        ..HelpFlag::default()
                    },
                );
                current = Some(flag);
            }
        }
        let Some(flag) = current.as_ref().and_then(|c| out.get_mut(c)) else {
            continue;
        };
        for (i, _) in trimmed.match_indices('[') {
            let item = trimmed[i + 1..].split(']').next().unwrap_or_default();
            if let Some(env) = item.strip_prefix("env: ") {
                flag.env = env.split('=').next().map(str::to_owned);
            } else if let Some(default) = item.strip_prefix("default: ") {
                flag.default = Some(default.to_owned());
            }
        }
    }
    out
}

/// Whether `text` names `flag` as a whole word (`--json`, not `--json-x`).
fn mentions(text: &str, flag: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '-';
    text.match_indices(flag).any(|(i, _)| {
        !text[..i].chars().next_back().is_some_and(word)
            && !text[i + flag.len()..].chars().next().is_some_and(word)
    })
}

/// One row of a settings table.
#[derive(Debug)]
struct Setting {
    env: String,
    default: String,
}

/// The README's settings tables, by the line that introduces each (`worker:`, ...; the
/// shared one is `shared`).
fn settings_tables(readme: &str) -> BTreeMap<String, BTreeMap<String, Setting>> {
    let mut out: BTreeMap<String, BTreeMap<String, Setting>> = BTreeMap::new();
    let mut table = String::new();
    for line in section(readme, "## Settings") {
        let text = line.trim();
        if let Some(title) = text.strip_suffix(':').filter(|_| !text.starts_with('|')) {
            table = if title.starts_with("Shared") {
                "shared".to_owned()
            } else {
                title.trim_matches('`').to_owned()
            };
            continue;
        }
        let Some(row) = cells(line) else { continue };
        if row.len() < 3 || !row[0].starts_with("`--") {
            continue;
        }
        out.entry(table.clone()).or_default().insert(
            unquote(&row[0]),
            Setting {
                env: unquote(&row[1]),
                default: unquote(&row[2]),
            },
        );
    }
    out
}

/// The services and the settings tables that document them, in order of precedence.
const SERVICES: &[(&str, &[&str], &[&str])] = &[
    ("worker", &[], &["worker", "shared"]),
    ("gateway", &[], &["gateway", "shared"]),
    ("backend", &[], &["backend", "shared"]),
    ("loadgen", &["serve"], &["loadgen serve", "shared"]),
];

#[test]
fn every_flag_of_every_service_is_in_the_readme_settings_tables() {
    let tables = settings_tables(&read("README.md"));
    let mut problems = Vec::new();
    for (binary, sub, documented_in) in SERVICES {
        let help = help_flags(binary, sub);
        assert!(
            help.len() > 10,
            "{binary} {sub:?}: only {} flags parsed",
            help.len()
        );
        let who = [&[*binary][..], sub].concat().join(" ");
        for (flag, h) in &help {
            let row = documented_in
                .iter()
                .find_map(|t| tables.get(*t).and_then(|rows| rows.get(flag)));
            let Some(row) = row else {
                problems.push(format!(
                    "{who} {flag}: missing from the README's settings tables {documented_in:?}"
                ));
                continue;
            };
            if let Some(env) = &h.env
                && &row.env != env
            {
                problems.push(format!(
                    "{who} {flag}: env is {env}, the README says {}",
                    row.env
                ));
            }
            if let Some(default) = &h.default
                && &row.default != default
            {
                problems.push(format!(
                    "{who} {flag}: default is {default}, the README says {}",
                    row.default
                ));
            }
        }
        // The other way: a documented flag the binary does not have.
        for table in *documented_in {
            for flag in tables.get(*table).into_iter().flat_map(BTreeMap::keys) {
                if !help.contains_key(flag) {
                    problems.push(format!(
                        "README's `{table}` settings: {flag} is not a flag of {who}"
                    ));
                }
            }
        }
    }
    assert!(
        tables.contains_key("shared"),
        "no shared settings table parsed: {tables:?}"
    );
    assert!(
        problems.is_empty(),
        "--help and README.md's settings disagree:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn every_flag_of_the_loadgen_commands_is_in_the_readme() {
    let readme = read("README.md");
    let text = section(&readme, "### loadgen").join("\n");
    let mut missing = Vec::new();
    for command in ["run", "experiment"] {
        let help = help_flags("loadgen", &[command]);
        assert!(
            help.len() >= 3,
            "loadgen {command}: only {} flags parsed",
            help.len()
        );
        for (flag, h) in &help {
            let short = h.short.as_deref().is_some_and(|s| mentions(&text, s));
            if !mentions(&text, flag) && !short {
                missing.push(format!("loadgen {command} {flag}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "flags missing from README.md's loadgen section: {missing:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Ports

/// The processes of the README's table of services, as the scripts and Prometheus name them.
const PROCESSES: &[(&str, &str, &[&str])] = &[
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
fn readme_ports(readme: &str) -> BTreeMap<&'static str, (u16, u16)> {
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
fn default_ports(args: &[&str], host: &str) -> (u16, u16) {
    let mut cmd = Command::new(bin(args[0]));
    cmd.args(&args[1..])
        .args(["--host", host])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars() {
        if key.starts_with("LOOPSCOPE_") || key.starts_with("SENTRY_") {
            cmd.env_remove(key);
        }
    }
    if args.first() == Some(&"loadgen") {
        // Its traffic goes nowhere: port 9 (discard) on our own address refuses it.
        cmd.env("LOOPSCOPE_GATEWAY_URL", format!("http://{host}:9"));
    }
    cmd.env("LOOPSCOPE_LOG_FORMAT", "json")
        .env("RUST_LOG", "info");
    let mut child = cmd.spawn().expect("spawn");
    let (tx, rx) = mpsc::channel();
    for pipe in [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let mut seen = Vec::new();
    let listening = loop {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) if line.contains("\"listening\"") => break Some(line),
            Ok(line) => seen.push(line),
            Err(_) => break None,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let line = listening.unwrap_or_else(|| panic!("{args:?} did not start:\n{}", seen.join("\n")));
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

/// `NAME_PORT` / `NAME_ADMIN_PORT` defaults (`${NAME_PORT:-8080}`) in the shell scripts.
fn script_ports() -> Vec<(String, String, u16)> {
    let mut out = Vec::new();
    for path in files("scripts", "sh") {
        let text = std::fs::read_to_string(&path).expect("script");
        for (i, _) in text.match_indices(":-") {
            let before = &text[..i];
            let var_start = before
                .rfind(|c: char| !(c.is_ascii_uppercase() || c == '_'))
                .map_or(0, |p| p + 1);
            let var = &before[var_start..];
            let digits: String = text[i + 2..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if var.ends_with("_PORT")
                && !digits.is_empty()
                && text[i + 2 + digits.len()..].starts_with('}')
            {
                out.push((rel(&path), var.to_owned(), digits.parse().expect("port")));
            }
        }
    }
    out
}

/// job name → the port of its `127.0.0.1:PORT` target, from the local Prometheus config.
fn prometheus_targets(config: &str) -> BTreeMap<String, u16> {
    let mut out = BTreeMap::new();
    let mut job = None;
    for line in config.lines().map(str::trim) {
        if line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix("- job_name:") {
            job = Some(name.trim().trim_matches('"').to_owned());
        } else if let (Some(job), Some(i)) = (&job, line.find("127.0.0.1:")) {
            let digits: String = line[i + 10..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            out.insert(job.clone(), digits.parse().expect("port"));
        }
    }
    out
}

/// A loopback address of this test run's own: 127.x.y.z is loopback on Linux.
fn own_loopback() -> String {
    let pid = std::process::id();
    format!(
        "127.{}.{}.{}",
        100 + (pid >> 16) % 100,
        (pid >> 8) & 0xff,
        (pid & 0xff).max(2)
    )
}

#[test]
fn default_ports_agree_in_code_readme_scripts_and_prometheus() {
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

    let scripts = script_ports();
    assert!(
        scripts.len() >= 8,
        "only {} port defaults found in scripts/: {scripts:?}",
        scripts.len()
    );
    for (file, var, port) in &scripts {
        let admin = var.ends_with("_ADMIN_PORT");
        let name = var
            .trim_end_matches("_PORT")
            .trim_end_matches("_ADMIN")
            .to_lowercase()
            .replace('_', "-");
        if let Some((app_port, admin_port)) = readme.get(name.as_str()) {
            let want = if admin { admin_port } else { app_port };
            if port != want {
                problems.push(format!(
                    "{file}: {var} defaults to {port}, the README says {want}"
                ));
            }
        }
    }

    let targets = prometheus_targets(&read("deploy/prometheus/prometheus.yml"));
    for (key, (_, admin)) in &readme {
        match targets.get(*key) {
            Some(port) if port == admin => {}
            other => problems.push(format!(
                "deploy/prometheus/prometheus.yml: job {key} scrapes {other:?}, the README's admin port is {admin}"
            )),
        }
    }
    let prometheus_port = scripts
        .iter()
        .find(|(_, v, _)| v == "PROMETHEUS_PORT")
        .map(|s| s.2);
    if targets.get("prometheus").copied() != prometheus_port {
        problems.push(format!(
            "prometheus.yml scrapes Prometheus on {:?}, scripts start it on {prometheus_port:?}",
            targets.get("prometheus")
        ));
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

// ---------------------------------------------------------------------------------------
// Negative controls: each parser finds what it must, and rejects what it must.

mod parsers {
    use super::*;

    const README: &str = "# x\n\n## Metric catalogue\n\n| metric | type | labels | what |\n|---|---|---|---|\n\
        | `loopscope_a_total`, `loopscope_b_seconds` | counter | endpoint, `worker` | x |\n\
        | `loopscope_c` | gauge | | y \\| z |\n\n## Settings\n\nShared by every service:\n\n\
        | flag | env | default | what |\n|---|---|---|---|\n| `--host` | `LOOPSCOPE_HOST` | `127.0.0.1` | h |\n\n\
        worker:\n\n| flag | env | default | what |\n|---|---|---|---|\n| `--handling` | `LOOPSCOPE_HANDLING` | required | h |\n\n\
        ## Next\n\n| `loopscope_not_in_catalogue` | | | |\n";

    #[test]
    fn catalogue_reads_names_and_labels_of_its_own_section_only() {
        let c = catalogue(README);
        assert_eq!(
            c.keys().collect::<Vec<_>>(),
            ["loopscope_a_total", "loopscope_b_seconds", "loopscope_c"]
        );
        assert_eq!(
            c["loopscope_b_seconds"],
            BTreeSet::from(["endpoint".into(), "worker".into()])
        );
        assert!(c["loopscope_c"].is_empty());
    }

    #[test]
    fn exported_names_follow_the_exporter() {
        let c = catalogue(README);
        assert_eq!(exported_as("loopscope.a", &c), ["loopscope_a_total"]);
        assert_eq!(exported_as("loopscope.b", &c), ["loopscope_b_seconds"]);
        assert_eq!(
            exported_as("loopscope_b_seconds_bucket", &c),
            ["loopscope_b_seconds"]
        );
        assert!(exported_as("loopscope.d", &c).is_empty());
        assert!(exported_as("loopscope_a", &c).is_empty());
    }

    #[test]
    fn metric_tokens_skip_recording_rule_names() {
        let t =
            metric_tokens("rate(loopscope_a_total[1m]) + job:loopscope_b:rate1m + xloopscope_c");
        assert_eq!(t.into_iter().collect::<Vec<_>>(), ["loopscope_a_total"]);
    }

    #[test]
    fn settings_tables_by_title() {
        let t = settings_tables(README);
        assert_eq!(t["shared"]["--host"].env, "LOOPSCOPE_HOST");
        assert_eq!(t["shared"]["--host"].default, "127.0.0.1");
        assert_eq!(t["worker"]["--handling"].default, "required");
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn help_pages_in_both_layouts() {
        let long = "Usage: x\n\nOptions:\n      --backend-url <URL>\n          Base URL\n          \n          \
            [env: LOOPSCOPE_BACKEND_URL=]\n          [default: http://127.0.0.1:8083]\n\n  -c, --concurrency <N>\n          N\n\n  \
            -h, --help\n          Print help\n";
        let h = parse_help(long);
        assert_eq!(
            h.keys().collect::<Vec<_>>(),
            ["--backend-url", "--concurrency"]
        );
        assert_eq!(h["--concurrency"].short.as_deref(), Some("-c"));
        assert_eq!(
            h["--backend-url"].env.as_deref(),
            Some("LOOPSCOPE_BACKEND_URL")
        );
        assert_eq!(
            h["--backend-url"].default.as_deref(),
            Some("http://127.0.0.1:8083")
        );
        assert_eq!(h["--concurrency"].default, None);
    }

    #[test]
    fn short_help_lines_and_whole_word_mentions() {
        let h = parse_help(
            "Options:\n      --timeout <T>  Timeout [default: 30s]\n      --json  JSON\n",
        );
        assert_eq!(h["--timeout"].default.as_deref(), Some("30s"));
        assert!(mentions("[--json] [--quiet]", "--json"));
        assert!(!mentions("`--json-lines`", "--json"));
        assert!(mentions("[-c N]", "-c"));
    }

    #[test]
    fn string_literals_survive_escapes_comments_and_chars() {
        let src = "const A: &str = \"loopscope.a\"; // \"not\" a literal\nlet q = '\"'; let s = \"x \\\" y\";\nlet b = \"loopscope_b\";";
        let lits: Vec<String> = string_literals(src).into_iter().map(|l| l.0).collect();
        assert_eq!(lits, ["loopscope.a", "x \" y", "loopscope_b"]);
        assert!(string_literals(src)[0].1.contains("const A"));
    }

    #[test]
    fn families_and_their_label_keys() {
        let page = "# TYPE loopscope_x_seconds histogram\n\
            loopscope_x_seconds_bucket{handling=\"async\",kind=\"io\",service=\"worker\",le=\"0.5\"} 1\n\
            loopscope_x_seconds_sum{kind=\"io\",service=\"worker\"} 1\n\
            # TYPE loopscope_y gauge\nloopscope_y{service=\"worker\"} 1\n# TYPE process_threads gauge\nprocess_threads 3\n";
        let f = families_with_labels(page, &["service", "handling"]);
        assert_eq!(
            f.keys().collect::<Vec<_>>(),
            ["loopscope_x_seconds", "loopscope_y"]
        );
        assert_eq!(f["loopscope_x_seconds"], BTreeSet::from(["kind".into()]));
        assert!(f["loopscope_y"].is_empty());
    }

    #[test]
    fn prometheus_jobs_and_their_ports() {
        let t = prometheus_targets(
            "# - job_name: old\n#  - targets: [\"127.0.0.1:1\"]\nscrape_configs:\n  - job_name: gateway\n    static_configs:\n      - targets: [\"127.0.0.1:9080\"]\n",
        );
        assert_eq!(t, BTreeMap::from([("gateway".to_owned(), 9080)]));
    }
}

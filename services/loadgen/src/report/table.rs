//! The page's tables: the summary, each experiment's checks, the data behind each chart, and
//! the stack. Every string from the model goes through `escape`.
use std::fmt::Write as _;

use serde_json::Value;

use super::charts::fmt_num;
use super::html::{badge, escape, section_id};
use crate::model::{Check, ExperimentData, ExperimentOutcome};

/// One row per experiment: number, name (a link to its section), title, seed, checks, verdict.
pub(crate) fn summary(experiments: &[ExperimentOutcome]) -> String {
    let mut out = String::from(
        "<table class=\"summary\">\n<thead><tr><th>#</th><th>experiment</th><th>what it shows</th>\
         <th>seed</th><th class=\"num\">checks passed</th><th>verdict</th></tr></thead>\n<tbody>\n",
    );
    for (i, e) in experiments.iter().enumerate() {
        let passed = e.checks.iter().filter(|c| c.pass).count();
        let _ = writeln!(
            out,
            "<tr><td class=\"num\">{n}</td><td><a href=\"#{id}\"><code>{name}</code></a></td><td>{title}</td>\
             <td>{seed}</td><td class=\"num\">{passed} / {total}</td><td>{badge}</td></tr>",
            n = i + 1,
            id = section_id(i, &e.name),
            name = escape(&e.name),
            title = escape(&e.title),
            seed = e
                .seed
                .as_deref()
                .map(escape)
                .unwrap_or_else(|| "—".to_owned()),
            total = e.checks.len(),
            badge = badge(e.passed),
        );
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// An experiment's predicted-vs-measured table.
pub(crate) fn checks(checks: &[Check]) -> String {
    if checks.is_empty() {
        return "<p class=\"muted\">This experiment made no checks.</p>\n".to_owned();
    }
    let mut out = String::from(
        "<table class=\"checks\">\n<thead><tr><th>check</th><th>predicted</th><th>measured</th>\
         <th>tolerance</th><th>verdict</th></tr></thead>\n<tbody>\n",
    );
    for c in checks {
        let _ = writeln!(
            out,
            "<tr class=\"{cls}\"><td>{label}</td><td class=\"val\">{predicted}</td>\
             <td class=\"val measured\">{measured}</td><td class=\"tol\">{tolerance}</td><td>{badge}</td></tr>",
            cls = if c.pass { "pass" } else { "fail" },
            label = escape(&c.label),
            predicted = escape(&c.predicted),
            measured = escape(&c.measured),
            tolerance = escape(&c.tolerance),
            badge = badge(c.pass),
        );
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

fn table(
    head: &[&str],
    numeric_from: usize,
    rows: impl IntoIterator<Item = Vec<String>>,
) -> String {
    let mut out = String::from("<table class=\"data\">\n<thead><tr>");
    for (i, h) in head.iter().enumerate() {
        let cls = if i >= numeric_from {
            " class=\"num\""
        } else {
            ""
        };
        let _ = write!(out, "<th{cls}>{}</th>", escape(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let cls = if i >= numeric_from {
                " class=\"num\""
            } else {
                ""
            };
            // Cells are escaped here, once.
            let _ = write!(out, "<td{cls}>{}</td>", escape(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// The numbers the charts are drawn from, for whoever wants them exact.
pub(crate) fn data(data: &ExperimentData) -> String {
    let mut out = String::new();
    match data {
        ExperimentData::Timeline { scenarios } => {
            for (i, s) in scenarios.iter().enumerate() {
                let _ = writeln!(out, "<h4>Scenario {}: {}</h4>", i + 1, escape(&s.name));
                out.push_str(&table(
                    &[
                        "#",
                        "path",
                        "thread",
                        "thread id",
                        "event loop",
                        "sent ms",
                        "started ms",
                        "finished ms",
                        "answered ms",
                        "injected",
                    ],
                    5,
                    s.requests.iter().map(|r| {
                        vec![
                            r.index.to_string(),
                            r.path.clone(),
                            r.thread.clone(),
                            r.thread_id.to_string(),
                            r.event_loop.clone(),
                            fmt_num(r.sent_ms),
                            fmt_num(r.started_ms),
                            fmt_num(r.finished_ms),
                            fmt_num(r.answered_ms),
                            if r.injected {
                                "yes".to_owned()
                            } else {
                                String::new()
                            },
                        ]
                    }),
                ));
            }
        }
        ExperimentData::Bars { unit, bars } => {
            let p = format!("predicted ({unit})");
            let m = format!("measured ({unit})");
            out.push_str(&table(
                &["variant", &p, &m],
                1,
                bars.iter()
                    .map(|b| vec![b.label.clone(), fmt_num(b.predicted), fmt_num(b.measured)]),
            ));
        }
        ExperimentData::Percentiles { unit, series } => {
            let cols: Vec<String> = ["p50", "p90", "p99", "max"]
                .iter()
                .map(|c| format!("{c} ({unit})"))
                .collect();
            out.push_str(&table(
                &[
                    "series", "requests", "errors", &cols[0], &cols[1], &cols[2], &cols[3],
                ],
                1,
                series.iter().map(|s| {
                    vec![
                        s.name.clone(),
                        s.count.to_string(),
                        s.errors.to_string(),
                        fmt_num(s.p50),
                        fmt_num(s.p90),
                        fmt_num(s.p99),
                        fmt_num(s.max),
                    ]
                }),
            ));
        }
        ExperimentData::Sweep { modes } => {
            out.push_str(&table(
                &[
                    "mode",
                    "offered /s",
                    "answered /s",
                    "p50 ms",
                    "p99 ms",
                    "errors",
                    "threads",
                    "RSS MB",
                ],
                1,
                modes.iter().flat_map(|m| {
                    m.steps.iter().map(|s| {
                        vec![
                            m.mode.clone(),
                            fmt_num(s.rate),
                            fmt_num(s.throughput),
                            fmt_num(s.p50_ms),
                            fmt_num(s.p99_ms),
                            s.errors.to_string(),
                            fmt_num(s.threads),
                            fmt_num(s.rss_mb),
                        ]
                    })
                }),
            ));
        }
    }
    out
}

/// The stack the run measured: an object as a key/value table (nested values as compact
/// JSON), anything else as pretty JSON.
pub(crate) fn stack(stack: &Value) -> String {
    match stack {
        Value::Object(map) if !map.is_empty() => {
            let mut out = String::from("<table class=\"stack\">\n<tbody>\n");
            for (k, v) in map {
                let shown = match v {
                    Value::String(s) => escape(s),
                    Value::Object(_) | Value::Array(_) => {
                        format!("<code>{}</code>", escape(&v.to_string()))
                    }
                    other => escape(&other.to_string()),
                };
                let _ = writeln!(out, "<tr><th>{}</th><td>{shown}</td></tr>", escape(k));
            }
            out.push_str("</tbody>\n</table>\n");
            out
        }
        Value::Null => "<p class=\"muted\">Not recorded.</p>\n".to_owned(),
        other => {
            let pretty = serde_json::to_string_pretty(other).unwrap_or_else(|_| other.to_string());
            format!("<pre>{}</pre>\n", escape(&pretty))
        }
    }
}

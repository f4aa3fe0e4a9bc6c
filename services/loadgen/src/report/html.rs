//! The page: header, summary, one section per experiment, the stack. Plain HTML and inline
//! CSS; the charts come from `charts` as SVG strings.
use std::fmt::Write as _;

use super::charts::{self, Figure};
use super::{JSON_FILE, culprit, table};
use crate::model::{ExperimentData, ExperimentOutcome, RunReport};

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(crate) fn badge(pass: bool) -> &'static str {
    if pass {
        "<span class=\"badge pass\">PASS</span>"
    } else {
        "<span class=\"badge fail\">FAIL</span>"
    }
}

/// The anchor of experiment `i` (0-based): `exp-1-blocking`.
pub(crate) fn section_id(i: usize, name: &str) -> String {
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("exp-{}-{}", i + 1, slug.trim_matches('-'))
}

/// `2026-11-22T04:00:20Z` as `2026-11-22 04:00:20 UTC`; anything unparsable as it is.
fn when(generated_at: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(generated_at) {
        Ok(t) => t
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M:%S UTC")
            .to_string(),
        Err(_) => generated_at.to_owned(),
    }
}

pub(crate) fn page(report: &RunReport) -> String {
    let total = report.experiments.len();
    let passed = report.experiments.iter().filter(|e| e.passed).count();
    let all = passed == total;
    let verdict = format!("{passed} of {total} passed");
    let mut out = String::with_capacity(256 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>loopscope experiments: {verdict}</title>\n<style>\n{CSS}{culprit_css}</style>\n</head>\n<body>\n",
        culprit_css = culprit::CSS,
    );
    let _ = write!(
        out,
        "<header class=\"top\">\n<div class=\"wrap\">\n<p class=\"brand\">loopscope</p>\n\
         <h1>Experiment report</h1>\n\
         <p class=\"meta\">Generated <time datetime=\"{at_attr}\">{at}</time> · loopscope \
         <code>{version}</code></p>\n\
         <p class=\"overall {cls}\" id=\"overall\"><strong>{verdict}</strong>{detail}</p>\n\
         </div>\n</header>\n<main class=\"wrap\">\n",
        at_attr = escape(&report.generated_at),
        at = escape(&when(&report.generated_at)),
        version = escape(&report.loopscope_version),
        cls = if all { "pass" } else { "fail" },
        detail = overall_detail(&report.experiments),
    );

    out.push_str("<section class=\"card\" id=\"summary\">\n<h2>Summary</h2>\n");
    out.push_str(&table::summary(&report.experiments));
    out.push_str("</section>\n");

    for (i, e) in report.experiments.iter().enumerate() {
        experiment(&mut out, i, e);
    }

    let _ = write!(
        out,
        "<section class=\"card\" id=\"stack\">\n<h2>Stack</h2>\n\
         <p class=\"muted\">What the experiments ran against.</p>\n{stack}\
         <p>The data of this page: <a href=\"{JSON_FILE}\">{JSON_FILE}</a>.</p>\n</section>\n\
         </main>\n<footer class=\"wrap\">loopscope {version} · {at}</footer>\n</body>\n</html>\n",
        stack = table::stack(&report.stack),
        version = escape(&report.loopscope_version),
        at = escape(&when(&report.generated_at)),
    );
    out
}

/// After "N of M passed": what failed, or that nothing did.
fn overall_detail(experiments: &[ExperimentOutcome]) -> String {
    let failed: Vec<String> = experiments
        .iter()
        .filter(|e| !e.passed)
        .map(|e| format!("<code>{}</code>", escape(&e.name)))
        .collect();
    match (experiments.len(), failed.len()) {
        (0, _) => " · no experiment was run".to_owned(),
        (_, 0) => " · every prediction held".to_owned(),
        (_, n) => format!(" · {n} failed: {}", failed.join(", ")),
    }
}

fn experiment(out: &mut String, i: usize, e: &ExperimentOutcome) {
    let passed = e.checks.iter().filter(|c| c.pass).count();
    let seed = match &e.seed {
        Some(seed) => format!(" · reproduces seed <strong>{}</strong>", escape(seed)),
        None => String::new(),
    };
    let _ = write!(
        out,
        "<section class=\"card experiment {cls}\" id=\"{id}\" data-experiment=\"{name}\">\n\
         <div class=\"exp-head\"><h2><span class=\"idx\">{n}</span>{title}</h2>{badge}</div>\n\
         <p class=\"meta\"><code>{name}</code>{seed} · {passed} of {total} checks passed</p>\n\
         {prediction}\
         <h3>Predicted vs measured</h3>\n{checks}",
        cls = if e.passed { "pass" } else { "fail" },
        id = section_id(i, &e.name),
        name = escape(&e.name),
        n = i + 1,
        title = escape(&e.title),
        badge = badge(e.passed),
        total = e.checks.len(),
        prediction = if e.prediction.trim().is_empty() {
            String::new()
        } else {
            format!(
                "<div class=\"prediction\"><h3>Prediction</h3><p>{}</p></div>\n",
                escape(&e.prediction)
            )
        },
        checks = table::checks(&e.checks),
    );

    let (figures, grid) = match &e.data {
        ExperimentData::Timeline { scenarios } => (charts::timeline::figures(scenarios), false),
        ExperimentData::Bars { unit, bars } => (vec![charts::bars::figure(unit, bars)], false),
        ExperimentData::Percentiles { unit, series } => {
            (vec![charts::percentiles::figure(unit, series)], false)
        }
        ExperimentData::Sweep { modes } => (charts::sweep::figures(modes), true),
    };
    if figures.is_empty() {
        out.push_str("<p class=\"muted\">No data to chart.</p>\n");
    } else {
        out.push_str(if grid {
            "<div class=\"charts grid\">\n"
        } else {
            "<div class=\"charts\">\n"
        });
        for (k, f) in figures.iter().enumerate() {
            figure(out, &e.name, f);
            if let ExperimentData::Timeline { scenarios } = &e.data
                && let Some(c) = scenarios.get(k).and_then(|s| s.culprit.as_ref())
            {
                out.push_str(&culprit::aside(k + 1, c));
            }
        }
        out.push_str("</div>\n");
    }
    let _ = write!(
        out,
        "<details class=\"data\"><summary>The numbers behind the chart{s}</summary>\n{table}</details>\n</section>\n",
        s = if figures.len() == 1 { "" } else { "s" },
        table = table::data(&e.data),
    );
}

fn figure(out: &mut String, experiment: &str, f: &Figure) {
    let _ = write!(
        out,
        "<figure class=\"chart{wide}\" data-chart=\"{kind}\" data-experiment=\"{name}\"",
        wide = if f.wide { " wide" } else { "" },
        kind = f.kind,
        name = escape(experiment)
    );
    for (k, v) in &f.attrs {
        let _ = write!(out, " {k}=\"{}\"", escape(v));
    }
    let caption = escape(&f.caption);
    let _ = write!(out, ">\n<figcaption>{caption}</figcaption>\n");
    match &f.svg {
        Ok(svg) => {
            // An accessible name for the picture; the SVG itself comes from plotters.
            let labelled = svg.replacen(
                "<svg ",
                &format!("<svg role=\"img\" aria-label=\"{caption}\" "),
                1,
            );
            out.push_str(&labelled);
        }
        Err(e) => {
            let _ = write!(
                out,
                "<p class=\"chart-error\">This chart could not be drawn: {}</p>",
                escape(e)
            );
        }
    }
    out.push_str("</figure>\n");
}

const CSS: &str = r#":root {
  --ink: #1f2937; --muted: #6b7280; --line: #e5e7eb; --bg: #f3f4f6; --card: #ffffff;
  --pass: #166534; --pass-bg: #dcfce7; --fail: #991b1b; --fail-bg: #fee2e2; --accent: #2f6fb0;
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
.wrap { max-width: 1140px; margin: 0 auto; padding: 0 20px; }
header.top { background: #111827; color: #f9fafb; padding: 26px 0 22px; margin-bottom: 24px; }
header.top .brand { margin: 0; font-size: 13px; letter-spacing: .12em; text-transform: uppercase; color: #9ca3af; }
header.top h1 { margin: 2px 0 6px; font-size: 30px; font-weight: 650; }
header.top .meta { color: #d1d5db; margin: 0 0 14px; }
header.top code { background: #374151; color: #f9fafb; }
header.top .overall code { background: rgba(255,255,255,.7); color: inherit; }
.overall { display: inline-block; margin: 0; padding: 8px 14px; border-radius: 8px; font-size: 17px; }
.overall.pass { background: var(--pass-bg); color: var(--pass); }
.overall.fail { background: var(--fail-bg); color: var(--fail); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 18px 22px 20px; margin: 0 0 22px; box-shadow: 0 1px 2px rgba(0,0,0,.04); }
.experiment.pass { border-top: 4px solid #22c55e; }
.experiment.fail { border-top: 4px solid #ef4444; }
h2 { font-size: 21px; margin: 0 0 8px; }
h3 { font-size: 15px; margin: 18px 0 8px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); }
h4 { font-size: 14px; margin: 14px 0 6px; }
.exp-head { display: flex; align-items: center; justify-content: space-between; gap: 12px; }
.exp-head h2 { margin: 0; }
.idx { display: inline-block; min-width: 28px; height: 28px; line-height: 28px; margin-right: 10px;
  text-align: center; border-radius: 50%; background: #e5e7eb; font-size: 15px; vertical-align: 2px; }
.meta { color: var(--muted); margin: 6px 0 0; }
.muted { color: var(--muted); }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px;
  background: #f3f4f6; padding: 1px 5px; border-radius: 4px; }
.prediction { background: #eff6ff; border-left: 4px solid var(--accent); padding: 4px 14px 6px;
  margin-top: 14px; border-radius: 0 6px 6px 0; }
.prediction h3 { margin: 8px 0 2px; color: var(--accent); }
.prediction p { margin: 4px 0 6px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted);
  border-bottom: 2px solid var(--line); }
tbody tr:nth-child(even) { background: #fafafa; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.val { font-variant-numeric: tabular-nums; }
td.measured { font-weight: 600; }
td.tol { color: var(--muted); }
tr.fail td.measured { color: var(--fail); }
a { color: var(--accent); }
.summary a { text-decoration: none; }
.summary a:hover { text-decoration: underline; }
.badge { display: inline-block; padding: 1px 9px; border-radius: 999px; font-size: 12px; font-weight: 700;
  letter-spacing: .05em; }
.badge.pass { background: var(--pass-bg); color: var(--pass); }
.badge.fail { background: var(--fail-bg); color: var(--fail); }
.charts { margin-top: 16px; }
.charts.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr)); gap: 14px; }
figure.chart { margin: 0 0 14px; padding: 10px 10px 4px; border: 1px solid var(--line); border-radius: 8px;
  background: #fff; }
figure.chart figcaption { font-weight: 600; font-size: 14px; margin: 0 0 4px 4px; }
figure.chart svg { display: block; width: 100%; height: auto; }
.charts.grid figure.wide { grid-column: 1 / -1; }
.chart-error { color: var(--fail); }
details.data { margin-top: 8px; }
details.data summary { cursor: pointer; color: var(--accent); }
details.data table { font-size: 13px; margin-top: 6px; }
table.stack th { width: 220px; color: var(--muted); font-weight: 600; }
pre { background: #f9fafb; border: 1px solid var(--line); padding: 10px; border-radius: 6px; overflow: auto; }
footer { color: var(--muted); font-size: 13px; padding-bottom: 30px; }
@media print { body { background: #fff; } .card { box-shadow: none; break-inside: avoid; } }
"#;

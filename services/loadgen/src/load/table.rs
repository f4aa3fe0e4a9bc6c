//! The summary as tables, for people.
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};

use super::summary::Summary;

fn table(header: Vec<String>) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(header);
    t
}

fn align_right_from(t: &mut Table, first: usize, columns: usize) {
    for i in first..columns {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Title, totals, latency percentiles, statuses and error kinds.
pub(crate) fn render(s: &Summary) -> String {
    let mut out = String::new();
    let title = if s.interrupted() {
        "loadgen run (interrupted: partial results)"
    } else {
        "loadgen run"
    };
    out.push_str(&format!(
        "{title}: {}, {}\n",
        s.model_description(),
        s.urls.join(", ")
    ));

    let mut header = ["sent", "ok", "errors", "elapsed", "throughput"]
        .map(String::from)
        .to_vec();
    let mut row = vec![
        s.sent().to_string(),
        s.ok().to_string(),
        s.errors().to_string(),
        format!("{:.2} s", s.elapsed().as_secs_f64()),
        format!("{:.1} ok/s", s.throughput()),
    ];
    if s.unfinished() > 0 {
        header.push("unfinished".to_owned());
        row.push(s.unfinished().to_string());
    }
    let columns = header.len();
    let mut totals = table(header);
    totals.add_row(row);
    align_right_from(&mut totals, 0, columns);
    out.push_str(&format!("{totals}\n"));

    let l = s.latency();
    let mut latency = table(
        ["latency (ms)", "min", "p50", "p90", "p99", "p99.9", "max"]
            .map(String::from)
            .to_vec(),
    );
    latency.add_row(vec![
        format!("{} answered", l.count),
        ms(l.min),
        ms(l.p50),
        ms(l.p90),
        ms(l.p99),
        ms(l.p999),
        ms(l.max),
    ]);
    align_right_from(&mut latency, 1, 7);
    out.push_str(&format!("{latency}\n"));

    let statuses = s.statuses();
    let kinds = s.error_kinds();
    if !statuses.is_empty() || !kinds.is_empty() {
        let mut outcomes = table(["outcome", "count"].map(String::from).to_vec());
        for (status, n) in &statuses {
            outcomes.add_row(vec![format!("status {status}"), n.to_string()]);
        }
        for (kind, n) in kinds.iter().filter(|(k, _)| !k.starts_with("status_")) {
            outcomes.add_row(vec![format!("error: {kind}"), n.to_string()]);
        }
        align_right_from(&mut outcomes, 1, 2);
        out.push_str(&format!("{outcomes}\n"));
    }
    out
}

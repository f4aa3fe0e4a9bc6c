//! The terminal view: per experiment, predicted beside measured; then one line each.
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, Color, Table};

use crate::model::ExperimentOutcome;

fn verdict(pass: bool) -> Cell {
    if pass {
        Cell::new("PASS").fg(Color::Green)
    } else {
        Cell::new("FAIL").fg(Color::Red)
    }
}

pub(crate) fn print_outcome(o: &ExperimentOutcome) {
    let seed = o
        .seed
        .as_deref()
        .map(|s| format!(" (seed {s})"))
        .unwrap_or_default();
    println!("\n{}{seed}", o.title);
    println!("  prediction: {}", o.prediction);
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "check",
        "predicted",
        "measured",
        "tolerance",
        "verdict",
    ]);
    for c in &o.checks {
        table.add_row(vec![
            Cell::new(&c.label),
            Cell::new(&c.predicted),
            Cell::new(&c.measured),
            Cell::new(&c.tolerance),
            verdict(c.pass),
        ]);
    }
    println!("{table}");
}

pub(crate) fn print_summary(outcomes: &[ExperimentOutcome]) {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "experiment",
        "seed",
        "checks passed",
        "verdict",
    ]);
    for o in outcomes {
        let passed = o.checks.iter().filter(|c| c.pass).count();
        table.add_row(vec![
            Cell::new(&o.name),
            Cell::new(o.seed.as_deref().unwrap_or("-")),
            Cell::new(format!("{passed}/{}", o.checks.len())),
            verdict(o.passed),
        ]);
    }
    println!("\n{table}");
}

//! Experiment 1: every request of a scenario on a time axis, one lane per thread.
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    Area, Axis, CHAR_PX, DrawResult, Figure, GRID, INJECTED, INK, MEASURED, SMALL_TEXT, Scale,
    Swatch, item, render, style_mesh, text_style, with_legend,
};
use crate::model::{TimelineRequest, TimelineScenario};

const WIDTH: u32 = super::FULL_W;
/// Pixels per row; requests that overlap in time on one thread get a row each.
const ROW_PX: u32 = 24;
/// Space between two lanes, in rows.
const LANE_GAP: f64 = 0.5;
const WAIT: RGBColor = RGBColor(0x9c, 0xa3, 0xaf);

pub(crate) fn figures(scenarios: &[TimelineScenario]) -> Vec<Figure> {
    scenarios
        .iter()
        .enumerate()
        .map(|(i, s)| Figure {
            kind: "timeline",
            caption: format!("Scenario {}: {}", i + 1, s.name),
            svg: draw(s),
            attrs: vec![("data-scenario", (i + 1).to_string())],
            wide: true,
        })
        .collect()
}

/// One thread's lane: its label and its requests, each with the row it is drawn on.
struct Lane<'a> {
    label: String,
    rows: usize,
    requests: Vec<(&'a TimelineRequest, usize)>,
}

fn lane_label(thread: &str, thread_id: i64, loops: &[&str]) -> String {
    let name = if thread.is_empty() { "thread" } else { thread };
    let name = if name.chars().count() > 28 {
        // Keep the end, which tells threads apart ("…arbiter:1").
        let tail: String = name
            .chars()
            .rev()
            .take(27)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("…{tail}")
    } else {
        name.to_owned()
    };
    let loops = match loops {
        [] => String::new(),
        [one] => format!(" (loop {one})"),
        many => format!(" (loops {})", many.join(",")),
    };
    format!("{name} #{thread_id}{loops}")
}

fn lanes(requests: &[TimelineRequest]) -> Vec<Lane<'_>> {
    // Lanes in order of first use; a lane is one OS thread.
    let mut keys: Vec<(&str, i64)> = Vec::new();
    let mut by_start: Vec<&TimelineRequest> = requests.iter().collect();
    by_start.sort_by(|a, b| span(a).0.total_cmp(&span(b).0).then(a.index.cmp(&b.index)));
    for r in &by_start {
        let key = (r.thread.as_str(), r.thread_id);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.into_iter()
        .map(|(thread, tid)| {
            let mine: Vec<&TimelineRequest> = by_start
                .iter()
                .copied()
                .filter(|r| r.thread == thread && r.thread_id == tid)
                .collect();
            let mut loops: Vec<&str> = Vec::new();
            for r in &mine {
                if !r.event_loop.is_empty() && !loops.contains(&r.event_loop.as_str()) {
                    loops.push(&r.event_loop);
                }
            }
            // Greedy interval packing: each request on the first row free at its start.
            let mut row_ends: Vec<f64> = Vec::new();
            let mut placed = Vec::new();
            for r in mine {
                let (start, end) = span(r);
                let row = match row_ends.iter().position(|e| *e <= start) {
                    Some(row) => row,
                    None => {
                        row_ends.push(f64::NEG_INFINITY);
                        row_ends.len() - 1
                    }
                };
                row_ends[row] = end;
                placed.push((r, row));
            }
            Lane {
                label: lane_label(thread, tid, &loops),
                rows: row_ends.len().max(1),
                requests: placed,
            }
        })
        .collect()
}

/// What a request occupies on its lane: from when it was sent (its wait) to when it finished.
fn span(r: &TimelineRequest) -> (f64, f64) {
    let start = finite_or(r.sent_ms, r.started_ms).min(finite_or(r.started_ms, r.sent_ms));
    let end = finite_or(r.finished_ms, r.started_ms).max(finite_or(r.started_ms, 0.0));
    (start, end)
}

fn finite_or(v: f64, other: f64) -> f64 {
    if v.is_finite() {
        v
    } else if other.is_finite() {
        other
    } else {
        0.0
    }
}

fn draw(scenario: &TimelineScenario) -> Result<String, String> {
    let lanes = lanes(&scenario.requests);
    let total_rows: usize = lanes.iter().map(|l| l.rows).sum();
    let height_rows = total_rows as f64 + LANE_GAP * lanes.len().saturating_sub(1) as f64 + 0.6;
    let height = (super::LEGEND_H + 76 + (height_rows * ROW_PX as f64) as u32).clamp(170, 900);
    let label_w = lanes
        .iter()
        .map(|l| l.label.chars().count())
        .max()
        .unwrap_or(8);
    let label_area = ((label_w as f64 * CHAR_PX) as u32 + 14).clamp(60, 320);
    render((WIDTH, height), |root| {
        plot(root, scenario, &lanes, height_rows, label_area)
    })
}

fn plot(
    root: &Area<'_>,
    scenario: &TimelineScenario,
    lanes: &[Lane<'_>],
    height_rows: f64,
    label_area: u32,
) -> DrawResult {
    let has_injected = scenario.requests.iter().any(|r| r.injected);
    let mut legend = vec![item(
        "request running on the thread (# = sending order)",
        MEASURED,
        Swatch::Block,
    )];
    if has_injected {
        legend.push(item("the injected request", INJECTED, Swatch::Block));
    }
    legend.push(item("waiting: sent → started", WAIT, Swatch::Line));
    let area = with_legend(root, &legend)?;

    let x_end = scenario
        .requests
        .iter()
        .flat_map(|r| [r.finished_ms, r.answered_ms, r.started_ms])
        .filter(|v| v.is_finite())
        .fold(1.0, f64::max);
    let x = Scale::linear_tight([x_end]);

    // Rows are counted from the top; plotters' y grows upwards, so y = height_rows - top.
    let mut centers: Vec<(f64, String)> = Vec::new();
    let mut top = 0.3;
    let mut lane_tops = Vec::new();
    for lane in lanes {
        lane_tops.push(top);
        centers.push((
            height_rows - (top + lane.rows as f64 / 2.0),
            lane.label.clone(),
        ));
        top += lane.rows as f64 + LANE_GAP;
    }
    let y_axis = Axis::new(0.0..height_rows, centers.iter().map(|c| c.0).collect());

    let mut chart = ChartBuilder::on(&area)
        .margin_left(8)
        .margin_right(24)
        .margin_top(6)
        .x_label_area_size(44)
        .y_label_area_size(label_area)
        .build_cartesian_2d(x.axis(), y_axis)?;
    let x_fmt = |p: &f64| x.label(*p);
    let y_fmt = |p: &f64| {
        centers
            .iter()
            .find(|c| (c.0 - *p).abs() < 1e-6)
            .map(|c| c.1.clone())
            .unwrap_or_default()
    };
    let mut mesh = chart.configure_mesh();
    style_mesh(&mut mesh);
    mesh.disable_y_mesh()
        .x_desc("ms from the scenario's start")
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .draw()?;

    // Lane bands: alternate a faint background so rows read as one thread.
    for (i, (lane, lane_top)) in lanes.iter().zip(&lane_tops).enumerate() {
        if i % 2 == 1 {
            let y0 = height_rows - (lane_top - LANE_GAP / 2.0);
            let y1 = height_rows - (lane_top + lane.rows as f64 + LANE_GAP / 2.0);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x.pos(x.lo), y0), (x.pos(x.hi), y1)],
                RGBColor(0xf5, 0xf7, 0xfa).filled(),
            )))?;
        }
        if i > 0 {
            let y = height_rows - (lane_top - LANE_GAP / 2.0);
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(x.pos(x.lo), y), (x.pos(x.hi), y)],
                GRID.stroke_width(1),
            )))?;
        }
    }

    for (lane, lane_top) in lanes.iter().zip(&lane_tops) {
        for (r, row) in &lane.requests {
            let mid = height_rows - (lane_top + *row as f64 + 0.5);
            let (y_hi, y_lo) = (mid + 0.33, mid - 0.33);
            let started = finite_or(r.started_ms, r.sent_ms);
            let finished = finite_or(r.finished_ms, started).max(started);
            let sent = finite_or(r.sent_ms, started);
            let color = if r.injected { INJECTED } else { MEASURED };
            if started > sent {
                chart.draw_series([
                    PathElement::new(vec![(sent, mid), (started, mid)], WAIT.stroke_width(2)),
                    PathElement::new(
                        vec![(sent, mid + 0.2), (sent, mid - 0.2)],
                        WAIT.stroke_width(2),
                    ),
                ])?;
            }
            // At least a couple of pixels wide, so an instant request is still seen.
            let (px0, _) = chart.backend_coord(&(started, mid));
            let (px1, _) = chart.backend_coord(&(finished, mid));
            let min_ms = (x.hi - x.lo) / 400.0;
            let shown_end = if px1 - px0 < 3 {
                started + min_ms
            } else {
                finished
            };
            chart.draw_series(std::iter::once(Rectangle::new(
                [(started, y_hi), (shown_end, y_lo)],
                color.filled(),
            )))?;
            let label = format!("#{}", r.index);
            let label_px = (label.chars().count() as f64 * CHAR_PX * 0.9) as i32 + 8;
            let (_, py) = chart.backend_coord(&(started, mid));
            let (at, style) = if px1 - px0 >= label_px {
                ((px0 + 4, py), text_style(SMALL_TEXT, WHITE))
            } else {
                let (end_px, _) = chart.backend_coord(&(shown_end, mid));
                ((end_px + 3, py), text_style(SMALL_TEXT, INK))
            };
            root.draw(&Text::new(
                label,
                at,
                style.pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
        }
    }
    Ok(())
}

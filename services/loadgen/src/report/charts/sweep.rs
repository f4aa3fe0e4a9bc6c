//! Experiment 6: an arrival-rate sweep per mode: latency, throughput, and what it cost.
use plotters::prelude::*;

use super::{
    Area, DrawResult, ERROR, FULL_W, Figure, HALF_W, LegendItem, Scale, Swatch, item, render,
    series_color, style_mesh, with_legend,
};
use crate::model::{SweepSeries, SweepStep};

const HEIGHT: u32 = 340;
const IDEAL: RGBColor = RGBColor(0x9c, 0xa3, 0xaf);

pub(crate) fn figures(modes: &[SweepSeries]) -> Vec<Figure> {
    vec![
        Figure {
            kind: "sweep-latency",
            caption: "Latency vs offered rate".to_owned(),
            svg: render((HALF_W, HEIGHT), |root| latency(root, modes)),
            attrs: Vec::new(),
            wide: false,
        },
        Figure {
            kind: "sweep-throughput",
            caption: "Throughput vs offered rate".to_owned(),
            svg: render((HALF_W, HEIGHT), |root| throughput(root, modes)),
            attrs: Vec::new(),
            wide: false,
        },
        Figure {
            kind: "sweep-resources",
            caption:
                "What it costs: the worker's threads (left axis) and resident memory (right axis)"
                    .to_owned(),
            svg: render((FULL_W, HEIGHT), |root| resources(root, modes)),
            attrs: Vec::new(),
            wide: true,
        },
    ]
}

fn rate_scale(modes: &[SweepSeries]) -> Scale {
    Scale::linear_tight(modes.iter().flat_map(|m| m.steps.iter().map(|s| s.rate)))
}

fn points(steps: &[SweepStep], y: &Scale, value: impl Fn(&SweepStep) -> f64) -> Vec<(f64, f64)> {
    let mut pts: Vec<(f64, f64)> = steps
        .iter()
        .filter(|s| s.rate.is_finite() && value(s).is_finite())
        .map(|s| (s.rate, y.pos(value(s))))
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    pts
}

fn mode_legend(modes: &[SweepSeries], first: &str, second: Option<&str>) -> Vec<LegendItem> {
    let mut items = Vec::new();
    for (i, m) in modes.iter().enumerate() {
        items.push(item(
            format!("{} {first}", m.mode),
            series_color(i),
            Swatch::Line,
        ));
        if let Some(second) = second {
            items.push(item(
                format!("{} {second}", m.mode),
                series_color(i),
                Swatch::Dashed,
            ));
        }
    }
    items
}

const RATE_DESC: &str = "offered rate (requests/s)";

fn latency(root: &Area<'_>, modes: &[SweepSeries]) -> DrawResult {
    let mut legend = mode_legend(modes, "p99", Some("p50"));
    let any_errors = modes.iter().any(|m| m.steps.iter().any(|s| s.errors > 0));
    if any_errors {
        legend.push(item("errors", ERROR, Swatch::Cross));
    }
    let area = with_legend(root, &legend)?;
    let x = rate_scale(modes);
    let y = Scale::auto(
        modes
            .iter()
            .flat_map(|m| m.steps.iter().flat_map(|s| [s.p50_ms, s.p99_ms])),
    );
    let mut chart = ChartBuilder::on(&area)
        .margin_left(6)
        .margin_right(18)
        .margin_top(10)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(x.axis(), y.axis())?;
    let x_fmt = |p: &f64| x.label(*p);
    let y_fmt = |p: &f64| y.label(*p);
    let mut mesh = chart.configure_mesh();
    style_mesh(&mut mesh);
    mesh.x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .x_desc(RATE_DESC)
        .y_desc(y.desc("latency (ms)"))
        .draw()?;
    for (i, m) in modes.iter().enumerate() {
        let c = series_color(i);
        let p99 = points(&m.steps, &y, |s| s.p99_ms);
        let p50 = points(&m.steps, &y, |s| s.p50_ms);
        chart.draw_series(DashedLineSeries::new(p50, 6, 4, c.stroke_width(2)))?;
        chart.draw_series(LineSeries::new(p99.clone(), c.stroke_width(3)))?;
        chart.draw_series(p99.iter().map(|p| Circle::new(*p, 4, c.filled())))?;
        chart.draw_series(
            m.steps
                .iter()
                .filter(|s| s.errors > 0 && s.rate.is_finite() && s.p99_ms.is_finite())
                .map(|s| Cross::new((s.rate, y.pos(s.p99_ms)), 7, ERROR.stroke_width(2))),
        )?;
    }
    Ok(())
}

fn throughput(root: &Area<'_>, modes: &[SweepSeries]) -> DrawResult {
    let mut legend = mode_legend(modes, "throughput", None);
    legend.push(item("ideal: all answered", IDEAL, Swatch::Dashed));
    let area = with_legend(root, &legend)?;
    let x = rate_scale(modes);
    let y = Scale::linear(
        modes
            .iter()
            .flat_map(|m| m.steps.iter().flat_map(|s| [s.rate, s.throughput])),
    );
    let mut chart = ChartBuilder::on(&area)
        .margin_left(6)
        .margin_right(18)
        .margin_top(10)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(x.axis(), y.axis())?;
    let x_fmt = |p: &f64| x.label(*p);
    let y_fmt = |p: &f64| y.label(*p);
    let mut mesh = chart.configure_mesh();
    style_mesh(&mut mesh);
    mesh.x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .x_desc(RATE_DESC)
        .y_desc("answered (requests/s)")
        .draw()?;
    let top = x.hi.min(y.hi);
    chart.draw_series(DashedLineSeries::new(
        vec![(0.0, 0.0), (top, top)],
        6,
        5,
        IDEAL.stroke_width(2),
    ))?;
    for (i, m) in modes.iter().enumerate() {
        let c = series_color(i);
        let pts = points(&m.steps, &y, |s| s.throughput);
        chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(3)))?;
        chart.draw_series(pts.iter().map(|p| Circle::new(*p, 4, c.filled())))?;
    }
    Ok(())
}

fn resources(root: &Area<'_>, modes: &[SweepSeries]) -> DrawResult {
    let area = with_legend(
        root,
        &mode_legend(modes, "threads", Some("resident memory")),
    )?;
    let x = rate_scale(modes);
    let threads = Scale::linear(modes.iter().flat_map(|m| m.steps.iter().map(|s| s.threads)));
    let rss = Scale::linear(modes.iter().flat_map(|m| m.steps.iter().map(|s| s.rss_mb)));
    let mut chart = ChartBuilder::on(&area)
        .margin_left(6)
        .margin_right(6)
        .margin_top(10)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .right_y_label_area_size(64)
        .build_cartesian_2d(x.axis(), threads.axis())?
        .set_secondary_coord(x.axis(), rss.axis());
    let x_fmt = |p: &f64| x.label(*p);
    let t_fmt = |p: &f64| threads.label(*p);
    let r_fmt = |p: &f64| rss.label(*p);
    let mut mesh = chart.configure_mesh();
    style_mesh(&mut mesh);
    mesh.x_label_formatter(&x_fmt)
        .y_label_formatter(&t_fmt)
        .x_desc(RATE_DESC)
        .y_desc("threads")
        .draw()?;
    chart
        .configure_secondary_axes()
        .axis_style(super::AXIS)
        .label_style(super::text_style(super::TEXT, super::INK))
        .axis_desc_style(super::text_style(super::TEXT, super::MUTED))
        .y_label_formatter(&r_fmt)
        .y_desc("resident memory (MB)")
        .draw()?;
    for (i, m) in modes.iter().enumerate() {
        let c = series_color(i);
        let t = points(&m.steps, &threads, |s| s.threads);
        chart.draw_series(LineSeries::new(t.clone(), c.stroke_width(3)))?;
        chart.draw_series(t.iter().map(|p| Circle::new(*p, 4, c.filled())))?;
        let r = points(&m.steps, &rss, |s| s.rss_mb);
        chart.draw_secondary_series(DashedLineSeries::new(r.clone(), 6, 4, c.stroke_width(2)))?;
        chart.draw_secondary_series(r.iter().map(|p| TriangleMarker::new(*p, 5, c.filled())))?;
    }
    Ok(())
}

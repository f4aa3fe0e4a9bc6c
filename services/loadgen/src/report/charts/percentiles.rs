//! Experiments 4 and 5: p50, p90, p99 and max per series, as grouped bars.
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    Area, CHAR_PX, DrawResult, Figure, INK, SMALL_TEXT, Scale, Swatch, categories, category_at,
    fmt_num, item, render, style_mesh, text_style, truncate, with_legend,
};
use crate::model::PercentileSeries;

const WIDTH: u32 = super::FULL_W;
const HEIGHT: u32 = 380;
/// Light to dark: the higher the percentile, the darker.
const SHADES: [(&str, RGBColor); 4] = [
    ("p50", RGBColor(0x9e, 0xca, 0xe1)),
    ("p90", RGBColor(0x5a, 0x9b, 0xd0)),
    ("p99", RGBColor(0x2b, 0x63, 0xa8)),
    ("max", RGBColor(0x17, 0x2f, 0x5e)),
];

pub(crate) fn figure(unit: &str, series: &[PercentileSeries]) -> Figure {
    Figure {
        kind: "percentiles",
        caption: format!("Latency percentiles per series, in {unit}"),
        svg: render((WIDTH, HEIGHT), |root| plot(root, unit, series)),
        attrs: Vec::new(),
        wide: true,
    }
}

fn values(s: &PercentileSeries) -> [f64; 4] {
    [s.p50, s.p90, s.p99, s.max]
}

fn plot(root: &Area<'_>, unit: &str, series: &[PercentileSeries]) -> DrawResult {
    let legend: Vec<_> = SHADES
        .iter()
        .map(|(name, c)| item(*name, *c, Swatch::Block))
        .collect();
    let area = with_legend(root, &legend)?;
    let y = Scale::auto(series.iter().flat_map(values));
    let n = series.len().max(1);
    let slot_px = (WIDTH as f64 - 100.0) / n as f64;
    let max_chars = ((slot_px - 8.0) / CHAR_PX).max(4.0) as usize;
    let labels: Vec<String> = series
        .iter()
        .map(|s| truncate(&s.name, max_chars))
        .collect();

    let mut chart = ChartBuilder::on(&area)
        .margin_left(8)
        .margin_right(20)
        .margin_top(12)
        .x_label_area_size(36)
        .y_label_area_size(72)
        .build_cartesian_2d(categories(n), y.axis())?;
    let x_fmt = |p: &f64| labels.get(category_at(*p)).cloned().unwrap_or_default();
    let y_fmt = |p: &f64| y.label(*p);
    let y_desc = y.desc(&format!("latency ({unit})"));
    let mut mesh = chart.configure_mesh();
    style_mesh(&mut mesh);
    mesh.disable_x_mesh()
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .y_desc(y_desc)
        .draw()?;

    let base = y.pos(y.lo.max(0.0));
    // Four bars per series, each at most 64 px wide.
    let bar_w = (64.0 / slot_px).min(0.2);
    let bar_px = slot_px * bar_w;
    for (i, s) in series.iter().enumerate() {
        for (k, value) in values(s).into_iter().enumerate() {
            if !value.is_finite() {
                continue;
            }
            let x0 = i as f64 + 0.5 - 2.0 * bar_w + k as f64 * bar_w;
            let x1 = x0 + bar_w * 0.92;
            let top = y.pos(value);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x0, base), (x1, top)],
                SHADES[k].1.filled(),
            )))?;
            let text = fmt_num(value);
            // Label a bar only where the number fits over it.
            if (text.chars().count() as f64 * CHAR_PX * 0.9) <= bar_px + 6.0 {
                let (px, py) = chart.backend_coord(&((x0 + x1) / 2.0, top));
                root.draw(&Text::new(
                    text,
                    (px, py - 3),
                    text_style(SMALL_TEXT, INK).pos(Pos::new(HPos::Center, VPos::Bottom)),
                ))?;
            }
        }
    }
    Ok(())
}

//! Experiments 2 and 3: predicted and measured side by side, one group per variant.
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    Area, CHAR_PX, DrawResult, Figure, INK, MEASURED, MUTED, PREDICTED, SMALL_TEXT, Scale, Swatch,
    categories, category_at, fmt_num, item, render, style_mesh, text_style, truncate, with_legend,
};
use crate::model::Bar;

const WIDTH: u32 = super::FULL_W;
const HEIGHT: u32 = 360;

pub(crate) fn figure(unit: &str, bars: &[Bar]) -> Figure {
    Figure {
        kind: "bars",
        caption: format!("Predicted and measured, in {unit}"),
        svg: render((WIDTH, HEIGHT), |root| plot(root, unit, bars)),
        attrs: Vec::new(),
        wide: true,
    }
}

fn plot(root: &Area<'_>, unit: &str, bars: &[Bar]) -> DrawResult {
    let area = with_legend(
        root,
        &[
            item("predicted", PREDICTED, Swatch::Block),
            item("measured", MEASURED, Swatch::Block),
        ],
    )?;
    // Bars need a zero baseline to compare lengths honestly: linear axis.
    let y = Scale::linear(bars.iter().flat_map(|b| [b.predicted, b.measured]));
    let n = bars.len().max(1);
    let slot_px = (WIDTH as f64 - 100.0) / n as f64;
    let max_chars = ((slot_px - 8.0) / CHAR_PX).max(4.0) as usize;
    let labels: Vec<String> = bars.iter().map(|b| truncate(&b.label, max_chars)).collect();

    let mut chart = ChartBuilder::on(&area)
        .margin_left(8)
        .margin_right(20)
        .margin_top(12)
        .x_label_area_size(36)
        .y_label_area_size(72)
        .build_cartesian_2d(categories(n), y.axis())?;
    let x_fmt = |p: &f64| labels.get(category_at(*p)).cloned().unwrap_or_default();
    let y_fmt = |p: &f64| y.label(*p);
    let y_desc = y.desc(unit);
    let mut mesh = chart.configure_mesh();
    style_mesh(&mut mesh);
    mesh.disable_x_mesh()
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .y_desc(y_desc)
        .draw()?;

    let base = y.pos(y.lo.max(0.0));
    // A bar at most 110 px wide: two bars in a wide chart would otherwise be slabs.
    let half = (110.0 / slot_px).min(0.35);
    for (i, b) in bars.iter().enumerate() {
        let i = i as f64;
        for (value, x0, x1, color) in [
            (b.predicted, 0.49 - half, 0.49, PREDICTED),
            (b.measured, 0.51, 0.51 + half, MEASURED),
        ] {
            if !value.is_finite() {
                continue;
            }
            let top = y.pos(value);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(i + x0, base), (i + x1, top)],
                color.filled(),
            )))?;
            let (px, py) = chart.backend_coord(&(i + (x0 + x1) / 2.0, top));
            let color = if color == MEASURED { INK } else { MUTED };
            // Over the end of the bar; under it for a bar that goes down.
            let (dy, v) = if top < base {
                (3, VPos::Top)
            } else {
                (-3, VPos::Bottom)
            };
            root.draw(&Text::new(
                fmt_num(value),
                (px, py + dy),
                text_style(SMALL_TEXT, color).pos(Pos::new(HPos::Center, v)),
            ))?;
        }
    }
    Ok(())
}

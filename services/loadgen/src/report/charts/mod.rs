//! The report's charts, drawn with plotters into SVG strings.
//!
//! Every chart is built on `f64` axes whose tick positions we choose ourselves (`Scale`), so a
//! log axis is just a linear one over `log10(value)` with its labels mapped back: one chart
//! type for all of them, and ticks at round numbers.
use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;

pub(crate) mod bars;
pub(crate) mod percentiles;
pub(crate) mod sweep;
pub(crate) mod timeline;

/// One chart, ready to be put in a `<figure>`.
pub(crate) struct Figure {
    /// The `data-chart` attribute: `timeline`, `bars`, `percentiles`, `sweep-latency`, ...
    pub(crate) kind: &'static str,
    /// Plain text (escaped when written out).
    pub(crate) caption: String,
    /// The SVG, or why it could not be drawn.
    pub(crate) svg: Result<String, String>,
    /// Extra attributes (name, value), e.g. `data-scenario`.
    pub(crate) attrs: Vec<(&'static str, String)>,
    /// Spans the whole width where figures sit side by side.
    pub(crate) wide: bool,
}

/// The width of a chart that has a row to itself, and of one of two side by side.
pub(crate) const FULL_W: u32 = 1040;
pub(crate) const HALF_W: u32 = 520;

pub(crate) type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
pub(crate) type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// A linear `f64` axis whose ticks are exactly the points given: plotters' own `f64` axis
/// chooses its ticks itself, and its key-point wrapper cannot take a label formatter.
#[derive(Clone, Debug)]
pub(crate) struct Axis {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Axis {
    pub(crate) fn new(range: Range<f64>, ticks: Vec<f64>) -> Axis {
        let (lo, hi) = (range.start, range.end);
        let hi = if hi > lo { hi } else { lo + 1.0 };
        let ticks = ticks
            .into_iter()
            .filter(|t| *t >= lo - 1e-9 && *t <= hi + 1e-9)
            .collect();
        Axis { lo, hi, ticks }
    }
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let t = ((*value - self.lo) / (self.hi - self.lo)).clamp(-1.0, 2.0);
        let t = if t.is_finite() { t } else { 0.0 };
        limit.0 + ((limit.1 - limit.0) as f64 * t).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

/// The font every chart uses; SVG leaves the choice of the actual face to the browser.
pub(crate) const FONT: &str = "sans-serif";
/// plotters writes `font-size = size / 1.24`; these give 12px and 11px text.
pub(crate) const TEXT: f64 = 15.0;
pub(crate) const SMALL_TEXT: f64 = 13.6;
/// Rough width of one character of `TEXT`, in pixels, for layout decisions.
pub(crate) const CHAR_PX: f64 = 6.8;

pub(crate) const INK: RGBColor = RGBColor(0x37, 0x41, 0x51);
pub(crate) const MUTED: RGBColor = RGBColor(0x6b, 0x72, 0x80);
pub(crate) const GRID: RGBColor = RGBColor(0xe5, 0xe7, 0xeb);
pub(crate) const AXIS: RGBColor = RGBColor(0x9c, 0xa3, 0xaf);
pub(crate) const PREDICTED: RGBColor = RGBColor(0xc4, 0xc9, 0xd1);
pub(crate) const MEASURED: RGBColor = RGBColor(0x2f, 0x6f, 0xb0);
pub(crate) const INJECTED: RGBColor = RGBColor(0xd6, 0x45, 0x45);
pub(crate) const ERROR: RGBColor = RGBColor(0xc0, 0x26, 0x26);

/// Colours for series that have no order (modes): blue, orange, green, purple, brown.
const SERIES: [RGBColor; 5] = [
    RGBColor(0x2f, 0x6f, 0xb0),
    RGBColor(0xe8, 0x7d, 0x12),
    RGBColor(0x3a, 0x91, 0x4a),
    RGBColor(0x8e, 0x5a, 0xa8),
    RGBColor(0x8c, 0x5a, 0x3c),
];

pub(crate) fn series_color(i: usize) -> RGBColor {
    SERIES[i % SERIES.len()]
}

pub(crate) fn text_style(size: f64, color: RGBColor) -> TextStyle<'static> {
    (FONT, size).into_font().color(&color)
}

/// Draws into a fresh SVG of `size` pixels and returns the markup.
pub(crate) fn render(
    size: (u32, u32),
    draw: impl FnOnce(&Area<'_>) -> DrawResult,
) -> Result<String, String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(&root).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(buf)
}

/// How a legend entry is drawn.
#[derive(Clone, Copy)]
pub(crate) enum Swatch {
    Block,
    Line,
    Dashed,
    Cross,
}

pub(crate) struct LegendItem {
    pub(crate) label: String,
    pub(crate) color: RGBColor,
    pub(crate) swatch: Swatch,
}

pub(crate) fn item(label: impl Into<String>, color: RGBColor, swatch: Swatch) -> LegendItem {
    LegendItem {
        label: label.into(),
        color,
        swatch,
    }
}

/// Height of one line of the legend strip at the top of a chart.
pub(crate) const LEGEND_H: u32 = 24;

/// Where each legend entry goes: (line, x) per item, and the number of lines.
fn legend_layout(items: &[LegendItem], width: i32) -> (Vec<(i32, i32)>, i32) {
    let mut at = Vec::with_capacity(items.len());
    let (mut line, mut x) = (0, LEGEND_X);
    for it in items {
        let w = 24 + (it.label.chars().count() as f64 * CHAR_PX) as i32;
        if x + w > width - 8 && x > LEGEND_X {
            line += 1;
            x = LEGEND_X;
        }
        at.push((line, x));
        x += w + 22;
    }
    (at, line + 1)
}

const LEGEND_X: i32 = 56;

/// How many pixels the legend of `items` takes on a chart `width` wide.
pub(crate) fn legend_height(items: &[LegendItem], width: u32) -> u32 {
    legend_layout(items, width as i32).1 as u32 * LEGEND_H + 4
}

/// Splits off a strip at the top of `root` and draws the legend in it, left to right and
/// wrapping; returns the area left for the chart. Kept out of the plot, the legend never
/// hides data.
pub(crate) fn with_legend<'a>(
    root: &Area<'a>,
    items: &[LegendItem],
) -> Result<Area<'a>, Box<dyn std::error::Error>> {
    let width = root.dim_in_pixel().0;
    let (strip, rest) = root.split_vertically(legend_height(items, width));
    let (at, _) = legend_layout(items, width as i32);
    for (it, (line, x)) in items.iter().zip(at) {
        let y = line * LEGEND_H as i32 + LEGEND_H as i32 / 2 + 2;
        match it.swatch {
            Swatch::Block => {
                strip.draw(&Rectangle::new(
                    [(x, y - 6), (x + 16, y + 6)],
                    it.color.filled(),
                ))?;
            }
            Swatch::Line => {
                strip.draw(&PathElement::new(
                    vec![(x, y), (x + 18, y)],
                    it.color.stroke_width(3),
                ))?;
            }
            Swatch::Dashed => {
                for dx in [0, 7, 14] {
                    strip.draw(&PathElement::new(
                        vec![(x + dx, y), (x + dx + 4, y)],
                        it.color.stroke_width(2),
                    ))?;
                }
            }
            Swatch::Cross => {
                strip.draw(&Cross::new((x + 8, y), 5, it.color.stroke_width(2)))?;
            }
        }
        strip.draw(&Text::new(
            it.label.clone(),
            (x + 24, y),
            text_style(TEXT, INK).pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Left,
                plotters::style::text_anchor::VPos::Center,
            )),
        ))?;
    }
    Ok(rest)
}

/// Formats a number for a label: three significant digits or so, no trailing zeros.
pub(crate) fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_owned();
    }
    if v == 0.0 {
        return "0".to_owned(); // not "-0"
    }
    let a = v.abs();
    let s = if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// Shortens `s` to at most `max` characters, with an ellipsis.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A value axis: linear from `lo`, or logarithmic, with round ticks.
#[derive(Clone, Debug)]
pub(crate) struct Scale {
    pub(crate) log: bool,
    pub(crate) lo: f64,
    pub(crate) hi: f64,
    ticks: Vec<f64>,
}

impl Scale {
    /// Linear from 0 (or below, for negative values) to the first round number above the
    /// largest value: for value axes.
    pub(crate) fn linear(values: impl IntoIterator<Item = f64>) -> Scale {
        Scale::linear_with(values, true)
    }

    /// Linear from 0 to just past the largest value, ticks at round numbers inside: for the
    /// horizontal axis, where rounding up would leave an empty band on the right.
    pub(crate) fn linear_tight(values: impl IntoIterator<Item = f64>) -> Scale {
        Scale::linear_with(values, false)
    }

    fn linear_with(values: impl IntoIterator<Item = f64>, round_up: bool) -> Scale {
        let (mut lo, mut hi) = (0.0_f64, 0.0_f64);
        for v in values.into_iter().filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if hi - lo <= 0.0 {
            hi = lo + 1.0;
        }
        let step = nice_step((hi - lo) / 5.0);
        let lo = (lo / step).floor() * step;
        let hi = if round_up {
            (hi * 1.08 / step).ceil() * step
        } else {
            hi + (hi - lo) * 0.03
        };
        let mut ticks = Vec::new();
        let mut k = 0.0;
        while lo + k * step <= hi + step * 1e-9 {
            let t = lo + k * step;
            ticks.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
            k += 1.0;
        }
        Scale {
            log: false,
            lo,
            hi,
            ticks,
        }
    }

    /// Logarithmic, from a little below the smallest positive value to a little above the
    /// largest; ticks at 1, 2, 5 × 10ⁿ (only at powers of ten when that would be too many).
    pub(crate) fn log(values: impl IntoIterator<Item = f64>) -> Scale {
        let pos: Vec<f64> = values
            .into_iter()
            .filter(|v| v.is_finite() && *v > 0.0)
            .collect();
        if pos.is_empty() {
            return Scale::linear([1.0]);
        }
        let min = pos.iter().copied().fold(f64::INFINITY, f64::min);
        let max = pos.iter().copied().fold(0.0, f64::max);
        let lo = min / 1.4;
        let hi = max * 1.5;
        let mut ticks = Vec::new();
        let decades = hi.log10() - lo.log10();
        let mults: &[f64] = if decades <= 2.5 {
            &[1.0, 2.0, 5.0]
        } else {
            &[1.0]
        };
        let mut p = lo.log10().floor() as i32;
        while 10f64.powi(p) <= hi {
            for m in mults {
                let t = m * 10f64.powi(p);
                if t >= lo && t <= hi {
                    ticks.push(t);
                }
            }
            p += 1;
        }
        Scale {
            log: true,
            lo,
            hi,
            ticks,
        }
    }

    /// Log when the positive values span more than 20×, linear otherwise.
    pub(crate) fn auto(values: impl IntoIterator<Item = f64>) -> Scale {
        let vals: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        let pos = vals.iter().copied().filter(|v| *v > 0.0);
        let min = pos.clone().fold(f64::INFINITY, f64::min);
        let max = pos.fold(0.0, f64::max);
        if min.is_finite() && max / min > 20.0 && vals.iter().all(|v| *v >= 0.0) {
            Scale::log(vals)
        } else {
            Scale::linear(vals)
        }
    }

    /// Where `v` goes on the chart's axis.
    pub(crate) fn pos(&self, v: f64) -> f64 {
        if self.log { v.max(self.lo).log10() } else { v }
    }

    /// The value at an axis position, for tick labels.
    pub(crate) fn value(&self, p: f64) -> f64 {
        if self.log { 10f64.powf(p) } else { p }
    }

    pub(crate) fn axis(&self) -> Axis {
        let ticks = self.ticks.iter().map(|t| self.pos(*t)).collect();
        Axis::new(self.pos(self.lo)..self.pos(self.hi), ticks)
    }

    pub(crate) fn label(&self, p: f64) -> String {
        fmt_num(self.value(p))
    }

    /// The axis title, saying when it is logarithmic.
    pub(crate) fn desc(&self, what: &str) -> String {
        if self.log {
            format!("{what}, log scale")
        } else {
            what.to_owned()
        }
    }
}

/// 1, 2 or 5 × 10ⁿ, the smallest not below `raw`.
fn nice_step(raw: f64) -> f64 {
    let raw = if raw.is_finite() && raw > 0.0 {
        raw
    } else {
        1.0
    };
    let mag = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * mag >= raw * (1.0 - 1e-9) {
            return m * mag;
        }
    }
    10.0 * mag
}

/// A categorical axis over `n` slots: slot `i` spans `i..i+1`, its tick at the middle.
pub(crate) fn categories(n: usize) -> Axis {
    let n = n.max(1);
    Axis::new(0.0..n as f64, (0..n).map(|i| i as f64 + 0.5).collect())
}

/// The category of a tick position made by `categories`.
pub(crate) fn category_at(p: f64) -> usize {
    p.floor().max(0.0) as usize
}

/// The mesh every chart uses: light grid, grey axes, readable labels.
pub(crate) fn style_mesh<X, Y>(mesh: &mut plotters::chart::MeshStyle<'_, '_, X, Y, SVGBackend<'_>>)
where
    X: plotters::coord::ranged1d::Ranged,
    Y: plotters::coord::ranged1d::Ranged,
{
    mesh.bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(AXIS)
        .label_style(text_style(TEXT, INK))
        .axis_desc_style(text_style(TEXT, MUTED));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short() {
        assert_eq!(fmt_num(1234.567), "1235");
        assert_eq!(fmt_num(12.34), "12.3");
        assert_eq!(fmt_num(1.5), "1.5");
        assert_eq!(fmt_num(0.25), "0.25");
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(-0.0), "0");
        assert_eq!(fmt_num(f64::NAN), "–");
    }

    #[test]
    fn log_scale_when_range_is_wide() {
        let s = Scale::auto([2.0, 5.0, 900.0]);
        assert!(s.log);
        assert!(s.lo <= 2.0 && s.hi >= 900.0);
        assert!(s.ticks.contains(&100.0));
        let s = Scale::auto([20.0, 50.0, 90.0]);
        assert!(!s.log);
        assert_eq!(s.lo, 0.0);
        assert!(s.hi >= 90.0);
    }

    #[test]
    fn long_text_is_shortened() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}

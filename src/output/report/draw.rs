//! Draws a `Chart` with plotters, once as SVG (inlined in the HTML report) and once as PNG
//! (linked from the Markdown report). One drawing routine serves both backends.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::coord::ranged1d::SegmentValue;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::chart::{Body, Chart, Lines, Rgb, Rows};
use crate::output::font::{ensure_font, FONT};

const WIDTH: u32 = 1000;
pub fn svg(chart: &Chart) -> Result<String> {
    ensure_font()?;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height(chart))).into_drawing_area();
        draw(&root, chart).map_err(|e| anyhow!("drawing chart {}: {e}", chart.name))?;
        root.present()
            .map_err(|e| anyhow!("drawing chart {}: {e}", chart.name))?;
    }
    Ok(out)
}

pub fn png(chart: &Chart, path: &Path) -> Result<()> {
    ensure_font()?;
    let root = BitMapBackend::new(path, (WIDTH, height(chart))).into_drawing_area();
    draw(&root, chart).map_err(|e| anyhow!("drawing chart {}: {e}", chart.name))?;
    root.present()
        .map_err(|e| anyhow!("writing {}: {e}", path.display()))
}

fn height(chart: &Chart) -> u32 {
    match &chart.body {
        Body::Rows(r) => {
            150 + 30 * r.rows.len() as u32
                + if r.legend.is_empty() {
                    0
                } else {
                    30 * (1 + r.legend.len() as u32 / 5)
                }
        }
        Body::Lines(_) => 460,
    }
}

fn rgb((r, g, b): Rgb) -> RGBColor {
    RGBColor(r, g, b)
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, chart: &Chart) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let area = root.titled(&chart.title, (FONT, 22))?;
    match &chart.body {
        Body::Rows(r) => draw_rows(&area, r),
        Body::Lines(l) => draw_lines(&area, l),
    }
}

fn draw_rows<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, r: &Rows) -> DrawResult<DB> {
    let legend_h = if r.legend.is_empty() {
        0
    } else {
        30 * (1 + r.legend.len() as u32 / 5)
    };
    let (plot, legend) = area.split_vertically(area.dim_in_pixel().1 - legend_h);
    let n = r.rows.len().max(1) as i32;
    let values = r.rows.iter().flat_map(|row| {
        row.segments
            .iter()
            .flat_map(|s| [s.from, s.to])
            .chain(row.dots.iter().copied())
            .chain(row.spread.into_iter().flat_map(|(a, b)| [a, b]))
    });
    let (lo, hi) = values
        .chain(r.band.iter().flat_map(|b| [b.from, b.to]))
        .fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let label_w = (r
        .rows
        .iter()
        .map(|row| row.label.chars().count())
        .max()
        .unwrap_or(4) as u32
        * 8
        + 16)
        .clamp(60, 420);
    // Room left of a negative bar, and right of every bar for its note: the note's width in
    // pixels (~8 per character at 14 px) converted to axis units, which depend on the range
    // being chosen — a few rounds of fixed-point iteration settle it.
    let span = (hi - lo).max(1e-9);
    let xmin = if lo < 0.0 { lo - 0.08 * span } else { 0.0 };
    let plot_px = (plot.dim_in_pixel().0.saturating_sub(label_w + 40)).max(100) as f64;
    let mut xmax = hi + 0.1 * span;
    for _ in 0..4 {
        let per_px = (xmax - xmin) / plot_px;
        xmax = r
            .rows
            .iter()
            .map(|row| row_end(row) + (row.note.chars().count() as f64 * 8.0 + 16.0) * per_px)
            .fold(hi + 0.05 * span, f64::max);
    }
    let mut c = ChartBuilder::on(&plot)
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(label_w)
        .build_cartesian_2d(xmin..xmax, (0..n).into_segmented())?;
    // Row 0 is drawn at the top; plotters counts segments from the bottom.
    let y = |i: usize| n - 1 - i as i32;
    let label = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(k) if (0..n).contains(k) => {
            r.rows[(n - 1 - k) as usize].label.clone()
        }
        _ => String::new(),
    };
    c.configure_mesh()
        .disable_y_mesh()
        .y_labels(n as usize)
        .y_label_formatter(&label)
        .x_desc(r.axis.as_str())
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .draw()?;
    if let Some(b) = &r.band {
        c.draw_series(std::iter::once(Rectangle::new(
            [
                (b.from, SegmentValue::Exact(0)),
                (b.to, SegmentValue::Exact(n)),
            ],
            RGBColor(120, 120, 120).mix(0.18).filled(),
        )))?;
    }
    for (i, row) in r.rows.iter().enumerate() {
        for s in &row.segments {
            let mut rect = Rectangle::new(
                [
                    (s.from, SegmentValue::Exact(y(i))),
                    (s.to, SegmentValue::Exact(y(i) + 1)),
                ],
                rgb(s.color).filled(),
            );
            rect.set_margin(5, 5, 0, 0);
            c.draw_series(std::iter::once(rect))?;
        }
        let center = SegmentValue::CenterOf(y(i));
        if let Some((a, b)) = row.spread {
            let mid = row.segments.last().map(|s| s.to).unwrap_or((a + b) / 2.0);
            c.draw_series(std::iter::once(ErrorBar::new_horizontal(
                center.clone(),
                a,
                mid,
                b,
                BLACK.stroke_width(2),
                10,
            )))?;
        }
        c.draw_series(
            row.dots
                .iter()
                .map(|&d| Circle::new((d, center.clone()), 3, BLACK.stroke_width(1))),
        )?;
        if !row.note.is_empty() {
            c.draw_series(std::iter::once(
                EmptyElement::at((row_end(row), center.clone()))
                    + Text::new(row.note.clone(), (8, -8), (FONT, 14)),
            ))?;
        }
    }
    draw_legend(&legend, r)
}

/// Where a row's drawing ends on the axis (its note starts there).
fn row_end(row: &super::chart::Row) -> f64 {
    row.segments
        .iter()
        .map(|s| s.to.max(s.from))
        .chain(row.spread.map(|(_, b)| b))
        .chain(row.dots.iter().copied())
        .fold(0.0f64, f64::max)
}

/// Colour keys in rows of five under the plot, so no key ever covers a bar.
fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, r: &Rows) -> DrawResult<DB> {
    let (w, _) = area.dim_in_pixel();
    let per_row = 5usize;
    let cell = (w.saturating_sub(40) / per_row as u32) as i32;
    for (k, key) in r.legend.iter().enumerate() {
        let (col, line) = ((k % per_row) as i32, (k / per_row) as i32);
        let (x, yy) = (20 + col * cell, 6 + line * 26);
        area.draw(&Rectangle::new(
            [(x, yy), (x + 16, yy + 16)],
            rgb(key.color).filled(),
        ))?;
        area.draw(&Text::new(key.label.clone(), (x + 22, yy + 1), (FONT, 14)))?;
    }
    Ok(())
}

fn draw_lines<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, l: &Lines) -> DrawResult<DB> {
    let panels = area.split_evenly((1, l.panels.len().max(1)));
    for (p, panel_area) in l.panels.iter().zip(panels.iter()) {
        let pts = || p.series.iter().flat_map(|s| s.points.iter());
        let xmax = pts().map(|p| p.0).fold(1.0f64, f64::max) * 1.05;
        let (ylo, yhi) = pts().fold((0.0f64, 0.0f64), |(lo, hi), q| (lo.min(q.1), hi.max(q.1)));
        let pad = ((yhi - ylo) * 0.1).max(1e-6);
        let mut c = ChartBuilder::on(panel_area)
            .caption(&p.title, (FONT, 17))
            .margin(14)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(
                0f64..xmax,
                (ylo - if ylo < 0.0 { pad } else { 0.0 })..(yhi + pad),
            )?;
        c.configure_mesh()
            .x_desc(l.x_axis.as_str())
            .y_desc(p.y_axis.as_str())
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .draw()?;
        for s in &p.series {
            let color = rgb(s.color);
            c.draw_series(LineSeries::new(
                s.points.iter().copied(),
                color.stroke_width(3),
            ))?
            .label(s.label.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], color.filled()));
            c.draw_series(s.points.iter().map(|&q| Circle::new(q, 5, color.filled())))?;
        }
        c.configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FONT, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::chart::*;
    use super::*;

    fn sample() -> Chart {
        Chart {
            name: "t".into(),
            title: "Startup latency".into(),
            body: Body::Rows(Rows {
                axis: "milliseconds".into(),
                rows: vec![
                    Row::bar("bare", 1.2, runtime_color("bare"), "1.2 ms"),
                    Row::gap(),
                    Row::bar("docker", -300.0, BAD, "x"),
                ],
                band: Some(Band {
                    from: -5.0,
                    to: 5.0,
                }),
                legend: vec![Key {
                    label: "works".into(),
                    color: GOOD,
                }],
            }),
        }
    }

    #[test]
    fn svg_has_the_title_labels_and_the_axis() {
        if !crate::ground::testing::require(ensure_font().is_ok(), "no TrueType font here") {
            return;
        }
        let s = svg(&sample()).unwrap();
        assert!(
            s.starts_with("<svg")
                && s.contains("Startup latency")
                && s.contains("milliseconds")
                && s.contains("docker")
        );
    }
}

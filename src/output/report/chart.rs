//! What a chart shows, apart from how it is drawn: the report's sections build these from
//! measurements, `draw` turns them into SVG and PNG. Two shapes cover every chart the chapter
//! has: horizontal rows of bar segments (plain bars with spread, grouped bars, stacked phases,
//! a timeline, nesting outcomes) and line panels (scaling vs container count).

use crate::ground::phase::Phase;
use crate::ground::RuntimeKind;

pub type Rgb = (u8, u8, u8);

pub struct Chart {
    /// File stem under charts/, e.g. `startup`.
    pub name: String,
    pub title: String,
    pub body: Body,
}

pub enum Body {
    Rows(Rows),
    Lines(Lines),
}

pub struct Rows {
    /// What the horizontal axis measures, with its unit.
    pub axis: String,
    /// Top to bottom. A row with no label and no segments is a gap between groups.
    pub rows: Vec<Row>,
    /// A shaded vertical band across every row (e.g. the instrument's noise); the axis title
    /// says what it is.
    pub band: Option<Band>,
    pub legend: Vec<Key>,
}

pub struct Band {
    pub from: f64,
    pub to: f64,
}

#[derive(Default)]
pub struct Row {
    pub label: String,
    pub segments: Vec<Segment>,
    /// Whisker from the smallest to the largest measurement.
    pub spread: Option<(f64, f64)>,
    /// Each measurement, drawn as a dot on the bar.
    pub dots: Vec<f64>,
    /// Text at the end of the bar (the value, an outcome).
    pub note: String,
}

pub struct Segment {
    pub from: f64,
    pub to: f64,
    pub color: Rgb,
}

pub struct Key {
    pub label: String,
    pub color: Rgb,
}

pub struct Lines {
    pub x_axis: String,
    pub panels: Vec<Panel>,
}

pub struct Panel {
    pub title: String,
    pub y_axis: String,
    pub series: Vec<Series>,
}

pub struct Series {
    pub label: String,
    pub color: Rgb,
    pub points: Vec<(f64, f64)>,
}

impl Row {
    /// One bar from 0 to `value`.
    pub fn bar(label: impl Into<String>, value: f64, color: Rgb, note: impl Into<String>) -> Row {
        Row {
            label: label.into(),
            segments: vec![Segment {
                from: 0.0,
                to: value,
                color,
            }],
            note: note.into(),
            ..Row::default()
        }
    }

    /// A bar at the median of `values` with a whisker over their range and a dot per value;
    /// a single value gets the bar alone (a whisker of one says nothing). None when empty
    /// or not finite. `note` gets the median.
    pub fn measured(
        label: impl Into<String>,
        values: &[f64],
        color: Rgb,
        note: impl FnOnce(f64) -> String,
    ) -> Option<Row> {
        let s = crate::ground::stats::summarize(values)?;
        let many = values.len() > 1;
        Some(Row {
            spread: many.then_some((s.min, s.max)),
            dots: if many { values.to_vec() } else { Vec::new() },
            ..Row::bar(label, s.median, color, note(s.median))
        })
    }

    pub fn gap() -> Row {
        Row::default()
    }
}

pub const GOOD: Rgb = (44, 160, 44);
pub const BAD: Rgb = (214, 39, 40);
pub const NEUTRAL: Rgb = (127, 127, 127);

/// Ten well-separated colours (Tableau 10), so neighbouring series never look alike.
const PALETTE: [Rgb; 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

/// Where a runtime's name stands in the order the chapter reads them (RuntimeKind::ALL).
pub fn runtime_rank(runtime: &str) -> Option<usize> {
    RuntimeKind::ALL.iter().position(|k| k.name() == runtime)
}

/// The same runtime keeps its colour in every chart of a report.
pub fn runtime_color(runtime: &str) -> Rgb {
    let base = runtime.split(['-', ' ']).next().unwrap_or(runtime);
    let i = runtime_rank(runtime).or_else(|| runtime_rank(base)).unwrap_or(RuntimeKind::ALL.len());
    PALETTE[i % PALETTE.len()]
}

pub fn phase_color(phase: Phase) -> Rgb {
    if phase == Phase::Unattributed {
        return (200, 200, 200);
    }
    let i = Phase::ALL.iter().position(|p| *p == phase).unwrap_or(0);
    // Eleven named phases, ten colours: the lightened twin keeps the eleventh distinct.
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    if i < PALETTE.len() {
        (r, g, b)
    } else {
        (r / 2 + 128, g / 2 + 128, b / 2 + 128)
    }
}

/// A pale twin of a colour, for the chapter's figures beside this machine's.
pub fn faded((r, g, b): Rgb) -> Rgb {
    let mix = |c: u8| ((c as u16 + 2 * 230) / 3) as u8;
    (mix(r), mix(g), mix(b))
}

/// Series colours for things that are not runtimes (sync modes, run vs exec).
pub fn nth_color(i: usize) -> Rgb {
    PALETTE[i % PALETTE.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtimes_and_phases_get_stable_distinct_colours() {
        assert_eq!(runtime_color("docker"), runtime_color("docker"));
        assert_ne!(runtime_color("docker"), runtime_color("podman"));
        assert_ne!(runtime_color("podman"), runtime_color("podman-rootless"));
        let colours: std::collections::HashSet<Rgb> =
            Phase::ALL.iter().map(|&p| phase_color(p)).collect();
        assert_eq!(colours.len(), Phase::ALL.len());
    }
}

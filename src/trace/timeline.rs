//! One traced run drawn as SVG, the way `systemd-analyze plot` draws a boot: a band of
//! phases on top, then one bar per process of the run over the same time axis.

use std::fmt::Write;

use super::attribution::Attribution;
use crate::phase::Phase;

const WIDTH: f64 = 1200.0;
const LEFT: f64 = 190.0;
const ROW: f64 = 16.0;

fn color(p: Phase) -> &'static str {
    match p {
        Phase::Client => "#8dd3c7",
        Phase::Engine => "#fdb462",
        Phase::Rootfs => "#b3de69",
        Phase::Runtime => "#80b1d3",
        Phase::Cgroup => "#fb8072",
        Phase::Namespaces => "#bebada",
        Phase::Mounts => "#ffed6f",
        Phase::Security => "#ccebc5",
        Phase::Exec => "#e31a1c",
        Phase::Workload => "#33a02c",
        Phase::Teardown => "#d9d9d9",
        Phase::Unattributed => "#ffffff",
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// `runs` are (title, attribution) pairs, drawn one under the other on a shared scale.
pub fn svg(runs: &[(String, &Attribution)]) -> String {
    let longest = runs.iter().map(|(_, a)| a.window.end - a.window.start).max().unwrap_or(1).max(1) as f64;
    let scale = (WIDTH - LEFT - 20.0) / longest;
    let x = |a: &Attribution, t: u64| LEFT + (t.saturating_sub(a.window.start)) as f64 * scale;
    let mut body = String::new();
    let mut y = 20.0;
    for (title, a) in runs {
        let _ = writeln!(body, r#"<text x="10" y="{y}" font-weight="bold">{}</text>"#, esc(title));
        y += 8.0;
        // time axis: a tick every 10/20/50/100 ms, whichever gives ≤ 15 ticks
        let step_ms = [10u64, 20, 50, 100, 200, 500, 1000].into_iter().find(|s| longest / 1e6 / *s as f64 <= 15.0).unwrap_or(1000);
        let span_ms = (a.window.end - a.window.start) / 1_000_000;
        for k in (0..=span_ms).step_by(step_ms as usize) {
            let tx = x(a, a.window.start + k * 1_000_000);
            let _ = writeln!(body, r##"<line x1="{tx:.1}" y1="{y}" x2="{tx:.1}" y2="{}" stroke="#eee"/><text x="{tx:.1}" y="{}" font-size="9">{k} ms</text>"##, y + ROW * (a.procs.len() + 2) as f64, y + 8.0);
        }
        y += 12.0;
        let _ = writeln!(body, r#"<text x="10" y="{}">phases</text>"#, y + 11.0);
        for s in &a.slices {
            let (x0, x1) = (x(a, s.start), x(a, s.end));
            let label = match &s.detail {
                Some(d) => format!("{} ({d})", s.phase),
                None => s.phase.to_string(),
            };
            let _ = writeln!(
                body,
                r##"<rect x="{x0:.2}" y="{y}" width="{:.2}" height="{}" fill="{}" stroke="#666" stroke-width="0.3"><title>{} {:.2} ms</title></rect>"##,
                (x1 - x0).max(0.5),
                ROW - 2.0,
                color(s.phase),
                esc(&label),
                (s.end - s.start) as f64 / 1e6
            );
            if x1 - x0 > 7.0 * s.phase.name().len() as f64 {
                let _ = writeln!(body, r#"<text x="{:.2}" y="{}" font-size="10">{}</text>"#, x0 + 2.0, y + 11.0, s.phase);
            }
        }
        y += ROW + 4.0;
        for p in &a.procs {
            let (x0, x1) = (x(a, p.start), x(a, p.end));
            let _ = writeln!(
                body,
                r##"<text x="10" y="{}" font-size="10">{} [{}]</text><rect x="{x0:.2}" y="{y}" width="{:.2}" height="{}" fill="#9ecae1"><title>{} pid {} {:.2}–{:.2} ms</title></rect>"##,
                y + 11.0,
                esc(&p.name),
                p.tgid,
                (x1 - x0).max(0.5),
                ROW - 4.0,
                esc(&p.name),
                p.tgid,
                (p.start - a.window.start) as f64 / 1e6,
                (p.end - a.window.start) as f64 / 1e6
            );
            y += ROW;
        }
        y += 20.0;
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{y}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n{body}</svg>\n"
    )
}

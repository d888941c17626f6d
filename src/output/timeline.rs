//! Traced runs drawn the way `systemd-analyze plot` draws a boot: per run a band of phases,
//! then one bar per process over the same time axis; runs stacked on one shared scale.
//! With a critical path, a lane under the phases shows which task the run was waiting for at
//! each moment, coloured by its state (on CPU, waiting for a CPU, in D state, stopped...).
//! Drawn with plotters, so one routine gives SVG or PNG (chosen by the file's extension).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::trace::attribution::Attribution;
use crate::trace::critical::{CriticalPath, State, TaskRef};
use crate::output::font::{ensure_font, FONT};
use crate::output::report::lang::Lang;
use crate::ground::phase::Phase;

const WIDTH: u32 = 1200;
const LEFT: i32 = 200;
const RIGHT: i32 = 20;
const ROW: i32 = 16;
/// A legend row's height, and the space around the legend.
const LEGEND_ROW: i32 = 18;
const LEGEND: i32 = 22;
/// Process rows drawn per run; a `make -j` can fork thousands, and a PNG is 3 bytes a pixel.
const MAX_PROCS: usize = 300;

fn color(p: Phase) -> RGBColor {
    let (r, g, b) = match p {
        Phase::Client => (0x8d, 0xd3, 0xc7),
        Phase::Engine => (0xfd, 0xb4, 0x62),
        Phase::Rootfs => (0xb3, 0xde, 0x69),
        Phase::Runtime => (0x80, 0xb1, 0xd3),
        Phase::Cgroup => (0xfb, 0x80, 0x72),
        Phase::Namespaces => (0xbe, 0xba, 0xda),
        Phase::Mounts => (0xff, 0xed, 0x6f),
        Phase::Security => (0xcc, 0xeb, 0xc5),
        Phase::Exec => (0xe3, 0x1a, 0x1c),
        Phase::Workload => (0x33, 0xa0, 0x2c),
        Phase::Teardown => (0xd9, 0xd9, 0xd9),
        Phase::Unattributed => (0xff, 0xff, 0xff),
    };
    RGBColor(r, g, b)
}

/// One run drawn: its title, its phases and processes, and its critical path when traced.
pub type Drawn<'a> = (String, &'a Attribution, Option<&'a CriticalPath>);

/// The critical path's state as the lane colours it: what the run was waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Running,
    Runnable,
    Disk,
    /// Asleep until a task woke it, whose own path the walk did not follow further.
    OnTask,
    Stopped,
    Timer,
    Exited,
    /// No event told the state, or a sleep whose waker was not seen.
    Unexplained,
}

impl Reason {
    const ALL: [Reason; 8] = [
        Reason::Running,
        Reason::Runnable,
        Reason::Disk,
        Reason::OnTask,
        Reason::Stopped,
        Reason::Timer,
        Reason::Exited,
        Reason::Unexplained,
    ];

    fn of(s: &State) -> Reason {
        match s {
            State::Running => Reason::Running,
            State::Runnable { .. } => Reason::Runnable,
            State::Blocked { .. } => Reason::Disk,
            State::Sleeping { woken_by: Some(_) } => Reason::OnTask,
            State::Stopped { .. } => Reason::Stopped,
            State::Interrupt => Reason::Timer,
            State::Exited => Reason::Exited,
            State::Sleeping { woken_by: None } | State::Unknown => Reason::Unexplained,
        }
    }

    fn color(self) -> RGBColor {
        let (r, g, b) = match self {
            // None the same as a phase's or a process bar's, which share the chart.
            Reason::Running => (0x00, 0x6d, 0x2c),
            Reason::Runnable => (0xff, 0x7f, 0x00),
            Reason::Disk => (0x6a, 0x3d, 0x9a),
            Reason::OnTask => (0x1f, 0x78, 0xb4),
            Reason::Stopped => (0xc5, 0x1b, 0x7d),
            Reason::Timer => (0xbf, 0x81, 0x2d),
            Reason::Exited => (0x99, 0x99, 0x99),
            // White, as an unattributed phase is: nothing is claimed there.
            Reason::Unexplained => (0xff, 0xff, 0xff),
        };
        RGBColor(r, g, b)
    }

    pub fn label(self, lang: Lang) -> &'static str {
        match self {
            Reason::Running => lang.pick("running (on CPU)", "en ejecución (en CPU)"),
            Reason::Runnable => lang.pick("runnable, waiting for a CPU", "lista, esperando una CPU"),
            Reason::Disk => lang.pick("blocked in D state (I/O)", "bloqueada en estado D (E/S)"),
            Reason::OnTask => lang.pick("asleep until woken by a task", "dormida hasta que otra tarea la despierta"),
            Reason::Stopped => lang.pick("stopped (signal)", "detenida (señal)"),
            Reason::Timer => lang.pick("asleep until a timer/interrupt", "dormida hasta un temporizador/interrupción"),
            Reason::Exited => lang.pick("exited", "terminada"),
            Reason::Unexplained => lang.pick("unexplained", "sin explicar"),
        }
    }
}

/// One stretch of the lane: one task (None in a gap of the path) in one state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stretch {
    pub start: u64,
    pub end: u64,
    pub task: Option<TaskRef>,
    pub reason: Reason,
}

/// The lane of `p` between `from` and `to`: its steps clipped to that window, neighbours of
/// the same task (thread) and reason joined, so a task's running slices read as one bar; a
/// moment no step covers is drawn as unexplained, never left to a neighbour.
pub fn lane(p: &CriticalPath, from: u64, to: u64) -> Vec<Stretch> {
    let mut steps: Vec<_> = p.steps.iter().filter(|s| s.end > from && s.start < to && s.end > s.start).collect();
    steps.sort_by_key(|s| s.start);
    let mut out: Vec<Stretch> = Vec::new();
    let push = |out: &mut Vec<Stretch>, st: Stretch| match out.last_mut() {
        Some(l) if l.end == st.start && l.reason == st.reason && l.task.as_ref().map(|t| t.tid) == st.task.as_ref().map(|t| t.tid) => l.end = st.end,
        _ => out.push(st),
    };
    let mut at = from;
    for s in steps {
        let (start, end) = (s.start.max(at), s.end.min(to));
        if start >= end {
            continue;
        }
        if start > at {
            push(&mut out, Stretch { start: at, end: start, task: None, reason: Reason::Unexplained });
        }
        push(&mut out, Stretch { start, end, task: Some(s.task.clone()), reason: Reason::of(&s.state) });
        at = end;
    }
    if at < to {
        push(&mut out, Stretch { start: at, end: to, task: None, reason: Reason::Unexplained });
    }
    out
}

/// What `--timeline` accepts: a new `.svg` or `.png` file in an existing, writable folder,
/// with a font to draw text. Checked before the run, so a long run does not end in a refusal
/// to write its picture.
pub fn check_path(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s);
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg" | "png") => {}
        _ => return Err(format!("{s}: the timeline file must end in .svg or .png")),
    }
    if path.symlink_metadata().is_ok() {
        return Err(format!("{s} already exists: remove it or name another file"));
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(format!("{}: no such folder for the timeline file", dir.display()));
    }
    if nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_err() {
        return Err(format!("{}: folder not writable for the timeline file", dir.display()));
    }
    ensure_font().map_err(|e| format!("{s}: {e}"))?;
    Ok(path)
}

/// Draws `runs` into `path`, SVG or PNG by its extension, its words in `lang`. Written to a
/// temporary file beside it and linked into place, so the file appears whole or not at all,
/// and an existing file is never replaced.
pub fn write(path: &Path, runs: &[Drawn], lang: Lang) -> Result<()> {
    ensure_font()?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("timeline");
    // Same extension: BitMapBackend picks the image format from it. Created here with
    // O_EXCL, so whatever plotters then opens is this new regular file, not a planted link.
    let tmp = path.with_file_name(format!(".{name}.{}.tmp.{ext}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    let size = (WIDTH, height(runs, lang));
    let drawn = match ext {
        "svg" => {
            // Drawn into memory and written here: the backend's own file writer drops its
            // last write error on the floor.
            let mut svg = String::new();
            let drawn = {
                let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
                render(&root, runs, lang)
            };
            drawn.and_then(|()| Ok(file.write_all(svg.as_bytes()).and_then(|()| file.sync_all())?))
        }
        "png" => render(&BitMapBackend::new(&tmp, size).into_drawing_area(), runs, lang),
        _ => Err(anyhow!("the timeline file must end in .svg or .png")),
    };
    let placed = drawn.and_then(|()| place(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    placed.with_context(|| format!("writing the timeline {}", path.display()))
}

/// Moves the finished file into place without replacing one that appeared meanwhile: a hard
/// link fails if the name exists. Filesystems without hard links (vfat, some FUSE) get a
/// rename after a last look, which leaves a small race.
pub(crate) fn place(tmp: &Path, path: &Path) -> Result<()> {
    match std::fs::hard_link(tmp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(e.into()),
        Err(_) if path.symlink_metadata().is_err() => Ok(std::fs::rename(tmp, path)?),
        Err(e) => Err(e.into()),
    }
}

/// Process rows drawn for a run, and whether some were left out.
fn rows(a: &Attribution) -> (usize, bool) {
    (a.procs.len().min(MAX_PROCS), a.procs.len() > MAX_PROCS)
}

fn height(runs: &[Drawn], lang: Lang) -> u32 {
    let rows: usize = runs.iter().map(|(_, a, _)| rows(a).0 + rows(a).1 as usize).sum();
    let lanes = runs.iter().filter(|(_, _, p)| p.is_some()).count() as i32;
    let legend = legend(lang, lanes > 0).len() as i32;
    (runs.len() as i32 * (20 + 14 + ROW + 4 + 20) + rows as i32 * ROW + lanes * (ROW + 4) + legend * LEGEND_ROW + LEGEND + 10) as u32
}

/// Width of a legend entry: its swatch, its words, the gap after it.
fn key_width(label: &str) -> i32 {
    16 + 7 * label.chars().count() as i32 + 14
}

/// The legend's rows: the phases' colours, then (when a lane is drawn) the critical path's
/// states after a heading of their own, each group wrapped to the chart's width. A key
/// without colour is a heading.
fn legend(lang: Lang, with_path: bool) -> Vec<Vec<(String, Option<RGBColor>)>> {
    let phases = Phase::ALL.iter().map(|&p| (lang.phase(p).to_string(), Some(color(p))));
    let mut groups: Vec<Vec<(String, Option<RGBColor>)>> = vec![phases.collect()];
    if with_path {
        let head = (lang.pick("critical path:", "camino crítico:").to_string(), None);
        groups.push(std::iter::once(head).chain(Reason::ALL.iter().map(|r| (r.label(lang).to_string(), Some(r.color())))).collect());
    }
    let mut rows = Vec::new();
    for g in groups {
        let mut row: Vec<(String, Option<RGBColor>)> = Vec::new();
        let mut used = 10;
        for k in g {
            if !row.is_empty() && used + key_width(&k.0) > WIDTH as i32 {
                rows.push(std::mem::take(&mut row));
                used = 10;
            }
            used += key_width(&k.0);
            row.push(k);
        }
        rows.push(row);
    }
    rows
}

fn render<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, runs: &[Drawn], lang: Lang) -> Result<()> {
    draw(root, runs, lang).map_err(|e| anyhow!("drawing the timeline: {e}"))?;
    root.present().map_err(|e| anyhow!("writing the timeline: {e}"))
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    runs: &[Drawn],
    lang: Lang,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let text = |size: u32| TextStyle::from((FONT, size).into_font()).color(&BLACK);
    let span = |a: &Attribution| (a.window.end - a.window.start).max(1) as f64;
    let longest = runs.iter().map(|(_, a, _)| span(a)).fold(1.0, f64::max);
    // Runs share one scale so they compare at a glance, except a run under a quarter of the
    // longest (native beside docker: 4 ms against 250), whose phases would be a few pixels:
    // it gets its own scale, and its title says so.
    let own_scale = |a: &Attribution| span(a) * 4.0 < longest;
    let scale_of = |a: &Attribution| (WIDTH as i32 - LEFT - RIGHT) as f64 / if own_scale(a) { span(a) } else { longest };
    let x = |a: &Attribution, t: u64| LEFT + (t.saturating_sub(a.window.start) as f64 * scale_of(a)) as i32;
    let bar = |x0: i32, x1: i32, y: i32, h: i32, fill: RGBColor| {
        // At least a pixel wide: a 20 µs mount must still show.
        Rectangle::new([(x0, y), (x1.max(x0 + 1), y + h)], fill.filled())
    };
    let outline = |x0: i32, x1: i32, y: i32, h: i32| {
        Rectangle::new([(x0, y), (x1.max(x0 + 1), y + h)], RGBColor(0x66, 0x66, 0x66).stroke_width(1))
    };
    let mut y = 10;
    for &(ref title, a, critical) in runs {
        let title = if own_scale(a) { format!("{title} {}", lang.pick("(own time scale)", "(escala de tiempo propia)")) } else { title.clone() };
        root.draw(&Text::new(title, (10, y), text(13)))?;
        y += 20;
        let (shown, cut) = rows(a);
        let lane_h = if critical.is_some() { ROW + 4 } else { 0 };
        let bottom = y + 14 + ROW + 4 + lane_h + ROW * shown as i32;
        // A tick every 0.1/0.2/0.5/1/2/5/10/... ms, whichever gives at most 15 on this scale.
        let shown_ms = if own_scale(a) { span(a) } else { longest } / 1e6;
        let step = [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0]
            .into_iter()
            .find(|s| shown_ms / s <= 15.0)
            .unwrap_or(10_000.0);
        let mut k = 0.0;
        while k <= span(a) / 1e6 {
            let tx = x(a, a.window.start + (k * 1e6) as u64);
            root.draw(&PathElement::new([(tx, y + 12), (tx, bottom)], RGBColor(0xdd, 0xdd, 0xdd)))?;
            let label = if step < 1.0 { format!("{k:.1} ms") } else { format!("{k:.0} ms") };
            root.draw(&Text::new(label, (tx, y), text(9).pos(Pos::new(HPos::Center, VPos::Top))))?;
            k += step;
        }
        y += 14;
        root.draw(&Text::new(lang.pick("phases", "fases"), (10, y + 2), text(11)))?;
        for s in &a.slices {
            let (x0, x1) = (x(a, s.start), x(a, s.end));
            root.draw(&bar(x0, x1, y, ROW - 2, color(s.phase)))?;
            root.draw(&outline(x0, x1, y, ROW - 2))?;
            let label = lang.phase(s.phase);
            if (x1 - x0) as usize > 7 * label.chars().count() {
                root.draw(&Text::new(label, (x0 + 2, y + 2), text(10)))?;
            }
        }
        y += ROW + 4;
        if let Some(p) = critical {
            root.draw(&Text::new(lang.pick("critical path", "camino crítico"), (10, y + 2), text(11)))?;
            let mut last: Option<u32> = None;
            for s in lane(p, a.window.start, a.window.end) {
                let (x0, x1) = (x(a, s.start), x(a, s.end));
                // No outline per stretch: a run of sub-pixel stretches would draw as the
                // outline's grey; the lane gets one outline below.
                root.draw(&bar(x0, x1, y, ROW - 2, s.reason.color()))?;
                let tid = s.task.as_ref().map(|t| t.tid);
                // A line where the path moves to another task (who it waited on), for
                // stretches of a few pixels: a busy docker rep changes task hundreds of
                // times, and a line at each blacked out the lane.
                if last.is_some() && tid != last && x1 - x0 >= 3 {
                    root.draw(&PathElement::new([(x0, y - 2), (x0, y + ROW)], BLACK.stroke_width(1)))?;
                }
                last = tid;
                if let Some(t) = &s.task {
                    // By thread id: the one the path follows, always known.
                    let label = format!("{} {}", t.comm, t.tid);
                    if (x1 - x0) as usize > 7 * label.chars().count() {
                        let ink = if matches!(s.reason, Reason::Running | Reason::Disk | Reason::Stopped | Reason::OnTask) { WHITE } else { BLACK };
                        root.draw(&Text::new(label, (x0 + 2, y + 2), text(10).color(&ink)))?;
                    }
                }
            }
            root.draw(&outline(x(a, a.window.start), x(a, a.window.end), y, ROW - 2))?;
            y += ROW + 4;
        }
        for p in a.procs.iter().take(shown) {
            root.draw(&Text::new(format!("{} [{}]", p.name, p.tgid), (10, y + 1), text(10)))?;
            root.draw(&bar(x(a, p.start), x(a, p.end), y, ROW - 4, RGBColor(0x9e, 0xca, 0xe1)))?;
            y += ROW;
        }
        if cut {
            let n = a.procs.len() - shown;
            let more = lang.pick(
                format!("… {n} more processes, not drawn (probe trace --json has them all)"),
                format!("… {n} procesos más, no dibujados (probe trace --json los tiene todos)"),
            );
            root.draw(&Text::new(more, (10, y + 1), text(10)))?;
            y += ROW;
        }
        y += 20;
    }
    // The legend: a PNG has no tooltips, so every colour is named here.
    for row in legend(lang, runs.iter().any(|(_, _, p)| p.is_some())) {
        let mut lx = 10;
        for (name, fill) in row {
            let w = key_width(&name);
            match fill {
                Some(fill) => {
                    root.draw(&bar(lx, lx + 12, y, 12, fill))?;
                    root.draw(&outline(lx, lx + 12, y, 12))?;
                    root.draw(&Text::new(name, (lx + 16, y), text(10)))?;
                }
                None => root.draw(&Text::new(name, (lx, y), text(10)))?,
            }
            lx += w;
        }
        y += LEGEND_ROW;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::attribution::Window;
    use crate::trace::critical::{Step, WakeRef};

    fn task(tid: u32, comm: &str) -> TaskRef {
        TaskRef { pid: tid, tid, comm: comm.into() }
    }

    fn step(start: u64, end: u64, t: &TaskRef, state: State) -> Step {
        Step { start, end, task: t.clone(), state, waiter: None, site: None }
    }

    /// A command `sh` (10) that runs, waits for a CPU, then for `dd` (11) in D state, a gap
    /// no step covers, then containerd (12) stopped by a signal, asleep on a task, asleep on a
    /// timer, and asleep with its waker unseen.
    fn path() -> CriticalPath {
        let (sh, dd, ctr) = (task(10, "sh"), task(11, "dd"), task(12, "containerd"));
        let steps = vec![
            step(100, 200, &sh, State::Running),
            step(200, 300, &sh, State::Running),
            step(300, 350, &sh, State::Runnable { cpu_holders: vec![(task(99, "hog"), 50)] }),
            step(350, 400, &sh, State::Running),
            step(400, 500, &dd, State::Blocked { requests: 2, devices: vec!["8:0".into()], woken_by: Some(WakeRef::Interrupt) }),
            step(550, 600, &ctr, State::Stopped { sender: Some(task(13, "bash")), signal: Some(19), woken_by: None }),
            step(600, 650, &ctr, State::Sleeping { woken_by: Some(task(14, "shim")) }),
            step(650, 700, &ctr, State::Interrupt),
            step(700, 800, &ctr, State::Sleeping { woken_by: None }),
        ];
        CriticalPath { start: 100, end: 800, steps, missing: Vec::new(), stacks: false }
    }

    #[test]
    fn lane_joins_a_tasks_neighbours_clips_and_leaves_gaps_unexplained() {
        let got: Vec<(u64, u64, Option<u32>, Reason)> =
            lane(&path(), 150, 750).into_iter().map(|s| (s.start, s.end, s.task.map(|t| t.tid), s.reason)).collect();
        assert_eq!(
            got,
            [
                // Clipped at the window's start, and two running steps of sh joined.
                (150, 300, Some(10), Reason::Running),
                (300, 350, Some(10), Reason::Runnable),
                (350, 400, Some(10), Reason::Running),
                (400, 500, Some(11), Reason::Disk),
                // No step: nobody absorbs it.
                (500, 550, None, Reason::Unexplained),
                (550, 600, Some(12), Reason::Stopped),
                (600, 650, Some(12), Reason::OnTask),
                (650, 700, Some(12), Reason::Timer),
                // A sleep whose waker was not seen explains nothing; clipped at the end.
                (700, 750, Some(12), Reason::Unexplained),
            ]
        );
        // A window past the path's end is all unexplained.
        let tail = lane(&path(), 700, 900);
        assert_eq!(tail.last().map(|s| (s.start, s.end, s.task.is_none(), s.reason)), Some((800, 900, true, Reason::Unexplained)));
    }

    #[test]
    fn lane_drawn_with_its_legend_in_both_languages() {
        let a = Attribution::from_records(Window { start: 100, end: 800, root: 10 }, &[]);
        let p = path();
        let runs: Vec<Drawn> = vec![("sh".into(), &a, Some(&p))];
        for lang in [Lang::En, Lang::Es] {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, (WIDTH, height(&runs, lang))).into_drawing_area();
                render(&root, &runs, lang).unwrap();
            }
            // The lane names the path's tasks where they fit: sh, then dd.
            let mut words = vec![lang.pick("critical path", "camino crítico"), lang.pick("phases", "fases"), "sh 10", "dd 11"];
            words.extend(Reason::ALL.iter().map(|r| r.label(lang)));
            for w in words {
                assert!(svg.contains(w), "{lang:?}: no {w:?} in the SVG");
            }
        }
        // The legend's rows fit the chart's width.
        for row in legend(Lang::Es, true) {
            assert!(10 + row.iter().map(|(k, _)| key_width(k)).sum::<i32>() <= WIDTH as i32 || row.len() == 1, "{row:?}");
        }
    }

    #[test]
    fn timeline_paths() {
        assert!(check_path("/tmp/x.txt").unwrap_err().contains(".svg or .png"));
        assert!(check_path("/no/such/dir/t.svg").unwrap_err().contains("no such folder"));
        assert!(check_path("/").is_err());
        let existing = std::env::temp_dir().join(format!("probe-timeline-test-{}.svg", std::process::id()));
        std::fs::write(&existing, "x").unwrap();
        let e = check_path(existing.to_str().unwrap()).unwrap_err();
        std::fs::remove_file(&existing).unwrap();
        assert!(e.contains("already exists"), "{e}");
        assert_eq!(check_path("t.png").unwrap(), PathBuf::from("t.png"));
    }
}

//! `probe compare`: two or more run folders side by side. First what differs between the
//! machines (kernel, cgroup layout, engine and runtime versions, disk), since that is often the
//! answer; then every figure the runs share, each later run against the first, with the ratio
//! of medians, its bootstrap 95% interval over the raw reps and a plain verdict.
//!
//! Each experiment's file is read as its own Report type through the report's loader
//! (output/report/load.rs), so compare and `probe report` share one schema: a file from an
//! older probe that lacks a field loses that experiment, which is named, not the others.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;

use crate::ground::stats::{self, Change, RatioInterval, BOOTSTRAP_SEED};
use crate::output::report::chart::{phase_color, Body, Chart, Key, Row, Rows, Segment};
use crate::output::report::doc::{Block, Doc, Table as DocTable};
use crate::output::report::lang::Lang;
use crate::experiment::all::Step;
use crate::experiment::common::host::HostInfo;
use crate::experiment::io::backing::{Backing, Store};
use crate::experiment::startup::StartupJson;
use crate::experiment::{cpu, io, memory, nested, scale};
use crate::ground::RuntimeKind;
use crate::measure::runner::RuntimeResult;
use crate::output::report::load::{self, stem};
use crate::output::report::sig;
use crate::output::table::{prose, Table};
use crate::ground::phase::Phase;

/// What a figure measures decides which way is better and the verdict's words.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Less is better (a duration).
    Time,
    /// Less is better (bytes).
    Memory,
    /// More is better (a throughput).
    Speed,
}

/// One measured quantity of a run, with every raw rep it was computed from.
#[derive(Clone, Debug)]
pub struct Figure {
    pub experiment: &'static str,
    pub name: String,
    pub unit: &'static str,
    pub kind: Kind,
    /// In the order they were taken, so a run's earlier and later halves can be told apart
    /// (see [`Drift`]).
    pub reps: Vec<f64>,
    /// For startup phases: (runtime, phase), so the chart can stack them.
    pub phase: Option<(String, Phase)>,
}

/// A categorical result (an I/O mode's durability, whether a nesting approach works).
#[derive(Clone, Debug)]
pub struct Outcome {
    pub experiment: &'static str,
    pub name: String,
    pub value: String,
}

pub struct Run {
    pub dir: PathBuf,
    /// Short name for tables: the folder's name.
    pub label: String,
    /// The machine as the first experiment that recorded it described it.
    host: Option<HostInfo>,
    /// The disk the I/O experiment wrote to, if it ran.
    disk: Option<String>,
    /// Experiments present, by step id.
    pub experiments: Vec<&'static str>,
    /// Experiments a `probe all` run lists but did not finish, or whose results this probe
    /// cannot read (a field missing, named by the loader's error).
    pub unreadable: Vec<String>,
    pub figures: Vec<Figure>,
    pub outcomes: Vec<Outcome>,
}

/// Reads a run folder; refuses (one line) anything that is not one.
pub fn load(path: &Path) -> Result<Run> {
    let folder = load::find(path)?;
    let mut run = Run {
        label: folder.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        dir: folder.dir.clone(),
        host: None,
        disk: None,
        experiments: Vec::new(),
        unreadable: Vec::new(),
        figures: Vec::new(),
        outcomes: Vec::new(),
    };
    for found in &folder.steps {
        let id = found.step.id;
        let Some(dir) = &found.dir else {
            run.unreadable.push(format!("{id} (did not finish)"));
            continue;
        };
        // As in the report: an experiment whose file lacks a field this probe reads is named
        // with the loader's error; the other experiments are still compared.
        match read(found.step, dir, &mut run) {
            Ok(()) => run.experiments.push(id),
            Err(e) => run.unreadable.push(format!("{id} ({e:#})")),
        }
    }
    Ok(run)
}

fn fig(experiment: &'static str, name: String, unit: &'static str, kind: Kind, reps: Vec<f64>) -> Figure {
    Figure { experiment, name, unit, kind, reps, phase: None }
}

/// One experiment's figures and outcomes, from its own Report type through the report's loader.
fn read(step: &'static Step, dir: &Path, run: &mut Run) -> Result<()> {
    let id = step.id;
    let file = format!("{}.json", stem(step));
    let mut figures = Vec::new();
    let host = match id {
        "startup" => {
            let f: StartupJson = load::json(dir, &file)?;
            figures.extend(startup_figures(&f.report.results));
            f.report.header.host
        }
        "memory" => {
            let r: memory::Report = load::json(dir, &file)?;
            for x in &r.results {
                let per = x.batches.iter().filter(|b| b.count > 0).map(|b| b.delta_mb as f64 / b.count as f64).collect();
                figures.push(fig(id, format!("{} MB per container (free -m)", x.runtime), "MB", Kind::Memory, per));
            }
            r.header.host
        }
        "memory-cgroup" => {
            let r: memory::cgroup::Report = load::json(dir, &file)?;
            for x in &r.results {
                let per = x
                    .points
                    .iter()
                    .flat_map(|p| &p.snapshot.containers)
                    .filter_map(|c| c.memory.as_ref())
                    .map(|m| m.exact_bytes as f64 / 1024.0)
                    .collect();
                figures.push(fig(id, format!("{} KB per container (cgroup)", x.runtime), "KB", Kind::Memory, per));
            }
            r.header.host
        }
        "cpu" | "cpu-exec" => {
            let r: cpu::Report = load::json(dir, &file)?;
            let wall = |x: &cpu::RuntimeCpu| x.reps.iter().map(|rep| rep.wall_ms).collect::<Vec<_>>();
            let bare = r.results.iter().find(|x| x.runtime == RuntimeKind::Bare).map(|x| stats::median(&wall(x)));
            for x in &r.results {
                let rt = x.runtime;
                figures.push(fig(id, format!("{rt} wall"), "ms", Kind::Time, wall(x)));
                figures.push(fig(id, format!("{rt} CPU time"), "ms", Kind::Time, x.reps.iter().filter_map(|rep| rep.cpu_ms).collect()));
                if let Some(b) = bare.filter(|b| *b > 0.0 && rt != RuntimeKind::Bare) {
                    figures.push(fig(id, format!("{rt} overhead (wall × bare)"), "×", Kind::Time, wall(x).iter().map(|w| w / b).collect()));
                }
            }
            r.header.host
        }
        "io" => {
            let r: io::Report = load::json(dir, &file)?;
            for m in &r.results {
                let speed = m
                    .reps
                    .iter()
                    .map(|x| x.bytes as f64 / 1e6 / ((x.write_ns + x.sync_ns) as f64 / 1e9))
                    .filter(|s| s.is_finite())
                    .collect();
                figures.push(fig(id, format!("{} write speed", m.mode), "MB/s", Kind::Speed, speed));
                if !m.verdict.is_empty() {
                    run.outcomes.push(Outcome { experiment: id, name: format!("{} sync", m.mode), value: m.verdict.clone() });
                }
            }
            run.disk = r.results.first().and_then(|m| m.reps.first()).map(|x| disk(&x.backing));
            r.header.host
        }
        "scale" => {
            let r: scale::Report = load::json(dir, &file)?;
            for x in &r.results {
                for s in &x.steps {
                    figures.push(fig(id, format!("{} start at N={}", x.runtime, s.count), "ms", Kind::Time, s.start_ms.clone()));
                }
            }
            r.header.host
        }
        "nested" => {
            let r: nested::Report = load::json(dir, &file)?;
            for x in &r.results {
                let works = if x.success { "works" } else { "fails" };
                run.outcomes.push(Outcome { experiment: id, name: x.id.clone(), value: works.into() });
                if x.success {
                    figures.push(fig(id, format!("{} total", x.id), "ms", Kind::Time, vec![x.total_ms]));
                }
            }
            r.header.host
        }
        other => anyhow::bail!("probe compare does not know the experiment {other}"),
    };
    run.figures.extend(figures.into_iter().filter(|f| !f.reps.is_empty()));
    run.host.get_or_insert(host);
    Ok(())
}

/// Startup's total and each phase per runtime, one value per rep (a phase that occurs several
/// times in a rep is summed).
fn startup_figures(results: &[RuntimeResult]) -> Vec<Figure> {
    let mut out = Vec::new();
    for r in results {
        let rt = r.runtime.name();
        // The runner records reps in the order it ran them; sorting by start time keeps the
        // halves of a run halves in time (see Drift) whatever order a file lists them in.
        let mut samples: Vec<_> = r.samples.iter().collect();
        samples.sort_by_key(|s| s.start_mono_ns);
        out.push(fig("startup", format!("{rt} total"), "ms", Kind::Time, samples.iter().map(|s| s.wall_ms()).collect()));
        let mut per_phase: BTreeMap<Phase, Vec<f64>> = BTreeMap::new();
        for s in samples {
            let mut sums: BTreeMap<Phase, f64> = BTreeMap::new();
            for p in &s.phases {
                *sums.entry(p.phase).or_default() += p.dur_ns as f64 / 1e6;
            }
            for (phase, ms) in sums {
                per_phase.entry(phase).or_default().push(ms);
            }
        }
        for (phase, reps) in per_phase {
            out.push(Figure { phase: Some((rt.to_string(), phase)), ..fig("startup", format!("{rt} {}", phase.name()), "ms", Kind::Time, reps) });
        }
    }
    out
}

/// "sda (ext4, /dev/sda1)": the device under the file, the filesystem and its source.
fn disk(b: &Backing) -> String {
    let device = match &b.store {
        Store::Device(d) => d.name.clone(),
        Store::Memory { fstype } => format!("memory ({fstype})"),
        Store::Unknown { .. } => "?".into(),
    };
    let (fstype, source) = b.mount.as_ref().map_or(("?", "?"), |m| (m.fstype.as_str(), m.source.as_str()));
    format!("{device} ({fstype}, {source})")
}

/// One figure of run B against the same figure of run A.
#[derive(Serialize, Clone, Debug)]
pub struct Line {
    pub experiment: &'static str,
    pub figure: String,
    pub unit: &'static str,
    pub kind: Kind,
    pub median_a: f64,
    pub median_b: f64,
    pub reps_a: usize,
    pub reps_b: usize,
    /// None with fewer than two reps on a side: no interval, no verdict.
    pub interval: Option<RatioInterval>,
    /// For a startup phase: the noise floor in ms (see [`PHASE_FLOOR`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor: Option<f64>,
    pub drift: Drift,
    pub verdict: Verdict,
}

/// How far each run's own median moved while it ran, in the figure's unit: the median of its
/// later half of reps against its earlier half ([`stats::halves_drift`]); None for a run with
/// too few reps to split. Two runs taken seconds apart on a shared machine differ by more than
/// the reps of either spread (seen here: bare and native totals more than 10% apart, judged
/// faster, then slower, with tight intervals); a run's halves, taken seconds apart too, measure
/// how far the same setting moves from one moment to the next on that host.
#[derive(Serialize, Clone, Copy, Debug, Default, PartialEq)]
pub struct Drift {
    pub a: Option<f64>,
    pub b: Option<f64>,
}

impl Drift {
    pub fn of(a: &[f64], b: &[f64]) -> Drift {
        Drift { a: stats::halves_drift(a), b: stats::halves_drift(b) }
    }

    /// What B must move beyond to be told from drift: the larger of the runs' drifts, or the
    /// one measured when only one run has enough reps.
    pub fn larger(&self) -> Option<f64> {
        match (self.a, self.b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// A startup phase is below the noise floor — "no clear difference", whatever its own
/// interval says — when its median moved by less than how precisely its runtime's total is
/// known: the larger, over the two runs, of the half-width of the total's median 95% interval
/// and PHASE_FLOOR of the total's median. A phase can move for reasons outside it (after a
/// 50 ms longer workload the next start's cgroup and namespace phases run ~2 ms slower on a
/// CPU that idled), and a move the total cannot resolve is not one the user can see.
pub const PHASE_FLOOR: f64 = 0.02;

#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Better,
    Worse,
    NoClearDifference,
    /// The interval excludes 1, but the change is smaller than the noise floor ([`PHASE_FLOOR`]).
    BelowNoiseFloor,
    /// The interval excludes 1, but B's median moved from A's by no more than one of the runs
    /// moved within itself ([`Drift`]).
    WithinDrift,
    TooFewReps,
}

/// Which way a change goes for this kind of figure; a change within `noise` of 1 is none.
pub fn verdict(kind: Kind, interval: Option<&RatioInterval>, noise: f64) -> Verdict {
    let Some(iv) = interval else { return Verdict::TooFewReps };
    match (iv.change_beyond(noise), kind) {
        (Change::NoClearDifference, _) => Verdict::NoClearDifference,
        (Change::Lower, Kind::Time | Kind::Memory) | (Change::Higher, Kind::Speed) => Verdict::Better,
        _ => Verdict::Worse,
    }
}

/// The verdict in plain words for this kind of figure.
pub fn words(v: Verdict, kind: Kind, lang: Lang) -> &'static str {
    match (v, kind) {
        (Verdict::NoClearDifference, _) => lang.pick("no clear difference", "sin diferencia clara"),
        (Verdict::BelowNoiseFloor, _) => lang.pick("no clear difference (below noise floor)", "sin diferencia clara (bajo el piso de ruido)"),
        (Verdict::WithinDrift, _) => lang.pick("no clear difference (within the runs' own drift)", "sin diferencia clara (dentro de la deriva de las propias ejecuciones)"),
        (Verdict::TooFewReps, _) => lang.pick("too few reps to judge", "pocas repeticiones para juzgar"),
        (Verdict::Better, Kind::Memory) => lang.pick("less memory", "menos memoria"),
        (Verdict::Worse, Kind::Memory) => lang.pick("more memory", "más memoria"),
        (Verdict::Better, _) => lang.pick("faster", "más rápido"),
        (Verdict::Worse, _) => lang.pick("slower", "más lento"),
    }
}

#[derive(Serialize, Clone, Debug)]
pub struct OutcomeLine {
    pub experiment: &'static str,
    pub name: String,
    pub a: String,
    pub b: String,
}

/// Run B against run A: what both have, and what only one has.
#[derive(Serialize, Clone, Debug)]
pub struct Pair {
    pub a: String,
    pub b: String,
    pub lines: Vec<Line>,
    pub outcomes: Vec<OutcomeLine>,
    /// "experiment: figure" present in one run only.
    pub only_a: Vec<String>,
    pub only_b: Vec<String>,
}

pub fn pair(a: &Run, b: &Run, noise: f64) -> Pair {
    let key = |f: &Figure| (f.experiment, f.name.clone());
    let in_b: BTreeMap<_, &Figure> = b.figures.iter().map(|f| (key(f), f)).collect();
    let in_a: BTreeMap<_, &Figure> = a.figures.iter().map(|f| (key(f), f)).collect();
    // A phase's floor (see PHASE_FLOOR), from its runtime's total in both runs.
    let floor = |f: &Figure| {
        let (rt, _) = f.phase.as_ref()?;
        let total = |m: &BTreeMap<_, &Figure>| {
            let reps = &m.get(&(f.experiment, format!("{rt} total")))?.reps;
            Some((stats::median(reps) * PHASE_FLOOR).max(stats::median_half_width(reps, BOOTSTRAP_SEED).unwrap_or(0.0)))
        };
        Some(total(&in_a)?.max(total(&in_b)?))
    };
    let lines = a
        .figures
        .iter()
        .filter_map(|fa| {
            let fb = in_b.get(&key(fa))?;
            let interval = stats::bootstrap_ratio(&fa.reps, &fb.reps, BOOTSTRAP_SEED);
            let (median_a, median_b, floor) = (stats::median(&fa.reps), stats::median(&fb.reps), floor(fa));
            let drift = Drift::of(&fa.reps, &fb.reps);
            let moved_by = (median_b - median_a).abs();
            let verdict = match verdict(fa.kind, interval.as_ref(), noise) {
                Verdict::Better | Verdict::Worse if drift.larger().is_some_and(|d| moved_by <= d) => Verdict::WithinDrift,
                Verdict::Better | Verdict::Worse if floor.is_some_and(|fl| moved_by < fl) => Verdict::BelowNoiseFloor,
                v => v,
            };
            Some(Line {
                experiment: fa.experiment,
                figure: fa.name.clone(),
                unit: fa.unit,
                kind: fa.kind,
                median_a,
                median_b,
                reps_a: fa.reps.len(),
                reps_b: fb.reps.len(),
                verdict,
                interval,
                floor,
                drift,
            })
        })
        .collect();
    let ob: BTreeMap<_, &Outcome> = b.outcomes.iter().map(|o| ((o.experiment, o.name.clone()), o)).collect();
    let outcomes = a
        .outcomes
        .iter()
        .filter_map(|oa| {
            let o = ob.get(&(oa.experiment, oa.name.clone()))?;
            Some(OutcomeLine { experiment: oa.experiment, name: oa.name.clone(), a: oa.value.clone(), b: o.value.clone() })
        })
        .collect();
    // Figures of an experiment the other run lacks altogether are said once, as the experiment.
    let only = |x: &Run, y: &Run, other: &BTreeMap<(&'static str, String), &Figure>| -> Vec<String> {
        x.figures
            .iter()
            .filter(|f| y.experiments.contains(&f.experiment) && !other.contains_key(&key(f)))
            .map(|f| format!("{}: {}", f.experiment, f.name))
            .collect()
    };
    Pair { a: a.label.clone(), b: b.label.clone(), lines, outcomes, only_a: only(a, b, &in_b), only_b: only(b, a, &in_a) }
}

/// Host facts worth comparing, as (what, value) per run; a fact a run did not record is "—".
fn host_facts(run: &Run) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(d) = &run.disk {
        out.insert("disk".into(), d.clone());
    }
    let Some(h) = &run.host else { return out };
    out.insert("probe version".into(), h.probe_version.clone());
    out.insert("kernel".into(), h.kernel.clone());
    out.insert("cpu".into(), h.cpu_model.clone());
    out.insert("cpus".into(), h.cpus.to_string());
    out.insert("memory MB".into(), h.memory_total_mb.to_string());
    // The layout is recorded as the detector's JSON (or "unknown: why" when it failed).
    let layout = &h.cgroup_layout;
    let kind = layout.get("kind").or(Some(layout)).map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
    out.extend(kind.map(|k| ("cgroup layout".to_string(), k)));
    if let Some(c) = layout.get("unified_controllers").and_then(Value::as_array) {
        let names: Vec<&str> = c.iter().filter_map(Value::as_str).collect();
        out.insert("cgroup v2 controllers".into(), names.join(" "));
    }
    for r in &h.runtimes {
        let rt = r.runtime;
        for (what, v) in [("version", &r.version), ("storage", &r.storage)] {
            if let Some(v) = v {
                out.insert(format!("{rt} {what}"), v.clone());
            }
        }
        if !r.usable {
            out.insert(format!("{rt} usable"), "no".into());
        }
    }
    out
}

pub struct Comparison {
    pub runs: Vec<Run>,
    /// (what, value per run), only the facts that differ.
    pub host_diff: Vec<(String, Vec<String>)>,
    pub same_host_facts: usize,
    pub pairs: Vec<Pair>,
    pub noise: f64,
}

/// Each later run against the first; `noise` as in [`verdict`].
pub fn compare(runs: Vec<Run>, noise: f64) -> Comparison {
    let facts: Vec<BTreeMap<String, String>> = runs
        .iter()
        .map(host_facts)
        .collect();
    let names: std::collections::BTreeSet<&String> = facts.iter().flat_map(|f| f.keys()).collect();
    let mut host_diff = Vec::new();
    let mut same = 0;
    for n in names {
        let values: Vec<String> = facts.iter().map(|f| f.get(n).cloned().unwrap_or_else(|| "—".into())).collect();
        if values.iter().all(|v| *v == values[0]) {
            same += 1;
        } else {
            host_diff.push((n.clone(), values));
        }
    }
    let pairs = runs[1..].iter().map(|b| pair(&runs[0], b, noise)).collect();
    Comparison { runs, host_diff, same_host_facts: same, pairs, noise }
}

fn interval_text(l: &Line) -> String {
    match &l.interval {
        Some(iv) => format!("{}–{}", sig(iv.low), sig(iv.high)),
        None => "—".into(),
    }
}

fn ratio_text(l: &Line) -> String {
    if l.median_a > 0.0 {
        format!("×{}", sig(l.median_b / l.median_a))
    } else {
        "—".into()
    }
}

/// The rows every output shows for a pair: figure, A, B, ratio, interval, verdict.
/// `b` is the later run's letter.
pub fn rows(p: &Pair, b: char, lang: Lang) -> (Vec<String>, Vec<Vec<String>>) {
    let head = vec![
        lang.pick("figure", "medida").to_string(),
        format!("A {}", lang.pick("median", "mediana")),
        format!("{b} {}", lang.pick("median", "mediana")),
        format!("{b}/A"),
        lang.pick("95% interval", "intervalo 95%").into(),
        lang.pick("drift", "deriva").into(),
        lang.pick("verdict", "veredicto").into(),
    ];
    let mut out: Vec<Vec<String>> = p
        .lines
        .iter()
        .map(|l| {
            vec![
                format!("{} {}, {}", l.experiment, l.figure, l.unit),
                sig(l.median_a),
                sig(l.median_b),
                ratio_text(l),
                interval_text(l),
                l.drift.larger().map_or("—".into(), sig),
                words(l.verdict, l.kind, lang).to_string(),
            ]
        })
        .collect();
    for o in &p.outcomes {
        let same = o.a == o.b;
        out.push(vec![
            format!("{} {}", o.experiment, o.name),
            o.a.clone(),
            o.b.clone(),
            String::new(),
            String::new(),
            String::new(),
            if same { lang.pick("same", "igual") } else { lang.pick("changed", "cambió") }.to_string(),
        ]);
    }
    (head, out)
}

/// The figures that moved, with by how much: "startup native workload: slower, +69.0 ms (×21.4)".
/// Empty when nothing did.
pub fn moved(p: &Pair, lang: Lang) -> Vec<String> {
    p.lines
        .iter()
        .filter(|l| matches!(l.verdict, Verdict::Better | Verdict::Worse))
        .map(|l| {
            let delta = l.median_b - l.median_a;
            let sign = if delta >= 0.0 { "+" } else { "−" };
            format!("{} {}: {}, {sign}{} {} ({})", l.experiment, l.figure, words(l.verdict, l.kind, lang), sig(delta.abs()), l.unit, ratio_text(l))
        })
        .collect()
}

/// Why some phases are "below noise floor", with each runtime's floor in ms; None when none is.
pub fn floor_note(p: &Pair, lang: Lang) -> Option<String> {
    let mut floors: Vec<String> = p
        .lines
        .iter()
        .filter(|l| l.verdict == Verdict::BelowNoiseFloor)
        .filter_map(|l| Some(format!("{} {} ms", l.figure.split(' ').next()?, sig(l.floor?))))
        .collect();
    floors.dedup();
    if floors.is_empty() {
        return None;
    }
    let share = sig(PHASE_FLOOR * 100.0);
    Some(lang.pick(
        format!("below noise floor: the phase's interval excludes 1, but it moved by less than its runtime's total is known (half its 95% interval, at least {share}% of its median: {}), too little to tell from noise", floors.join(", ")),
        format!("bajo el piso de ruido: el intervalo de la fase excluye el 1, pero cambió menos de lo que se conoce el total de su runtime (la mitad de su intervalo del 95%, al menos el {share}% de su mediana: {}), muy poco para distinguirlo del ruido", floors.join(", ")),
    ))
}

/// Why some figures are "within the runs' own drift", and which changes could not be held
/// against drift because neither run had the reps to split; empty when neither applies.
pub fn drift_notes(p: &Pair, lang: Lang) -> Vec<String> {
    let names = |keep: &dyn Fn(&Line) -> bool| -> Vec<String> {
        p.lines.iter().filter(|l| keep(l)).map(|l| format!("{} {}", l.experiment, l.figure)).collect()
    };
    let within = names(&|l| l.verdict == Verdict::WithinDrift);
    let unmeasured = names(&|l| matches!(l.verdict, Verdict::Better | Verdict::Worse) && l.drift.larger().is_none());
    let mut out = Vec::new();
    if !within.is_empty() {
        out.push(lang.pick(
            format!("within the runs' own drift: the interval excludes 1, but B's median moved from A's by no more than one run's median moved within itself, from its earlier half of reps to its later half (column drift), so the move cannot be told from the host drifting between moments: {}", within.join(", ")),
            format!("dentro de la deriva de las propias ejecuciones: el intervalo excluye el 1, pero la mediana de B se alejó de la de A no más de lo que la mediana de una ejecución se movió dentro de ella misma, de su primera mitad de repeticiones a la segunda (columna deriva), así que el cambio no se distingue de la deriva de la máquina de un momento a otro: {}", within.join(", ")),
        ));
    }
    if !unmeasured.is_empty() {
        let reps = 2 * stats::DRIFT_MIN_HALF;
        out.push(lang.pick(
            format!("drift not measured (fewer than {reps} reps in both runs, too few to split into halves): {}; their verdict rests on the interval and the noise threshold alone", unmeasured.join(", ")),
            format!("deriva sin medir (menos de {reps} repeticiones en ambas ejecuciones, muy pocas para partirlas en mitades): {}; su veredicto se apoya solo en el intervalo y el umbral de ruido", unmeasured.join(", ")),
        ));
    }
    out
}

/// What a pair lacks, in sentences.
pub fn lacks(c: &Comparison, p: &Pair, lang: Lang) -> Vec<String> {
    let mut out = Vec::new();
    let run = |label: &str| c.runs.iter().find(|r| r.label == label);
    let (Some(a), Some(b)) = (run(&p.a), run(&p.b)) else { return out };
    for (x, y) in [(a, b), (b, a)] {
        let missing: Vec<&str> = y.experiments.iter().filter(|e| !x.experiments.contains(e)).copied().collect();
        if !missing.is_empty() {
            out.push(format!("{} {}: {}", x.label, lang.pick("has no results for", "no tiene resultados de"), missing.join(", ")));
        }
        if !x.unreadable.is_empty() {
            out.push(format!("{} {}: {}", x.label, lang.pick("lacks", "no tiene"), x.unreadable.join("; ")));
        }
    }
    for (label, only) in [(&p.a, &p.only_a), (&p.b, &p.only_b)] {
        // "startup: docker total", "startup: docker client" → "startup: docker total, docker client"
        let mut by_experiment: Vec<(&str, Vec<&str>)> = Vec::new();
        for f in only {
            let (e, name) = f.split_once(": ").unwrap_or(("", f));
            match by_experiment.iter_mut().find(|(x, _)| *x == e) {
                Some((_, names)) => names.push(name),
                None => by_experiment.push((e, vec![name])),
            }
        }
        for (e, names) in by_experiment {
            out.push(format!("{} {} {} {e}: {}", lang.pick("only", "solo"), label, lang.pick("has", "tiene"), names.join(", ")));
        }
    }
    out
}

/// Phases side by side: for every runtime with phases in both runs, one stacked bar per run.
fn phase_chart(c: &Comparison, p: &Pair, index: usize, lang: Lang) -> Option<Chart> {
    let mut rows = Vec::new();
    let mut seen: Vec<Phase> = Vec::new();
    let runtimes: Vec<String> = {
        let mut v: Vec<String> = p.lines.iter().filter_map(|l| phase_of(c, &p.a, l)).map(|(rt, _)| rt).collect();
        v.dedup();
        v
    };
    for rt in &runtimes {
        for (label, which) in [(&p.a, 'A'), (&p.b, 'B')] {
            let mut at = 0.0;
            let mut segments = Vec::new();
            for l in &p.lines {
                let Some((r, phase)) = phase_of(c, &p.a, l) else { continue };
                if r != *rt {
                    continue;
                }
                let v = if which == 'A' { l.median_a } else { l.median_b };
                segments.push(Segment { from: at, to: at + v, color: phase_color(phase) });
                at += v;
                if !seen.contains(&phase) {
                    seen.push(phase);
                }
            }
            rows.push(Row { label: format!("{rt} · {which} {label}"), segments, note: format!("{} ms", sig(at)), ..Row::default() });
        }
        rows.push(Row::gap());
    }
    rows.pop();
    if rows.is_empty() {
        return None;
    }
    Some(Chart {
        name: format!("compare-phases-{index}"),
        title: lang.pick(
            format!("Where the time goes: {} (A) and {} (B), median per phase", p.a, p.b),
            format!("Dónde se va el tiempo: {} (A) y {} (B), mediana por fase", p.a, p.b),
        ),
        body: Body::Rows(Rows {
            axis: lang.pick("milliseconds (less is better)", "milisegundos (menos es mejor)").into(),
            rows,
            band: None,
            legend: seen.iter().map(|&ph| Key { label: lang.phase(ph).into(), color: phase_color(ph) }).collect(),
        }),
    })
}

fn phase_of(c: &Comparison, a: &str, l: &Line) -> Option<(String, Phase)> {
    let run = c.runs.iter().find(|r| r.label == a)?;
    run.figures.iter().find(|f| f.experiment == l.experiment && f.name == l.figure)?.phase.clone()
}

/// The comparison as a document (Markdown and HTML from the report's writers) and its charts.
pub fn document(c: &Comparison, lang: Lang) -> (Doc, Vec<Chart>) {
    let mut blocks = Vec::new();
    let mut charts = Vec::new();
    let runs: Vec<String> = c.runs.iter().enumerate().map(|(i, r)| format!("{} `{}`: {}", letter(i), r.label, r.dir.display())).collect();
    blocks.push(Block::List(runs));
    blocks.push(Block::Para(lang.pick(
        format!("Each figure is the median of a run's raw reps; B/A is the ratio of medians, the interval a 95% bootstrap interval of that ratio (reps resampled 4000 times, fixed seed). An interval that contains 1, or a ratio within {}% of 1 (the noise threshold), means no clear difference. A startup phase whose median moved by less than the noise floor of its runtime's total — the half-width of the total's 95% interval, or {}% of its median if larger, whichever run is noisier — is below the noise floor: no clear difference, since the total itself is not known more precisely than that. Each run's reps are taken over time, so each run is also cut into its earlier and later half of reps (the middle rep of an odd count in neither): how far its median moved from one half to the other is its drift (column drift, in the figure's unit; the larger of the two runs). A figure whose median moved between the runs by no more than that is within the runs' own drift: no clear difference, since the same setting moves that much from one moment to the next on that host. A run with fewer than {} reps is not split, and its drift is not measured.", sig(c.noise * 100.0), sig(PHASE_FLOOR * 100.0), 2 * stats::DRIFT_MIN_HALF),
        format!("Cada medida es la mediana de las repeticiones de una ejecución; B/A es el cociente de medianas, el intervalo un intervalo bootstrap del 95% de ese cociente (4000 remuestreos, semilla fija). Un intervalo que contiene el 1, o un cociente a menos de {}% de 1 (el umbral de ruido), significa sin diferencia clara. Una fase del arranque cuya mediana cambió menos que el piso de ruido del total de su runtime — la mitad del ancho del intervalo del 95% del total, o el {}% de su mediana si es mayor, en la ejecución más ruidosa — queda bajo el piso de ruido: sin diferencia clara, porque el total mismo no se conoce con más precisión. Las repeticiones de una ejecución se toman a lo largo del tiempo, así que cada ejecución se parte además en su primera y su segunda mitad de repeticiones (la repetición del medio de una cantidad impar en ninguna): cuánto se movió su mediana de una mitad a la otra es su deriva (columna deriva, en la unidad de la medida; la mayor de las dos ejecuciones). Una medida cuya mediana cambió entre las ejecuciones no más que eso queda dentro de la deriva de las propias ejecuciones: sin diferencia clara, porque la misma configuración se mueve eso de un momento a otro en esa máquina. Una ejecución con menos de {} repeticiones no se parte, y su deriva no se mide.", sig(c.noise * 100.0), sig(PHASE_FLOOR * 100.0), 2 * stats::DRIFT_MIN_HALF),
    )));
    blocks.push(Block::Heading(2, lang.pick("Host and versions", "Máquina y versiones").into()));
    if c.host_diff.is_empty() {
        blocks.push(Block::Para(lang.pick(
            format!("The runs recorded the same host: all {} facts are equal.", c.same_host_facts),
            format!("Las ejecuciones registraron la misma máquina: los {} datos coinciden.", c.same_host_facts),
        )));
    } else {
        let mut t = DocTable::new(std::iter::once(lang.pick("what", "qué").to_string()).chain((0..c.runs.len()).map(|i| letter(i).to_string())));
        for (what, values) in &c.host_diff {
            t.row(std::iter::once(what.clone()).chain(values.iter().cloned()));
        }
        blocks.push(Block::Table(t));
        blocks.push(Block::Para(lang.pick(
            format!("{} other facts are equal.", c.same_host_facts),
            format!("Otros {} datos coinciden.", c.same_host_facts),
        )));
    }
    for (i, p) in c.pairs.iter().enumerate() {
        let b = letter(i + 1);
        blocks.push(Block::Heading(2, lang.pick(format!("{b} against A"), format!("{b} frente a A"))));
        let (head, rows) = rows(p, b, lang);
        let mut t = DocTable::new(head);
        for r in rows {
            t.row(r);
        }
        let m = moved(p, lang);
        if m.is_empty() {
            blocks.push(Block::Para(lang.pick("No figure moved clearly.", "Ninguna medida cambió con claridad.").into()));
        } else {
            blocks.push(Block::Para(lang.pick("What moved:", "Qué cambió:").into()));
            blocks.push(Block::List(m));
        }
        blocks.push(Block::Table(t));
        for n in floor_note(p, lang).into_iter().chain(drift_notes(p, lang)) {
            blocks.push(Block::Note(n));
        }
        if let Some(chart) = phase_chart(c, p, i + 1, lang) {
            blocks.push(Block::Figure(charts.len()));
            charts.push(chart);
        }
        let lack = lacks(c, p, lang);
        if !lack.is_empty() {
            blocks.push(Block::Note(lang.pick("Not compared: ", "Sin comparar: ").to_string() + &lack.join("; ")));
        }
    }
    let title = lang.pick("Comparison of probe runs", "Comparación de ejecuciones de probe").to_string();
    (Doc { title, blocks }, charts)
}

/// What the terminal shows: the runs, the host differences, then per later run its table,
/// what moved and what was not compared, fitted to `width` columns.
pub fn terminal(c: &Comparison, lang: Lang, width: usize) -> String {
    let mut out = String::new();
    for (i, r) in c.runs.iter().enumerate() {
        out.push_str(&format!("{} {}\n", letter(i), r.dir.display()));
    }
    out.push('\n');
    if c.host_diff.is_empty() {
        out.push_str(&format!("{}\n", lang.pick("Same host and versions.", "Misma máquina y versiones.")));
    } else {
        let mut t = Table::new(std::iter::once(lang.pick("host", "máquina").to_string()).chain((0..c.runs.len()).map(|i| letter(i).to_string())));
        for (what, values) in &c.host_diff {
            t.row(std::iter::once(what.clone()).chain(values.iter().cloned()));
        }
        out.push_str(&t.render_width(width));
    }
    for (i, p) in c.pairs.iter().enumerate() {
        out.push_str(&format!("\n{} {} A\n", letter(i + 1), lang.pick("against", "frente a")));
        let (head, rows) = rows(p, letter(i + 1), lang);
        let mut t = Table::new(head);
        for r in rows {
            t.row(r);
        }
        out.push_str(&t.render_width(width));
        let head = lang.pick("moved", "cambió");
        let notes = moved(p, lang).into_iter().map(|m| format!("{head}: {m}"));
        let not_compared = lacks(c, p, lang).into_iter().map(|l| format!("{}: {l}", lang.pick("not compared", "sin comparar")));
        for text in notes.chain(floor_note(p, lang)).chain(drift_notes(p, lang)).chain(not_compared) {
            out.push_str(&prose(&text, "", "  ", width));
        }
    }
    out
}

/// The comparison for machines: the host differences and every pair's lines.
pub fn json(c: &Comparison) -> Value {
    let host: Vec<Value> = c.host_diff.iter().map(|(what, values)| serde_json::json!({"what": what, "values": values})).collect();
    serde_json::json!({"host_differences": host, "pairs": c.pairs})
}

/// A, B, C… as the runs were given.
pub fn letter(i: usize) -> char {
    (b'A' + (i % 26) as u8) as char
}

/// Loads every run, or names the first that is not a run folder.
pub fn load_all(paths: &[PathBuf]) -> Result<Vec<Run>> {
    paths.iter().map(|p| load(p).with_context(|| format!("{} is not a probe run folder", p.display()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(low: f64, high: f64) -> RatioInterval {
        RatioInterval { ratio: (low + high) / 2.0, low, high }
    }

    #[test]
    fn verdict_follows_the_direction_of_better() {
        assert_eq!(verdict(Kind::Time, Some(&iv(1.1, 1.3)), 0.05), Verdict::Worse);
        assert_eq!(verdict(Kind::Time, Some(&iv(0.5, 0.9)), 0.05), Verdict::Better);
        assert_eq!(verdict(Kind::Speed, Some(&iv(1.1, 1.3)), 0.05), Verdict::Better);
        assert_eq!(verdict(Kind::Memory, Some(&iv(1.1, 1.3)), 0.05), Verdict::Worse);
        assert_eq!(verdict(Kind::Speed, Some(&iv(0.9, 1.1)), 0.05), Verdict::NoClearDifference);
        assert_eq!(verdict(Kind::Time, Some(&iv(1.02, 1.04)), 0.05), Verdict::NoClearDifference);
        assert_eq!(verdict(Kind::Time, None, 0.05), Verdict::TooFewReps);
        assert_eq!(words(Verdict::Worse, Kind::Time, Lang::En), "slower");
        assert_eq!(words(Verdict::Better, Kind::Speed, Lang::Es), "más rápido");
        assert_eq!(words(Verdict::Worse, Kind::Memory, Lang::En), "more memory");
    }

    #[test]
    fn startup_figures_come_from_raw_reps_and_phases() {
        use crate::ground::phase::{Counters, PhaseRecord};
        use crate::measure::timer::Sample;
        let rec = |phase, dur_ns| PhaseRecord { phase, detail: None, start_ns: 0, dur_ns, counters: Counters::default(), overhead_ns: 0 };
        let sample = |start_mono_ns, wall_ns, phases| Sample { start_mono_ns, pid: 1, wall_ns, user_ns: 0, sys_ns: 0, exit_code: 0, phases };
        // Listed out of order: the figures' reps come out in the order they were taken.
        let r = RuntimeResult {
            runtime: RuntimeKind::Native,
            warmup: Vec::new(),
            samples: vec![
                sample(20, 3_000_000, vec![rec(Phase::Workload, 2_000_000)]),
                sample(10, 2_000_000, vec![rec(Phase::Cgroup, 100_000), rec(Phase::Cgroup, 50_000), rec(Phase::Workload, 1_000_000)]),
            ],
        };
        let figs = startup_figures(&[r]);
        let get = |n: &str| figs.iter().find(|f| f.name == n).map(|f| f.reps.clone());
        assert_eq!(get("native total"), Some(vec![2.0, 3.0]));
        assert_eq!(get("native workload"), Some(vec![1.0, 2.0]));
        assert_eq!(get("native cgroup").map(|r| r.len()), Some(1));
        assert!((get("native cgroup").unwrap()[0] - 0.15).abs() < 1e-12);
    }

    fn run(label: &str, figures: Vec<Figure>) -> Run {
        Run { dir: PathBuf::from(label), label: label.into(), host: None, disk: None, experiments: vec!["startup"], unreadable: Vec::new(), figures, outcomes: Vec::new() }
    }

    fn figure(name: &str, reps: Vec<f64>) -> Figure {
        Figure { experiment: "startup", name: name.into(), unit: "ms", kind: Kind::Time, reps, phase: None }
    }

    #[test]
    fn a_phase_that_moved_less_than_the_floor_is_no_clear_difference() {
        let phase = |name: &str, p: Phase, reps: Vec<f64>| Figure { phase: Some(("native".into(), p)), ..figure(name, reps) };
        let a = run("a", vec![
            figure("native total", vec![10.0, 10.2, 9.8, 10.1, 9.9]),
            phase("native rootfs", Phase::Rootfs, vec![0.20, 0.20, 0.21, 0.20, 0.19]),
            phase("native workload", Phase::Workload, vec![1.0, 1.1, 0.9, 1.0, 1.0]),
        ]);
        let b = run("b", vec![
            figure("native total", vec![60.0, 60.2, 59.8, 60.1, 59.9]),
            phase("native rootfs", Phase::Rootfs, vec![0.30, 0.30, 0.31, 0.30, 0.29]),
            phase("native workload", Phase::Workload, vec![51.0, 51.1, 50.9, 51.0, 51.0]),
        ]);
        let p = pair(&a, &b, 0.10);
        let verdict_of = |n: &str| p.lines.iter().find(|l| l.figure == n).unwrap().verdict;
        // +0.1 ms (×1.5) is under 2% of the larger total (1.2 ms, wider than either total's
        // interval); +50 ms is not.
        assert_eq!(verdict_of("native rootfs"), Verdict::BelowNoiseFloor);
        assert_eq!(verdict_of("native workload"), Verdict::Worse);
        assert_eq!(verdict_of("native total"), Verdict::Worse);
        assert!((p.lines.iter().find(|l| l.figure == "native rootfs").unwrap().floor.unwrap() - 1.2).abs() < 1e-9);
        let note = floor_note(&p, Lang::En).unwrap();
        assert!(note.contains("at least 2.00% of its median: native 1.20 ms"), "{note}");
    }

    /// Ten reps whose earlier five sit at `early` and later five at `late`, ±1%.
    fn stepped(early: f64, late: f64) -> Vec<f64> {
        [early, late].iter().flat_map(|&m| [m, m * 1.01, m * 0.99, m * 1.005, m * 0.995]).collect()
    }

    #[test]
    fn a_move_no_larger_than_a_runs_own_drift_is_no_clear_difference() {
        // A's total stepped from 10 to 11 ms while it ran (drift 1 ms), B sits at 11.2 ms: a
        // tight interval excludes 1 and the ratio passes a 5% noise threshold, but the runs
        // moved as much within themselves. Its workload moved 50 ms, far beyond any drift.
        let a = run("a", vec![figure("native total", stepped(10.0, 11.0)), figure("native workload", stepped(1.0, 1.0))]);
        let b = run("b", vec![figure("native total", stepped(11.2, 11.2)), figure("native workload", stepped(51.0, 51.2))]);
        let p = pair(&a, &b, 0.05);
        let line = |n: &str| p.lines.iter().find(|l| l.figure == n).unwrap();
        let total = line("native total");
        assert_eq!(verdict(Kind::Time, total.interval.as_ref(), 0.05), Verdict::Worse, "{total:?}");
        assert_eq!(total.verdict, Verdict::WithinDrift);
        assert!((total.drift.a.unwrap() - 1.0).abs() < 1e-9 && total.drift.b == Some(0.0), "{total:?}");
        assert_eq!(total.drift.larger(), Some(total.drift.a.unwrap()));
        let workload = line("native workload");
        assert_eq!(workload.verdict, Verdict::Worse);
        assert!((workload.drift.larger().unwrap() - 0.2).abs() < 1e-9, "{workload:?}");
        // Past the drift, the same total is slower again.
        let b = run("b", vec![figure("native total", stepped(12.2, 12.2))]);
        assert_eq!(pair(&a, &b, 0.05).lines[0].verdict, Verdict::Worse);
        // The drift is printed with the verdict, and in the JSON.
        let notes = drift_notes(&p, Lang::En).join("\n");
        assert!(notes.contains("within the runs' own drift") && notes.contains("startup native total"), "{notes}");
        assert!(!notes.contains("native workload"), "{notes}");
        assert!(drift_notes(&p, Lang::Es).join("").contains("dentro de la deriva"));
        let (head, rows) = rows(&p, 'B', Lang::En);
        let at = head.iter().position(|h| h == "drift").unwrap();
        assert_eq!(rows[0][at], "1.00");
        assert_eq!(words(Verdict::WithinDrift, Kind::Time, Lang::En), "no clear difference (within the runs' own drift)");
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["lines"][0]["verdict"], "within-drift");
        assert_eq!(json["lines"][0]["drift"]["b"], 0.0);
    }

    #[test]
    fn a_change_in_runs_too_short_to_split_says_its_drift_is_not_measured() {
        // Five reps: no halves of three, so no drift, and the verdict rests on the interval.
        let a = run("a", vec![figure("native total", vec![10.0, 10.1, 9.9, 10.0, 10.05])]);
        let b = run("b", vec![figure("native total", vec![20.0, 20.1, 19.9, 20.0, 20.05])]);
        let p = pair(&a, &b, 0.05);
        assert_eq!(p.lines[0].drift, Drift { a: None, b: None });
        assert_eq!(p.lines[0].verdict, Verdict::Worse);
        assert_eq!(rows(&p, 'B', Lang::En).1[0][5], "—");
        let notes = drift_notes(&p, Lang::En);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].starts_with("drift not measured (fewer than 6 reps in both runs") && notes[0].contains("startup native total"), "{notes:?}");
        // One run long enough to split: its drift is the one there is.
        assert_eq!(Drift { a: None, b: Some(0.5) }.larger(), Some(0.5));
    }

    #[test]
    fn pairs_compare_shared_figures_and_name_the_rest() {
        let a = run("a", vec![figure("bare total", vec![1.0, 1.1, 0.9, 1.0]), figure("docker total", vec![200.0, 210.0])]);
        let b = run("b", vec![figure("bare total", vec![2.0, 2.1, 1.9, 2.0]), figure("podman total", vec![100.0, 120.0])]);
        let p = pair(&a, &b, 0.05);
        assert_eq!(p.lines.len(), 1);
        assert_eq!(p.lines[0].verdict, Verdict::Worse);
        assert_eq!(moved(&p, Lang::En), ["startup bare total: slower, +1.00 ms (×2.00)"]);
        assert_eq!(p.only_a, ["startup: docker total"]);
        assert_eq!(p.only_b, ["startup: podman total"]);
        let c = compare(vec![a, b], 0.05);
        let lack = lacks(&c, &c.pairs[0], Lang::En).join("\n");
        assert!(lack.contains("only a has startup: docker total"), "{lack}");
        for width in [40, 80] {
            let text = terminal(&c, Lang::En, width);
            assert!(text.contains("moved: startup bare total: slower"), "{text}");
            assert!(text.lines().all(|l| l.chars().count() <= width), "{text}");
        }
    }
}

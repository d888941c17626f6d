//! `probe compare`: two or more run folders side by side. First what differs between the
//! machines (kernel, cgroup layout, engine and runtime versions, disk), since that is often the
//! answer; then every figure the runs share, each later run against the first, with the ratio
//! of medians, its bootstrap 95% interval over the raw reps and a plain verdict.
//!
//! The experiments' JSON is read as `serde_json::Value` through the few paths below (one
//! function per experiment), so a run from an older probe that lacks a field only loses that
//! figure; switching a function to a typed Report changes nothing around it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;

use crate::ground::stats::{self, Change, RatioInterval, BOOTSTRAP_SEED};
use crate::output::report::chart::{phase_color, Body, Chart, Key, Row, Rows, Segment};
use crate::output::report::doc::{Block, Doc, Table as DocTable};
use crate::output::report::lang::Lang;
use crate::output::report::load::{self, stem};
use crate::output::report::sig;
use crate::output::table::{wrap, Table};
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
    /// Host metadata as the first experiment that recorded it wrote it.
    host: Option<Value>,
    /// Experiments present, by step id.
    pub experiments: Vec<&'static str>,
    /// Experiments a `probe all` run lists but did not finish, or whose JSON cannot be read.
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
        let file = dir.join(format!("{}.json", stem(found.step)));
        let v: Value = match std::fs::read(&file).map_err(anyhow::Error::from).and_then(|b| Ok(serde_json::from_slice(&b)?)) {
            Ok(v) => v,
            Err(e) => {
                run.unreadable.push(format!("{id} ({}: {e})", file.display()));
                continue;
            }
        };
        run.experiments.push(id);
        if run.host.is_none() {
            run.host = v.pointer("/report/host").or_else(|| v.get("host")).cloned();
        }
        extract(id, &v, &mut run.figures, &mut run.outcomes);
    }
    Ok(run)
}

fn extract(id: &'static str, v: &Value, figures: &mut Vec<Figure>, outcomes: &mut Vec<Outcome>) {
    let mut fig = |name: String, unit, kind, reps: Vec<f64>, phase| {
        if !reps.is_empty() {
            figures.push(Figure { experiment: id, name, unit, kind, reps, phase });
        }
    };
    let arr = |v: &Value, key: &str| v.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
    let num = |v: &Value, key: &str| v.get(key).and_then(Value::as_f64);
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or("").to_string();
    match id {
        "startup" => {
            for r in arr(v.get("report").unwrap_or(v), "results") {
                let rt = text(&r, "runtime");
                let samples = arr(&r, "samples");
                fig(format!("{rt} total"), "ms", Kind::Time, samples.iter().filter_map(|s| num(s, "wall_ns")).map(|ns| ns / 1e6).collect(), None);
                // Each rep's time per phase (a phase may occur several times in a rep: summed).
                let mut per_phase: BTreeMap<Phase, Vec<f64>> = BTreeMap::new();
                for s in &samples {
                    let mut sums: BTreeMap<Phase, f64> = BTreeMap::new();
                    for p in arr(s, "phases") {
                        let (Some(phase), Some(d)) = (serde_json::from_value::<Phase>(p["phase"].clone()).ok(), num(&p, "dur_ns")) else { continue };
                        *sums.entry(phase).or_default() += d / 1e6;
                    }
                    for (phase, ms) in sums {
                        per_phase.entry(phase).or_default().push(ms);
                    }
                }
                for (phase, reps) in per_phase {
                    fig(format!("{rt} {}", phase.name()), "ms", Kind::Time, reps, Some((rt.clone(), phase)));
                }
            }
        }
        "memory" => {
            for r in arr(v, "results") {
                let per: Vec<f64> = arr(&r, "batches")
                    .iter()
                    .filter_map(|b| Some(num(b, "delta_mb")? / num(b, "count").filter(|c| *c > 0.0)?))
                    .collect();
                fig(format!("{} MB per container (free -m)", text(&r, "runtime")), "MB", Kind::Memory, per, None);
            }
        }
        "memory-cgroup" => {
            for r in arr(v, "results") {
                let per: Vec<f64> = arr(&r, "points")
                    .iter()
                    .flat_map(|p| p.pointer("/snapshot/containers").and_then(Value::as_array).cloned().unwrap_or_default())
                    .filter_map(|c| c.pointer("/memory/exact_bytes").and_then(Value::as_f64))
                    .map(|b| b / 1024.0)
                    .collect();
                fig(format!("{} KB per container (cgroup)", text(&r, "runtime")), "KB", Kind::Memory, per, None);
            }
        }
        "cpu" | "cpu-exec" => {
            let results = arr(v, "results");
            let wall = |r: &Value| arr(r, "reps").iter().filter_map(|x| num(x, "wall_ms")).collect::<Vec<_>>();
            let bare = results.iter().find(|r| text(r, "runtime") == "bare").map(|r| stats::median(&wall(r)));
            for r in &results {
                let rt = text(r, "runtime");
                fig(format!("{rt} wall"), "ms", Kind::Time, wall(r), None);
                fig(format!("{rt} CPU time"), "ms", Kind::Time, arr(r, "reps").iter().filter_map(|x| num(x, "cpu_ms")).collect(), None);
                if let Some(b) = bare.filter(|b| *b > 0.0 && rt != "bare") {
                    fig(format!("{rt} overhead (wall × bare)"), "×", Kind::Time, wall(r).iter().map(|w| w / b).collect(), None);
                }
            }
        }
        "io" => {
            for r in arr(v, "results") {
                let mode = text(&r, "mode");
                let speed: Vec<f64> = arr(&r, "reps")
                    .iter()
                    .filter_map(|x| {
                        let ns = num(x, "write_ns")? + num(x, "sync_ns")?;
                        Some(num(x, "bytes")? / 1e6 / (ns / 1e9)).filter(|s| s.is_finite())
                    })
                    .collect();
                fig(format!("{mode} write speed"), "MB/s", Kind::Speed, speed, None);
                let verdict = text(&r, "verdict");
                if !verdict.is_empty() {
                    outcomes.push(Outcome { experiment: id, name: format!("{mode} sync"), value: verdict });
                }
            }
        }
        "scale" => {
            for r in arr(v, "results") {
                let rt = text(&r, "runtime");
                for s in arr(&r, "steps") {
                    let n = num(&s, "count").unwrap_or(0.0);
                    let start: Vec<f64> = arr(&s, "start_ms").iter().filter_map(Value::as_f64).collect();
                    fig(format!("{rt} start at N={n}"), "ms", Kind::Time, start, None);
                }
            }
        }
        "nested" => {
            for r in arr(v, "results") {
                let name = text(&r, "id");
                let works = r.get("success").and_then(Value::as_bool);
                if let Some(w) = works {
                    outcomes.push(Outcome { experiment: id, name: name.clone(), value: if w { "works" } else { "fails" }.into() });
                }
                if works == Some(true) {
                    fig(format!("{name} total"), "ms", Kind::Time, num(&r, "total_ms").into_iter().collect(), None);
                }
            }
        }
        _ => {}
    }
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
    pub verdict: Verdict,
}

#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Better,
    Worse,
    NoClearDifference,
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
    let lines = a
        .figures
        .iter()
        .filter_map(|fa| {
            let fb = in_b.get(&key(fa))?;
            let interval = stats::bootstrap_ratio(&fa.reps, &fb.reps, BOOTSTRAP_SEED);
            Some(Line {
                experiment: fa.experiment,
                figure: fa.name.clone(),
                unit: fa.unit,
                kind: fa.kind,
                median_a: stats::median(&fa.reps),
                median_b: stats::median(&fb.reps),
                reps_a: fa.reps.len(),
                reps_b: fb.reps.len(),
                verdict: verdict(fa.kind, interval.as_ref(), noise),
                interval,
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
    let Some(h) = &run.host else { return out };
    let s = |p: &str| h.pointer(p).map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
    for (name, path) in [
        ("probe version", "/probe_version"),
        ("kernel", "/kernel"),
        ("cpu", "/cpu_model"),
        ("cpus", "/cpus"),
        ("memory MB", "/memory_total_mb"),
        ("cgroup layout", "/cgroup_layout/kind"),
    ] {
        if let Some(v) = s(path) {
            out.insert(name.to_string(), v);
        }
    }
    if let Some(c) = h.pointer("/cgroup_layout/unified_controllers").and_then(Value::as_array) {
        let names: Vec<&str> = c.iter().filter_map(Value::as_str).collect();
        out.insert("cgroup v2 controllers".into(), names.join(" "));
    }
    for r in h.get("runtimes").and_then(Value::as_array).into_iter().flatten() {
        let rt = r.get("runtime").and_then(Value::as_str).unwrap_or("?");
        for (what, key) in [("version", "version"), ("storage", "storage")] {
            if let Some(v) = r.get(key).and_then(Value::as_str) {
                out.insert(format!("{rt} {what}"), v.to_string());
            }
        }
        if r.get("usable").and_then(Value::as_bool) == Some(false) {
            out.insert(format!("{rt} usable"), "no".into());
        }
    }
    out
}

/// The disk the I/O experiment wrote to, if it ran.
fn disk(run: &Run) -> Option<String> {
    let file = run.dir.join(if run.dir.join("io").is_dir() { "io/io.json" } else { "io.json" });
    let v: Value = serde_json::from_slice(&std::fs::read(file).ok()?).ok()?;
    let b = v.pointer("/results/0/reps/0/backing")?;
    let part = |p: &str| b.pointer(p).and_then(Value::as_str).unwrap_or("?").to_string();
    Some(format!("{} ({}, {})", part("/store/name"), part("/mount/fstype"), part("/mount/source")))
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
        .map(|r| {
            let mut f = host_facts(r);
            if let Some(d) = disk(r) {
                f.insert("disk".into(), d);
            }
            f
        })
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
        format!("Each figure is the median of a run's raw reps; B/A is the ratio of medians, the interval a 95% bootstrap interval of that ratio (reps resampled 4000 times, fixed seed). An interval that contains 1, or a ratio within {}% of 1 (the noise threshold), means no clear difference.", sig(c.noise * 100.0)),
        format!("Cada medida es la mediana de las repeticiones de una ejecución; B/A es el cociente de medianas, el intervalo un intervalo bootstrap del 95% de ese cociente (4000 remuestreos, semilla fija). Un intervalo que contiene el 1, o un cociente a menos de {}% de 1 (el umbral de ruido), significa sin diferencia clara.", sig(c.noise * 100.0)),
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
        for text in notes.chain(not_compared) {
            // Continuation lines indented, so each sentence reads as one item.
            for (k, line) in wrap(&text, width.saturating_sub(2).max(20)).iter().enumerate() {
                out.push_str(&format!("{}{line}\n", if k == 0 { "" } else { "  " }));
            }
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
        let v: Value = serde_json::json!({"report": {"host": {"kernel": "6.1"}, "results": [
            {"runtime": "native", "samples": [
                {"wall_ns": 2_000_000, "phases": [
                    {"phase": "cgroup", "dur_ns": 100_000}, {"phase": "cgroup", "dur_ns": 50_000},
                    {"phase": "workload", "dur_ns": 1_000_000}]},
                {"wall_ns": 3_000_000, "phases": [{"phase": "workload", "dur_ns": 2_000_000}]}
            ]}]}});
        let (mut figs, mut outs) = (Vec::new(), Vec::new());
        extract("startup", &v, &mut figs, &mut outs);
        let get = |n: &str| figs.iter().find(|f| f.name == n).map(|f| f.reps.clone());
        assert_eq!(get("native total"), Some(vec![2.0, 3.0]));
        assert_eq!(get("native workload"), Some(vec![1.0, 2.0]));
        assert_eq!(get("native cgroup").map(|r| r.len()), Some(1));
        assert!((get("native cgroup").unwrap()[0] - 0.15).abs() < 1e-12);
        assert!(outs.is_empty());
    }

    fn run(label: &str, figures: Vec<Figure>) -> Run {
        Run { dir: PathBuf::from(label), label: label.into(), host: None, experiments: vec!["startup"], unreadable: Vec::new(), figures, outcomes: Vec::new() }
    }

    fn figure(name: &str, reps: Vec<f64>) -> Figure {
        Figure { experiment: "startup", name: name.into(), unit: "ms", kind: Kind::Time, reps, phase: None }
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

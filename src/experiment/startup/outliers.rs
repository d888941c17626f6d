//! Why was that rep slow: for each outlier rep of a traced engine, the phases that moved most
//! from their median, and what the kernel saw in them.

use std::collections::BTreeMap;

use crate::experiment::startup::observer::RepTrace;
use crate::measure::runner::RuntimeResult;
use crate::ground::phase::Phase;
use crate::ground::stats;
use crate::experiment::startup::breakdown::{Breakdown, PhaseWaits, RepWaits};
use crate::trace::critical::Wait;

/// A phase has to move by at least this much to be named (below it is timer-level noise).
const MIN_DEVIATION_NS: f64 = 1e6;

fn per_phase(t: &RepTrace) -> BTreeMap<Phase, u64> {
    let mut m = BTreeMap::new();
    for s in &t.attribution.slices {
        *m.entry(s.phase).or_default() += s.end - s.start;
    }
    m
}

/// An outlier rep of a traced engine: the phases that moved most from their median.
#[derive(Clone, Debug)]
pub struct TracedOutlier {
    pub runtime: crate::ground::RuntimeKind,
    /// 1-based, as the reps are numbered for people.
    pub rep: usize,
    pub wall_ms: f64,
    pub median_ms: f64,
    /// At most two, the largest move first; empty when no phase moved by MIN_DEVIATION_NS.
    pub moved: Vec<PhaseMove>,
    /// Records the kernel dropped during this rep.
    pub lost: u64,
    /// Share of the rep whose critical-path task and state are known.
    pub explained: f64,
    /// The run's processes, to tell a CPU holder outside the run.
    pub run_pids: Vec<u32>,
}

#[derive(Clone, Debug)]
pub struct PhaseMove {
    pub phase: Phase,
    pub ns: f64,
    pub median_ns: f64,
    pub saw: KernelSaw,
    /// The largest waits on the critical path inside the phase: the first, and a second
    /// when it is at least a fifth of the phase's move (empty: the path only ran there, or
    /// its state is unknown).
    pub causes: Vec<Wait>,
}

/// What the kernel recorded in a phase's slices of one rep; None where the tracer had no
/// instrument for it.
#[derive(Clone, Debug)]
pub struct KernelSaw {
    /// Time with no process of the run on a CPU.
    pub off_cpu_ns: Option<u64>,
    /// Estimated from samples.
    pub page_faults: Option<u64>,
    pub block_io: u64,
    /// The process longest on CPU, with its time there.
    pub busiest: Option<(String, u64)>,
}

/// The outlier reps of `result`, or nothing when no rep was traced.
pub fn explain(result: &RuntimeResult, traces: &[&RepTrace]) -> Vec<TracedOutlier> {
    let find = |start: u64| traces.iter().find(|t| t.start_mono_ns == start).copied();
    let traced: Vec<&RepTrace> = result.samples.iter().filter_map(|s| find(s.start_mono_ns)).collect();
    if traced.is_empty() {
        return Vec::new();
    }
    let tables: Vec<BTreeMap<Phase, u64>> = traced.iter().map(|t| per_phase(t)).collect();
    let median = |p: Phase| stats::median(&tables.iter().map(|m| *m.get(&p).unwrap_or(&0) as f64).collect::<Vec<_>>());
    let summary = result.summary();
    let mut out = Vec::new();
    for &i in &summary.outliers {
        let sample = &result.samples[i];
        let Some(t) = find(sample.start_mono_ns) else { continue };
        let mine = per_phase(t);
        let mut devs: Vec<(Phase, f64, f64)> = Phase::ALL
            .iter()
            .map(|&p| (p, *mine.get(&p).unwrap_or(&0) as f64, median(p)))
            .filter(|(_, v, m)| (v - m).abs() >= MIN_DEVIATION_NS)
            .collect();
        devs.sort_by(|a, b| (b.1 - b.2).abs().total_cmp(&(a.1 - a.2).abs()));
        let moved = devs
            .iter()
            .take(2)
            .map(|&(phase, ns, median_ns)| PhaseMove { phase, ns, median_ns, saw: kernel_saw(t, phase), causes: causes(t, phase, (ns - median_ns).abs()) })
            .collect();
        out.push(TracedOutlier {
            runtime: result.runtime,
            rep: i + 1,
            wall_ms: sample.wall_ms(),
            median_ms: summary.median,
            moved,
            lost: t.lost,
            explained: t.critical.explained(),
            run_pids: t.attribution.procs.iter().map(|p| p.tgid).collect(),
        });
    }
    out
}

/// What the kernel recorded in the phase's slices of one rep.
fn kernel_saw(t: &RepTrace, phase: Phase) -> KernelSaw {
    let slices: Vec<_> = t.attribution.slices.iter().filter(|s| s.phase == phase).collect();
    let sum = |f: &dyn Fn(&crate::trace::attribution::SliceStats) -> Option<u64>| -> Option<u64> {
        slices.iter().map(|s| f(&s.stats)).sum()
    };
    let mut top: BTreeMap<String, u64> = BTreeMap::new();
    for s in &slices {
        if let Some((name, ns)) = &s.stats.top {
            *top.entry(name.clone()).or_default() += ns;
        }
    }
    KernelSaw {
        off_cpu_ns: sum(&|s| s.off_cpu_ns),
        page_faults: sum(&|s| s.page_faults),
        block_io: slices.iter().map(|s| s.stats.block_io).sum(),
        busiest: top.into_iter().max_by_key(|(_, ns)| *ns),
    }
}

/// The critical path's waits over all slices of `phase` in one rep, largest first.
fn phase_waits(t: &RepTrace, phase: Phase) -> impl Iterator<Item = Wait> {
    let spans = t.attribution.slices.iter().filter(|s| s.phase == phase).map(|s| (s.start, s.end));
    merge_waits(spans.flat_map(|(a, b)| t.critical.waits(a, b))).into_iter().filter(Wait::is_wait).map(|w| w.trimmed(3))
}

/// The largest waits of the critical path over all slices of `phase` in one rep.
fn causes(t: &RepTrace, phase: Phase, moved_ns: f64) -> Vec<Wait> {
    let mut waits = phase_waits(t, phase);
    let first = waits.next();
    let second = waits.next().filter(|w| w.ns as f64 >= moved_ns / 5.0);
    first.into_iter().chain(second).collect()
}

/// Sums waits of the same cause (as `CriticalPath::waits` groups them).
fn merge_waits(all: impl Iterator<Item = Wait>) -> Vec<Wait> {
    let mut out: Vec<Wait> = Vec::new();
    for w in all {
        match out.iter_mut().find(|o| o.same_cause(&w)) {
            Some(o) => o.absorb(w),
            None => out.push(w),
        }
    }
    out.sort_by(|x, y| y.ns.cmp(&x.ns));
    out
}

/// Fills a breakdown's reasons from the critical paths of `result`'s traced reps: per
/// (phase, detail) row the largest wait, summed over the reps and given as its mean per rep;
/// the smallest explained share of a rep; and each rep's largest waits per phase.
pub fn add_waits(b: &mut Breakdown, result: &RuntimeResult, traces: &[&RepTrace]) {
    let (rows, explained) = dominant_waits(result, traces);
    b.min_explained = explained;
    for row in &mut b.rows {
        row.dominant_wait = rows.iter().find(|(k, _)| (k.0, &k.1) == (row.phase, &row.detail)).map(|(_, w)| w.clone());
    }
    let find = |start: u64| traces.iter().find(|t| t.start_mono_ns == start).copied();
    b.rep_waits = result
        .samples
        .iter()
        .enumerate()
        .filter_map(|(i, s)| find(s.start_mono_ns).map(|t| (i, t)))
        .map(|(i, t)| {
            let mut phases: Vec<Phase> = Vec::new();
            for s in &t.attribution.slices {
                if !phases.contains(&s.phase) {
                    phases.push(s.phase);
                }
            }
            let phases = phases.into_iter().map(|phase| PhaseWaits { phase, waits: phase_waits(t, phase).take(3).collect() }).collect();
            RepWaits { rep: i + 1, explained: t.critical.explained(), lost: t.lost, phases }
        })
        .collect();
}

fn dominant_waits(result: &RuntimeResult, traces: &[&RepTrace]) -> (Vec<((Phase, Option<String>), Wait)>, Option<f64>) {
    let mine: Vec<&RepTrace> = result.samples.iter().filter_map(|s| traces.iter().find(|t| t.start_mono_ns == s.start_mono_ns).copied()).collect();
    let mut keys: Vec<(Phase, Option<String>)> = Vec::new();
    for t in &mine {
        for s in &t.attribution.slices {
            let k = (s.phase, s.detail.clone());
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    let rows = keys
        .into_iter()
        .filter_map(|k| {
            let waits = mine.iter().flat_map(|t| {
                let spans: Vec<(u64, u64)> = t.attribution.slices.iter().filter(|s| (s.phase, &s.detail) == (k.0, &k.1)).map(|s| (s.start, s.end)).collect();
                spans.into_iter().flat_map(|(a, b)| t.critical.waits(a, b)).collect::<Vec<_>>()
            });
            let mut top = merge_waits(waits).into_iter().find(Wait::is_wait)?.trimmed(3);
            top.ns /= mine.len() as u64;
            Some((k, top))
        })
        .collect();
    let explained = mine.iter().map(|t| t.critical.explained()).min_by(f64::total_cmp);
    (rows, explained)
}

//! Why was that rep slow: for each outlier rep, the phases that moved most from their
//! median, and what was seen in them — the kernel's trace for an engine, native's own phase
//! counters for native. output/terminal/startup.rs words them.

use std::collections::BTreeMap;

use crate::experiment::startup::breakdown::{Breakdown, PhaseWaits, RepWaits};
use crate::experiment::startup::observer::RepTrace;
use crate::ground::phase::{Counters, Phase, PhaseRecord};
use crate::ground::stats;
use crate::ground::RuntimeKind;
use crate::measure::runner::RuntimeResult;
use crate::measure::Sample;
use crate::trace::critical::Wait;

/// A traced phase has to move by at least this much to be named (below it is timer-level
/// noise). Native's own phases are timed in-process, so any move of theirs is named.
pub const MIN_TRACED_MOVE_NS: f64 = 1e6;

type Key = (Phase, Option<String>);

/// An outlier rep: the phases that moved most from their median, each with what its
/// source `S` saw there.
#[derive(Clone, Debug)]
pub struct Outlier<S> {
    pub runtime: RuntimeKind,
    /// 1-based, as the reps are numbered for people.
    pub rep: usize,
    pub wall_ms: f64,
    pub median_ms: f64,
    /// At most two, the largest move first; empty when no phase moved by the source's
    /// threshold (`MIN_TRACED_MOVE_NS` for traced engines).
    pub moved: Vec<PhaseMove<S>>,
    /// Records the kernel dropped during this rep (0 where nothing was traced).
    pub lost: u64,
    /// Share of the rep whose critical-path task and state are known (None: no path, as
    /// for native, which times itself).
    pub explained: Option<f64>,
    /// The run's processes, to tell a CPU holder outside the run.
    pub run_pids: Vec<u32>,
}

#[derive(Clone, Debug)]
pub struct PhaseMove<S> {
    pub phase: Phase,
    pub detail: Option<String>,
    pub ns: f64,
    /// The phase's median over the runtime's reps.
    pub median_ns: f64,
    pub saw: S,
}

pub type TracedOutlier = Outlier<KernelSaw>;
/// Native's: what its own counters saw in the phase (summed over its records).
pub type NativeOutlier = Outlier<Counters>;

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
    /// The largest waits on the critical path inside the phase: the first, and a second
    /// when it is at least a fifth of the phase's move (empty: the path only ran there, or
    /// its state is unknown).
    pub causes: Vec<Wait>,
}

/// One rep's phases, from wherever they were recorded.
trait Evidence {
    type Saw;
    /// Nanoseconds per phase.
    fn per_phase(&self) -> BTreeMap<Key, u64>;
    /// What was seen in one phase of this rep, which moved by `moved_ns` from its median.
    fn saw(&self, key: &Key, moved_ns: f64) -> Self::Saw;
    /// Records lost while this rep was recorded.
    fn lost(&self) -> u64 {
        0
    }
    /// Share of the rep its critical path explains, where one was walked.
    fn explained(&self) -> Option<f64> {
        None
    }
    /// The processes of the run, where they were told.
    fn run_pids(&self) -> Vec<u32> {
        Vec::new()
    }
}

/// The outlier reps of an engine whose reps were traced, or nothing when none was.
pub fn traced(result: &RuntimeResult, traces: &[&RepTrace]) -> Vec<TracedOutlier> {
    let find = |s: &Sample| traces.iter().find(|t| t.start_mono_ns == s.start_mono_ns).copied();
    explain(result, find, MIN_TRACED_MOVE_NS)
}

/// The outlier reps of a runtime that timed its own phases (native), or nothing when it
/// recorded none.
pub fn native(result: &RuntimeResult) -> Vec<NativeOutlier> {
    explain(result, |s: &Sample| (!s.phases.is_empty()).then_some(&s.phases[..]), 0.0)
}

fn explain<'a, E: Evidence>(result: &'a RuntimeResult, evidence: impl Fn(&'a Sample) -> Option<E>, min_move_ns: f64) -> Vec<Outlier<E::Saw>> {
    let tables: Vec<BTreeMap<Key, u64>> = result.samples.iter().filter_map(&evidence).map(|e| e.per_phase()).collect();
    if tables.is_empty() {
        return Vec::new();
    }
    let keys: Vec<Key> = {
        let mut k: Vec<Key> = tables.iter().flat_map(|t| t.keys().cloned()).collect();
        k.sort();
        k.dedup();
        k
    };
    let median = |k: &Key| stats::median(&tables.iter().map(|t| *t.get(k).unwrap_or(&0) as f64).collect::<Vec<_>>());
    let summary = result.summary();
    let mut out = Vec::new();
    for &i in &summary.outliers {
        let sample = &result.samples[i];
        let Some(e) = evidence(sample) else { continue };
        let mine = e.per_phase();
        let mut devs: Vec<(&Key, f64, f64)> = keys
            .iter()
            .map(|k| (k, *mine.get(k).unwrap_or(&0) as f64, median(k)))
            .filter(|(_, v, m)| (v - m).abs() >= min_move_ns)
            .collect();
        devs.sort_by(|a, b| (b.1 - b.2).abs().total_cmp(&(a.1 - a.2).abs()));
        let moved = devs
            .iter()
            .take(2)
            .map(|&(k, ns, median_ns)| PhaseMove { phase: k.0, detail: k.1.clone(), ns, median_ns, saw: e.saw(k, (ns - median_ns).abs()) })
            .collect();
        out.push(Outlier {
            runtime: result.runtime,
            rep: i + 1,
            wall_ms: sample.wall_ms(),
            median_ms: summary.median,
            moved,
            lost: e.lost(),
            explained: e.explained(),
            run_pids: e.run_pids(),
        });
    }
    out
}

impl Evidence for &RepTrace {
    type Saw = KernelSaw;

    fn per_phase(&self) -> BTreeMap<Key, u64> {
        let mut m = BTreeMap::new();
        for s in &self.attribution.slices {
            *m.entry((s.phase, None)).or_default() += s.end - s.start;
        }
        m
    }

    fn saw(&self, key: &Key, moved_ns: f64) -> KernelSaw {
        let slices: Vec<_> = self.attribution.slices.iter().filter(|s| s.phase == key.0).collect();
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
            causes: causes(self, key.0, moved_ns),
        }
    }

    fn lost(&self) -> u64 {
        self.lost
    }

    fn explained(&self) -> Option<f64> {
        Some(self.critical.explained())
    }

    fn run_pids(&self) -> Vec<u32> {
        self.attribution.procs.iter().map(|p| p.tgid).collect()
    }
}

impl Evidence for &[PhaseRecord] {
    type Saw = Counters;

    fn per_phase(&self) -> BTreeMap<Key, u64> {
        let mut m = BTreeMap::new();
        for p in self.iter() {
            *m.entry((p.phase, p.detail.clone())).or_default() += p.dur_ns;
        }
        m
    }

    /// The phase's counters, summed over its records; a counter any record lacks is None.
    fn saw(&self, key: &Key, _moved_ns: f64) -> Counters {
        let records: Vec<&Counters> = self.iter().filter(|p| (p.phase, p.detail.clone()) == *key).map(|p| &p.counters).collect();
        let sum = |f: fn(&Counters) -> Option<u64>| -> Option<u64> { records.iter().map(|c| f(c)).sum() };
        Counters {
            task_clock_ns: sum(|c| c.task_clock_ns),
            context_switches: sum(|c| c.context_switches),
            page_faults: sum(|c| c.page_faults),
            cpu_migrations: sum(|c| c.cpu_migrations),
            cycles: sum(|c| c.cycles),
            instructions: sum(|c| c.instructions),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_native_phase_that_moved_with_its_counters() {
        let sample = |exec_ms: u64| Sample {
            start_mono_ns: 0,
            pid: 1,
            wall_ns: (2 + exec_ms) * 1_000_000,
            user_ns: 0,
            sys_ns: 0,
            exit_code: 0,
            phases: vec![
                PhaseRecord {
                    phase: Phase::Cgroup,
                    detail: None,
                    start_ns: 0,
                    dur_ns: 2_000_000,
                    counters: Counters::default(),
                    overhead_ns: 0,
                },
                PhaseRecord {
                    phase: Phase::Exec,
                    detail: Some("execve".into()),
                    start_ns: 2_000_000,
                    dur_ns: exec_ms * 1_000_000,
                    counters: Counters {
                        task_clock_ns: Some(1_000_000),
                        page_faults: Some(7),
                        ..Counters::default()
                    },
                    overhead_ns: 0,
                },
            ],
        };
        let r = RuntimeResult {
            runtime: RuntimeKind::Native,
            warmup: vec![],
            samples: vec![sample(1), sample(1), sample(1), sample(1), sample(30)],
        };
        let reps = native(&r);
        assert_eq!(reps.len(), 1, "{reps:?}");
        assert_eq!((reps[0].runtime, reps[0].rep, reps[0].lost), (RuntimeKind::Native, 5, 0));
        let m = &reps[0].moved[0];
        assert_eq!((m.phase, m.detail.as_deref(), m.ns), (Phase::Exec, Some("execve"), 30e6));
        assert_eq!(m.median_ns, 1e6);
        assert_eq!((m.saw.page_faults, m.saw.task_clock_ns, m.saw.context_switches), (Some(7), Some(1_000_000), None));
    }

    #[test]
    fn finds_the_traced_phase_that_moved_and_what_the_kernel_saw() {
        use crate::trace::attribution::{Attribution, Slice, SliceStats, Window};
        let stats = SliceStats { on_cpu_ns: None, off_cpu_ns: Some(25_000_000), switches: None, page_faults: None, block_io: 3, top: None };
        let rep = |i: u64, runtime_ms: u64| {
            let start = i * 1_000_000_000;
            let slice = |phase, from: u64, ms: u64| Slice { phase, detail: None, start: start + from, end: start + from + ms * 1_000_000, stats: stats.clone() };
            let slices = vec![slice(Phase::Runtime, 0, runtime_ms), slice(Phase::Teardown, runtime_ms * 1_000_000, 5)];
            let wall_ns = (runtime_ms + 5) * 1_000_000;
            let window = Window { start, end: start + wall_ns, root: 1 };
            let attribution = Attribution { window, slices, procs: Vec::new(), container_cgroup: None, init_pid: None };
            let sample = Sample { start_mono_ns: start, pid: 1, wall_ns, user_ns: 0, sys_ns: 0, exit_code: 0, phases: Vec::new() };
            let critical = crate::trace::critical::CriticalPath { start, end: start + wall_ns, steps: Vec::new(), missing: Vec::new(), stacks: false };
            (sample, RepTrace { runtime: RuntimeKind::Docker, start_mono_ns: start, attribution, critical, lost: 2 })
        };
        let reps: Vec<_> = [(1, 10), (2, 10), (3, 10), (4, 10), (5, 40)].into_iter().map(|(i, ms)| rep(i, ms)).collect();
        let r = RuntimeResult { runtime: RuntimeKind::Docker, warmup: vec![], samples: reps.iter().map(|(s, _)| s.clone()).collect() };
        let traces: Vec<&RepTrace> = reps.iter().map(|(_, t)| t).collect();
        let out = traced(&r, &traces);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!((out[0].rep, out[0].wall_ms, out[0].median_ms, out[0].lost), (5, 45.0, 15.0, 2));
        assert_eq!(out[0].moved.len(), 1, "teardown did not move: {:?}", out[0].moved);
        let m = &out[0].moved[0];
        assert_eq!((m.phase, m.ns, m.median_ns), (Phase::Runtime, 40e6, 10e6));
        assert_eq!((m.saw.off_cpu_ns, m.saw.block_io, m.saw.page_faults), (Some(25_000_000), 3, None));
        assert!(traced(&r, &[]).is_empty(), "nothing traced, nothing explained");
    }
}

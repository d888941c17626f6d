//! Why was that rep slow: for each outlier rep, the phases that moved most from their
//! median, and what was seen in them — the kernel's trace for an engine, native's own phase
//! counters for native.

use std::collections::BTreeMap;

use crate::experiment::startup::observer::RepTrace;
use crate::ground::phase::{Counters, Phase, PhaseRecord};
use crate::ground::stats;
use crate::measure::runner::RuntimeResult;
use crate::measure::Sample;

type Key = (Phase, Option<String>);

/// One rep's phases, from wherever they were recorded.
trait Evidence {
    /// Nanoseconds per phase.
    fn per_phase(&self) -> BTreeMap<Key, u64>;
    /// What was seen in one phase of this rep.
    fn seen(&self, key: &Key) -> String;
    /// Anything that makes this rep's phases suspect.
    fn caveat(&self) -> String {
        String::new()
    }
}

/// How a source's lines read: traced engine phases are whole milliseconds, native's own are
/// a fraction of one.
struct Style {
    digits: usize,
    /// A phase has to move by at least this much to be named (below it is noise).
    min_deviation_ns: f64,
}

/// One line per outlier rep of an engine whose reps were traced, or nothing when none was.
pub fn traced(result: &RuntimeResult, traces: &[&RepTrace]) -> Vec<String> {
    let find = |s: &Sample| traces.iter().find(|t| t.start_mono_ns == s.start_mono_ns).copied();
    explain(result, find, Style { digits: 1, min_deviation_ns: 1e6 })
}

/// One line per outlier rep of a runtime that timed its own phases (native), with what its
/// counters saw there — time off-CPU (wall minus task-clock), context switches, page faults.
pub fn native(result: &RuntimeResult) -> Vec<String> {
    explain(result, |s: &Sample| (!s.phases.is_empty()).then_some(&s.phases[..]), Style { digits: 2, min_deviation_ns: 0.0 })
}

fn explain<'a, E: Evidence>(result: &'a RuntimeResult, evidence: impl Fn(&'a Sample) -> Option<E>, style: Style) -> Vec<String> {
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
    let d = style.digits;
    let summary = result.summary();
    let mut out = Vec::new();
    for &i in &summary.outliers {
        let sample = &result.samples[i];
        let Some(e) = evidence(sample) else { continue };
        let mine = e.per_phase();
        let mut devs: Vec<(&Key, f64, f64)> = keys
            .iter()
            .map(|k| (k, *mine.get(k).unwrap_or(&0) as f64, median(k)))
            .filter(|(_, v, m)| (v - m).abs() >= style.min_deviation_ns)
            .collect();
        devs.sort_by(|a, b| (b.1 - b.2).abs().total_cmp(&(a.1 - a.2).abs()));
        let parts: Vec<String> = devs
            .iter()
            .take(2)
            .map(|&(k, v, m)| format!("{} {:+.d$} ms ({:.d$} vs median {:.d$} ms; {})", name(k), (v - m) / 1e6, v / 1e6, m / 1e6, e.seen(k)))
            .collect();
        let why = if parts.is_empty() {
            format!("no single phase moved by {} ms or more: the extra time is spread thin", style.min_deviation_ns / 1e6)
        } else {
            parts.join("; ")
        };
        out.push(format!(
            "{} rep {} ({:.d$} ms vs median {:.d$} ms): {why}{}",
            result.runtime,
            i + 1,
            sample.wall_ms(),
            summary.median,
            e.caveat()
        ));
    }
    out
}

fn name((phase, detail): &Key) -> String {
    match detail {
        Some(d) => format!("{phase} {d}"),
        None => phase.to_string(),
    }
}

fn ms(ns: f64) -> String {
    format!("{:.1} ms", ns / 1e6)
}

impl Evidence for &RepTrace {
    fn per_phase(&self) -> BTreeMap<Key, u64> {
        let mut m = BTreeMap::new();
        for s in &self.attribution.slices {
            *m.entry((s.phase, None)).or_default() += s.end - s.start;
        }
        m
    }

    /// What the kernel recorded in the phase's slices of one rep.
    fn seen(&self, key: &Key) -> String {
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
        let mut parts = Vec::new();
        if let Some(off) = sum(&|s| s.off_cpu_ns) {
            parts.push(format!("{} with no run process on a CPU", ms(off as f64)));
        }
        if let Some(pf) = sum(&|s| s.page_faults) {
            parts.push(format!("≈{pf} page faults"));
        }
        parts.push(format!("{} block I/O requests", slices.iter().map(|s| s.stats.block_io).sum::<u64>()));
        if let Some((name, ns)) = top.iter().max_by_key(|(_, &ns)| ns) {
            parts.push(format!("busiest: {name} ({} on CPU)", ms(*ns as f64)));
        }
        parts.join(", ")
    }

    fn caveat(&self) -> String {
        if self.lost > 0 { format!(" [{} trace records lost in this rep]", self.lost) } else { String::new() }
    }
}

impl Evidence for &[PhaseRecord] {
    fn per_phase(&self) -> BTreeMap<Key, u64> {
        let mut m = BTreeMap::new();
        for p in self.iter() {
            *m.entry((p.phase, p.detail.clone())).or_default() += p.dur_ns;
        }
        m
    }

    fn seen(&self, key: &Key) -> String {
        let records: Vec<&PhaseRecord> = self.iter().filter(|p| (p.phase, p.detail.clone()) == *key).collect();
        let sum = |f: &dyn Fn(&Counters) -> Option<u64>| -> Option<u64> { records.iter().map(|p| f(&p.counters)).sum() };
        let dur: u64 = records.iter().map(|p| p.dur_ns).sum();
        let seen: Vec<String> = [
            sum(&|c| c.task_clock_ns).map(|t| format!("{:.2} ms off-CPU", dur.saturating_sub(t) as f64 / 1e6)),
            sum(&|c| c.context_switches).map(|n| format!("{n} context switches")),
            sum(&|c| c.page_faults).map(|n| format!("{n} page faults")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if seen.is_empty() { "counters n/a".to_string() } else { seen.join(", ") }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_phase_that_moved_and_what_the_counters_saw() {
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
            runtime: crate::ground::RuntimeKind::Native,
            warmup: vec![],
            samples: vec![sample(1), sample(1), sample(1), sample(1), sample(30)],
        };
        let lines = native(&r);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("native rep 5"), "{}", lines[0]);
        assert!(lines[0].contains("exec execve +29.00 ms"), "{}", lines[0]);
        assert!(lines[0].contains("29.00 ms off-CPU") && lines[0].contains("7 page faults"), "{}", lines[0]);
    }

    #[test]
    fn names_the_traced_phase_that_moved_and_what_the_kernel_saw() {
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
            (sample, RepTrace { runtime: crate::ground::RuntimeKind::Docker, start_mono_ns: start, attribution, lost: 2 })
        };
        let reps: Vec<_> = [(1, 10), (2, 10), (3, 10), (4, 10), (5, 40)].into_iter().map(|(i, ms)| rep(i, ms)).collect();
        let r = RuntimeResult { runtime: crate::ground::RuntimeKind::Docker, warmup: vec![], samples: reps.iter().map(|(s, _)| s.clone()).collect() };
        let traces: Vec<&RepTrace> = reps.iter().map(|(_, t)| t).collect();
        let lines = traced(&r, &traces);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("docker rep 5 (45.0 ms vs median 15.0 ms): runtime +30.0 ms (40.0 vs median 10.0 ms; "), "{}", lines[0]);
        assert!(lines[0].contains("25.0 ms with no run process on a CPU") && lines[0].contains("3 block I/O requests"), "{}", lines[0]);
        assert!(!lines[0].contains("teardown") && lines[0].ends_with("[2 trace records lost in this rep]"), "{}", lines[0]);
        assert!(traced(&r, &[]).is_empty(), "nothing traced, nothing explained");
    }
}

//! Cuts a runtime's reps into phases: median and p95 per phase across reps, its share of the
//! median total, and how much of each rep the named phases account for.

use serde::{Deserialize, Serialize};

use crate::measure::runner::RuntimeResult;
use crate::ground::phase::Phase;
use crate::ground::stats;

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PhaseRow {
    pub phase: Phase,
    pub detail: Option<String>,
    pub median_ms: f64,
    pub p95_ms: f64,
    /// Median of this phase over the median total wall time.
    pub share: f64,
    /// Median task-clock of the phase in ms, None where counters were unavailable.
    pub task_clock_ms: Option<f64>,
    /// Median time of probe's own instrumentation inside the phase, in µs. None (n/a, not 0)
    /// for engines: their phases come from the tracer and probe times nothing inside them.
    pub overhead_us: Option<f64>,
    /// The largest wait on the critical path in this phase, its time the mean per traced rep
    /// (None: untraced, or the path only ran there).
    #[serde(default)]
    pub dominant_wait: Option<crate::trace::critical::Wait>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Breakdown {
    pub runtime: crate::ground::RuntimeKind,
    pub total_median_ms: f64,
    pub rows: Vec<PhaseRow>,
    /// Smallest fraction of a rep's wall time covered by named phases, over all reps.
    pub min_coverage: f64,
    /// Smallest share of a traced rep whose critical-path task and state are known.
    #[serde(default)]
    pub min_explained: Option<f64>,
    /// Per traced rep, the largest waits of its critical path in each phase: the reasons
    /// behind every rep, outlier or not.
    #[serde(default)]
    pub rep_waits: Vec<RepWaits>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct RepWaits {
    /// 1-based, as reps are numbered for people.
    pub rep: usize,
    /// Share of the rep whose critical-path task and state are known.
    pub explained: f64,
    /// Trace records the kernel dropped during the rep: with any, its path is incomplete.
    pub lost: u64,
    pub phases: Vec<PhaseWaits>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PhaseWaits {
    pub phase: Phase,
    /// At most three, largest first; running and unknown time are not waits.
    pub waits: Vec<crate::trace::critical::Wait>,
}

/// None when the runtime recorded no phases (not traced).
pub fn breakdown(result: &RuntimeResult) -> Option<Breakdown> {
    if result.samples.iter().all(|s| s.phases.is_empty()) {
        return None;
    }
    // Keys in order of first appearance, so rows follow the lifecycle.
    let mut keys: Vec<(Phase, Option<String>)> = Vec::new();
    for s in &result.samples {
        for p in &s.phases {
            let k = (p.phase, p.detail.clone());
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    let total = stats::median(&result.wall_ms());
    let mut rows = Vec::new();
    for (phase, detail) in keys {
        let per_rep = |f: &dyn Fn(&crate::ground::phase::PhaseRecord) -> Option<f64>| -> Vec<Option<f64>> {
            result
                .samples
                .iter()
                .map(|s| {
                    let matching: Vec<_> = s.phases.iter().filter(|p| p.phase == phase && p.detail == detail).collect();
                    if matching.is_empty() {
                        return Some(0.0);
                    }
                    matching.iter().map(|p| f(p)).sum::<Option<f64>>()
                })
                .collect()
        };
        let dur: Vec<f64> = per_rep(&|p| Some(p.dur_ns as f64 / 1e6)).into_iter().flatten().collect();
        let clock: Option<Vec<f64>> = per_rep(&|p| p.counters.task_clock_ns.map(|n| n as f64 / 1e6)).into_iter().collect();
        let over: Vec<f64> = per_rep(&|p| Some(p.overhead_ns as f64 / 1e3)).into_iter().flatten().collect();
        let median_ms = stats::median(&dur);
        rows.push(PhaseRow {
            phase,
            detail,
            median_ms,
            p95_ms: stats::percentile(&dur, 95.0),
            share: if total > 0.0 { median_ms / total } else { 0.0 },
            task_clock_ms: clock.map(|c| stats::median(&c)),
            overhead_us: (result.runtime == crate::ground::RuntimeKind::Native).then(|| stats::median(&over)),
            dominant_wait: None,
        });
    }
    let coverage: Vec<f64> = result
        .samples
        .iter()
        .map(|s| {
            let named: u64 = s.phases.iter().filter(|p| p.phase != Phase::Unattributed).map(|p| p.dur_ns).sum();
            if s.wall_ns == 0 {
                0.0
            } else {
                named as f64 / s.wall_ns as f64
            }
        })
        .collect();
    Some(Breakdown {
        runtime: result.runtime,
        total_median_ms: total,
        rows,
        min_coverage: coverage.iter().cloned().fold(f64::INFINITY, f64::min),
        min_explained: None,
        rep_waits: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::Sample;
    use crate::ground::phase::{Counters, PhaseRecord};

    fn rec(phase: Phase, dur_ms: u64) -> PhaseRecord {
        PhaseRecord {
            phase,
            detail: None,
            start_ns: 0,
            dur_ns: dur_ms * 1_000_000,
            counters: Counters::default(),
            overhead_ns: 1000,
        }
    }

    #[test]
    fn medians_shares_and_coverage() {
        let sample = |cg, ex| Sample {
            start_mono_ns: 0,
            pid: 1,
            wall_ns: 10_000_000,
            user_ns: 0,
            sys_ns: 0,
            exit_code: 0,
            phases: vec![rec(Phase::Cgroup, cg), rec(Phase::Exec, ex)],
        };
        let r = RuntimeResult {
            runtime: crate::ground::RuntimeKind::Native,
            warmup: vec![],
            samples: vec![sample(2, 7), sample(4, 5), sample(3, 6)],
        };
        let b = breakdown(&r).unwrap();
        assert_eq!(b.rows.len(), 2);
        assert_eq!(b.rows[0].phase, Phase::Cgroup);
        assert!((b.rows[0].median_ms - 3.0).abs() < 1e-9);
        assert!((b.rows[0].share - 0.3).abs() < 1e-9);
        assert!(b.rows[0].task_clock_ms.is_none(), "no counters → n/a, not 0");
        assert!((b.min_coverage - 0.9).abs() < 1e-9);
        assert_eq!(b.rows[0].overhead_us, Some(1.0));
        let traced = RuntimeResult { runtime: crate::ground::RuntimeKind::Docker, ..r };
        assert_eq!(breakdown(&traced).unwrap().rows[0].overhead_us, None, "engine: n/a, not 0");
    }
}

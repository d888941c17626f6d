//! Why was that rep slow: for each outlier rep, the phases that moved most from their
//! median, and what the kernel saw in them.

use std::collections::BTreeMap;

use crate::experiment::startup::observer::RepTrace;
use crate::measure::runner::RuntimeResult;
use crate::ground::phase::Phase;
use crate::ground::stats;

/// A phase has to move by at least this much to be named (below it is timer-level noise).
const MIN_DEVIATION_NS: f64 = 1e6;

fn per_phase(t: &RepTrace) -> BTreeMap<Phase, u64> {
    let mut m = BTreeMap::new();
    for s in &t.attribution.slices {
        *m.entry(s.phase).or_default() += s.end - s.start;
    }
    m
}

fn ms(ns: f64) -> String {
    format!("{:.1} ms", ns / 1e6)
}

/// One line per outlier rep of `result`, or nothing when no rep was traced.
pub fn explain(result: &RuntimeResult, traces: &[&RepTrace]) -> Vec<String> {
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
        let parts: Vec<String> = devs
            .iter()
            .take(2)
            .map(|&(p, v, m)| format!("{p} {:+.1} ms ({} vs median {}; {})", (v - m) / 1e6, ms(v), ms(m), kernel_saw(t, p)))
            .collect();
        let why = if parts.is_empty() {
            "no single phase moved by 1 ms or more: the extra time is spread thin".to_string()
        } else {
            parts.join("; ")
        };
        let lost = if t.lost > 0 { format!(" [{} trace records lost in this rep]", t.lost) } else { String::new() };
        out.push(format!(
            "{} rep {} ({:.1} ms vs median {:.1} ms): {why}{lost}",
            result.runtime,
            i + 1,
            sample.wall_ms(),
            summary.median
        ));
    }
    out
}

/// What the kernel recorded in the phase's slices of one rep.
fn kernel_saw(t: &RepTrace, phase: Phase) -> String {
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

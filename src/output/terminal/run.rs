//! `probe run --phases` on stderr: the container's start-up phases.

use crate::ground::phase::PhaseRecord;

fn na(v: Option<u64>) -> String {
    v.map_or_else(|| "n/a".into(), |v| v.to_string())
}

/// One line per phase record, in time order, with its share of the total, and how much of
/// the time measured around the container the phases account for.
pub fn phase_table(phases: &[PhaseRecord], wall_ns: u64) -> String {
    let total: u64 = phases.iter().map(|p| p.dur_ns).sum::<u64>().max(1);
    let mut out = format!(
        "{:<11} {:<18} {:>10} {:>6} {:>11} {:>5} {:>7} {:>10}\n",
        "phase", "detail", "µs", "share", "task-clk µs", "csw", "faults", "overhead µs"
    );
    for p in phases {
        out += &format!(
            "{:<11} {:<18} {:>10.1} {:>5.1}% {:>11} {:>5} {:>7} {:>10.1}\n",
            p.phase.name(),
            p.detail.as_deref().unwrap_or(""),
            p.dur_ns as f64 / 1e3,
            p.dur_ns as f64 * 100.0 / total as f64,
            p.counters
                .task_clock_ns
                .map_or_else(|| "n/a".into(), |v| format!("{:.1}", v as f64 / 1e3)),
            na(p.counters.context_switches),
            na(p.counters.page_faults),
            p.overhead_ns as f64 / 1e3,
        );
    }
    out += &format!(
        "{:<11} {:<18} {:>10.1} {:>5.1}%\n",
        "total",
        "",
        total as f64 / 1e3,
        100.0
    );
    out += &format!(
        "phases cover {:.1}% of {:.1} µs measured around the container\n",
        total as f64 * 100.0 / wall_ns.max(1) as f64,
        wall_ns as f64 / 1e3
    );
    out
}

//! The stacked comparison printed after the phase tables: one text bar per runtime, each
//! phase's share of the median total drawn as a run of its letter.

use std::collections::BTreeMap;

use crate::experiment::startup::breakdown::Breakdown;
use crate::ground::phase::Phase;

const WIDTH: usize = 60;

pub fn letter(p: Phase) -> char {
    match p {
        Phase::Client => 'C',
        Phase::Engine => 'E',
        Phase::Rootfs => 'F',
        Phase::Runtime => 'R',
        Phase::Cgroup => 'G',
        Phase::Namespaces => 'N',
        Phase::Mounts => 'M',
        Phase::Security => 'S',
        Phase::Exec => 'X',
        Phase::Workload => 'W',
        Phase::Teardown => 'T',
        Phase::Unattributed => '?',
    }
}

/// Cells per phase for `shares` (phase → share of the total), largest remainders rounding
/// so the bar is exactly WIDTH wide when the shares sum to 1, and a phase with any time
/// gets at least one cell (a 0.2 ms cgroup phase should still be visible).
fn cells(shares: &BTreeMap<Phase, f64>) -> Vec<(Phase, usize)> {
    let total: f64 = shares.values().sum();
    let width = ((total.min(1.0)) * WIDTH as f64).round() as usize;
    let mut out: Vec<(Phase, usize, f64)> = shares
        .iter()
        .filter(|(_, &s)| s > 0.0)
        .map(|(&p, &s)| {
            let exact = s / total.max(f64::MIN_POSITIVE) * width as f64;
            (p, (exact.floor() as usize).max(1), exact - exact.floor())
        })
        .collect();
    let mut used: usize = out.iter().map(|c| c.1).sum();
    while used < width {
        let Some(best) = out.iter_mut().max_by(|a, b| a.2.total_cmp(&b.2)) else { break };
        best.1 += 1;
        best.2 = -1.0;
        used += 1;
    }
    out.into_iter().map(|(p, n, _)| (p, n)).collect()
}

pub fn render(breakdowns: &[Breakdown]) -> String {
    if breakdowns.is_empty() {
        return String::new();
    }
    let mut out = String::from("Where the time goes (share of each runtime's median total):\n");
    let mut seen: Vec<Phase> = Vec::new();
    for b in breakdowns {
        let mut shares: BTreeMap<Phase, f64> = BTreeMap::new();
        for r in &b.rows {
            *shares.entry(r.phase).or_default() += r.share;
        }
        let bar: String = cells(&shares)
            .into_iter()
            .flat_map(|(p, n)| std::iter::repeat(letter(p)).take(n))
            .collect();
        seen.extend(shares.keys().filter(|p| !seen.contains(p)).copied().collect::<Vec<_>>());
        out.push_str(&format!("  {:<16} |{bar:<WIDTH$}| {:.1} ms\n", b.runtime.to_string(), b.total_median_ms));
    }
    seen.sort();
    let legend: Vec<String> = seen.iter().map(|&p| format!("{} {p}", letter(p))).collect();
    out.push_str(&format!("  {}\n", legend.join(" · ")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_is_full_width_and_keeps_tiny_phases() {
        let shares = BTreeMap::from([(Phase::Client, 0.5), (Phase::Cgroup, 0.001), (Phase::Teardown, 0.499)]);
        let c = cells(&shares);
        assert_eq!(c.iter().map(|x| x.1).sum::<usize>(), WIDTH);
        assert_eq!(c.iter().find(|x| x.0 == Phase::Cgroup).unwrap().1, 1);
    }

    #[test]
    fn partial_coverage_gives_a_shorter_bar() {
        let c = cells(&BTreeMap::from([(Phase::Engine, 0.5)]));
        assert_eq!(c, vec![(Phase::Engine, WIDTH / 2)]);
    }
}

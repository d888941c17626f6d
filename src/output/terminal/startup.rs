//! `probe startup` on the terminal: the latency table, then with --breakdown each runtime's
//! phases, the namespaces' cost, the stacked comparison and every outlier rep explained;
//! and the --timeline drawing.

use std::path::Path;

use crate::experiment::startup::breakdown::Breakdown;
use crate::experiment::startup::command::Outcome;
use crate::experiment::startup::nscost::{self, NsCost};
use crate::experiment::startup::observer::StartupTracer;
use crate::experiment::startup::outliers::{self, KernelSaw, NativeOutlier, Outlier, PhaseMove, TracedOutlier};
use crate::ground::phase::Counters;
use crate::experiment::startup::Report;
use crate::ground::stats;
use crate::ground::RuntimeKind;
use crate::measure::runner::RuntimeResult;
use crate::output::results::RunDir;
use crate::output::table::{ms, prose, terminal_width, Table};

/// Draws each runtime's median rep as one timeline into `path` (--timeline).
pub fn timeline(path: &Path, o: &Outcome, dir: &RunDir) -> anyhow::Result<()> {
    let runs = StartupTracer::timeline_runs(o.tracer.as_ref(), &o.saved.report.results);
    let runs: Vec<(String, &_)> = runs.iter().map(|(t, a)| (t.clone(), a)).collect();
    anyhow::ensure!(!runs.is_empty(), "--timeline: no rep has phases to draw (the results are saved in {})", dir.path().display());
    crate::output::timeline::write(path, &runs)?;
    eprintln!("timeline: {}", path.display());
    Ok(())
}

/// Everything `--format table` prints.
pub fn render(o: &Outcome) -> String {
    let mut out = latency(&o.saved.report);
    for b in &o.saved.breakdown {
        out.push_str(&format!("\n{}", render_breakdown(b)));
        if let (RuntimeKind::Native, Some(rows)) = (b.runtime, &o.saved.namespaces) {
            out.push_str(&format!("\n{}", render_namespaces(rows)));
        }
    }
    for w in &o.without_phases {
        out.push_str(&format!("\nNo phases for {}: {}\n", w.runtime, w.reason));
    }
    if let Some(t) = &o.tracer {
        out.push_str(&traced(t, &o.saved.report.results, &o.saved.breakdown));
    }
    if !o.native_outliers.is_empty() {
        out.push_str("\nNative outliers explained (from its own phase counters):\n");
        for r in &o.native_outliers {
            out.push_str(&prose(&native_outlier(r), "  ", "    ", terminal_width()));
        }
    }
    out
}

fn latency(report: &Report) -> String {
    let plan = &report.plan;
    let mut out = format!(
        "Experiment 1: startup latency of `{}`, {} reps after {} warmup, milliseconds\n\n",
        plan.argv.join(" "),
        plan.reps,
        plan.warmup
    );
    let bare = report
        .results
        .iter()
        .find(|r| r.runtime == RuntimeKind::Bare)
        .map(|r| r.summary());
    let mut t = Table::new(["runtime", "mean", "median", "range", "σ", "× bare", "outliers", "chapter × bare"]);
    for r in &report.results {
        let s = r.summary();
        let times = match &bare {
            Some(b) if r.runtime != RuntimeKind::Bare => {
                stats::ratio(&s, b).show(|x| format!("{x:.1}"))
            }
            Some(_) => "1".into(),
            None => "-".into(),
        };
        let chapter = if r.runtime == RuntimeKind::Bare {
            "1".to_string()
        } else {
            report
                .reference
                .times_bare
                .get(r.runtime.name())
                .map(|v| format!("{v:.0}"))
                .unwrap_or_else(|| "-".into())
        };
        t.row([
            r.runtime.to_string(),
            ms(s.mean),
            ms(s.median),
            format!("{}–{}", ms(s.min), ms(s.max)),
            ms(s.sd),
            times,
            s.outliers.len().to_string(),
            chapter,
        ]);
    }
    out.push_str(&t.render());
    // A "-" is a figure that could not be had: say which and why, never leave it bare.
    if bare.is_none() && report.results.iter().any(|r| r.runtime != RuntimeKind::Bare) {
        out.push_str("× bare: - because bare was not measured in this run (add bare to --runtimes)\n");
    }
    let unknown: Vec<&str> = report
        .results
        .iter()
        .filter(|r| r.runtime != RuntimeKind::Bare && !report.reference.times_bare.contains_key(r.runtime.name()))
        .map(|r| r.runtime.name())
        .collect();
    if !unknown.is_empty() {
        out.push_str(&format!("chapter × bare: - for {}: the chapter gives no figure for it\n", unknown.join(", ")));
    }
    out
}

fn render_breakdown(b: &Breakdown) -> String {
    let head = format!(
        "Phases of {} (median total {} ms; named phases cover ≥ {:.1}% of every rep)",
        b.runtime,
        ms(b.total_median_ms),
        b.min_coverage * 100.0
    );
    let mut out = prose(&head, "", "  ", terminal_width());
    let mut t = Table::new(["phase", "detail", "median ms", "p95 ms", "share", "task-clock ms", "probe overhead µs"]);
    for r in &b.rows {
        t.row([
            r.phase.to_string(),
            r.detail.clone().unwrap_or_default(),
            format!("{:.3}", r.median_ms),
            format!("{:.3}", r.p95_ms),
            format!("{:.1}%", r.share * 100.0),
            r.task_clock_ms.map(|v| format!("{v:.3}")).unwrap_or_else(|| "n/a".into()),
            r.overhead_us.map(|v| format!("{v:.1}")).unwrap_or_else(|| "n/a".into()),
        ]);
    }
    out.push_str(&t.render());
    out
}

fn render_namespaces(rows: &[NsCost]) -> String {
    let reps = rows.first().map_or(0, |r| r.reps);
    let mut out = format!("Namespaces, each type alone ({reps} reps, µs)\n");
    let mut t = Table::new(["type", "create median", "create p95", "release median", "release p95"]);
    let us = |ns: u64| format!("{:.0}", ns as f64 / 1e3);
    for r in rows {
        t.row([r.ns.to_string(), us(r.create_median_ns), us(r.create_p95_ns), us(r.release_median_ns), us(r.release_p95_ns)]);
    }
    out.push_str(&t.render());
    out.push_str(&prose(nscost::RELEASE_NOTE, "", "  ", terminal_width()));
    out
}

/// What a traced `--breakdown` prints after the phase tables: the stacked comparison, one
/// line per outlier rep, and any loss of trace records.
fn traced(tracer: &StartupTracer, results: &[RuntimeResult], breakdowns: &[Breakdown]) -> String {
    let mut out = String::new();
    if breakdowns.len() > 1 {
        out.push('\n');
        out.push_str(&crate::output::stacked::render(breakdowns));
    }
    let traces: Vec<_> = tracer.reps.iter().collect();
    let lines: Vec<String> = results.iter().flat_map(|r| outliers::traced(r, &traces)).map(|o| traced_outlier(&o)).collect();
    if !lines.is_empty() {
        out.push_str("\nOutliers explained:\n");
        for l in lines {
            out.push_str(&prose(&l, "  ", "    ", terminal_width()));
        }
    }
    if tracer.lost() > 0 {
        let warning = format!("warning: the kernel dropped {} trace records (ring buffer full); phases of the affected reps are incomplete", tracer.lost());
        out.push('\n');
        out.push_str(&prose(&warning, "", "  ", terminal_width()));
    }
    out
}

/// "docker rep 3 (412.0 ms vs median 380.1 ms): runtime +30.2 ms (60.0 ms vs median 30.0 ms;
/// what the kernel saw)": traced phases to 0.1 ms.
fn traced_outlier(o: &TracedOutlier) -> String {
    outlier_line(o, 1, " ms", |m| kernel_saw(&m.saw))
}

/// "native rep 5 (31.00 ms vs median 3.00 ms): exec execve +29.00 ms (30.00 vs median 1.00
/// ms; 29.00 ms off-CPU, 7 page faults); ...": native's own phases to 0.01 ms.
fn native_outlier(o: &NativeOutlier) -> String {
    outlier_line(o, 2, "", counted)
}

/// One outlier rep on one line, `d` decimals; `unit` follows a phase's own time.
fn outlier_line<S>(o: &Outlier<S>, d: usize, unit: &str, saw: impl Fn(&PhaseMove<S>) -> String) -> String {
    let parts: Vec<String> = o
        .moved
        .iter()
        .map(|m| {
            let name = match &m.detail {
                Some(detail) => format!("{} {detail}", m.phase),
                None => m.phase.to_string(),
            };
            let (v, med) = (m.ns / 1e6, m.median_ns / 1e6);
            format!("{name} {:+.d$} ms ({v:.d$}{unit} vs median {med:.d$} ms; {})", v - med, saw(m))
        })
        .collect();
    let why = if parts.is_empty() {
        format!("no single phase moved by {} ms or more: the extra time is spread thin", outliers::MIN_TRACED_MOVE_NS / 1e6)
    } else {
        parts.join("; ")
    };
    let lost = if o.lost > 0 { format!(" [{} trace records lost in this rep]", o.lost) } else { String::new() };
    format!("{} rep {} ({:.d$} ms vs median {:.d$} ms): {why}{lost}", o.runtime, o.rep, o.wall_ms, o.median_ms)
}

fn kernel_saw(k: &KernelSaw) -> String {
    let mut parts = Vec::new();
    if let Some(off) = k.off_cpu_ns {
        parts.push(format!("{} with no run process on a CPU", ms_of_ns(off as f64)));
    }
    if let Some(pf) = k.page_faults {
        parts.push(format!("≈{pf} page faults"));
    }
    parts.push(format!("{} block I/O requests", k.block_io));
    if let Some((name, ns)) = &k.busiest {
        parts.push(format!("busiest: {name} ({} on CPU)", ms_of_ns(*ns as f64)));
    }
    parts.join(", ")
}

fn ms_of_ns(ns: f64) -> String {
    format!("{:.1} ms", ns / 1e6)
}

/// What native's counters saw in a phase: its time off-CPU (wall minus task-clock), context
/// switches, page faults; a counter not read is left out, not 0.
fn counted(m: &PhaseMove<Counters>) -> String {
    let c = &m.saw;
    let seen: Vec<String> = [
        c.task_clock_ns.map(|t| format!("{:.2} ms off-CPU", (m.ns as u64).saturating_sub(t) as f64 / 1e6)),
        c.context_switches.map(|n| format!("{n} context switches")),
        c.page_faults.map(|n| format!("{n} page faults")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if seen.is_empty() { "counters n/a".to_string() } else { seen.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ground::phase::Phase;

    #[test]
    fn names_the_phase_that_moved_and_what_the_counters_saw() {
        let r = NativeOutlier {
            runtime: RuntimeKind::Native,
            rep: 5,
            wall_ms: 32.0,
            median_ms: 3.0,
            moved: vec![PhaseMove {
                phase: Phase::Exec,
                detail: Some("execve".into()),
                ns: 30e6,
                median_ns: 1e6,
                saw: Counters { task_clock_ns: Some(1_000_000), page_faults: Some(7), ..Counters::default() },
            }],
            lost: 0,
        };
        let line = native_outlier(&r);
        assert!(line.starts_with("native rep 5 (32.00 ms vs median 3.00 ms)"), "{line}");
        assert!(line.contains("exec execve +29.00 ms (30.00 vs median 1.00 ms; "), "{line}");
        assert!(line.contains("29.00 ms off-CPU") && line.contains("7 page faults"), "{line}");
        assert!(!line.contains("context switches"), "a counter not read is left out, not 0: {line}");
    }

    #[test]
    fn traced_outlier_says_what_the_kernel_saw() {
        let saw = KernelSaw { off_cpu_ns: Some(20_000_000), page_faults: None, block_io: 3, busiest: Some(("runc".into(), 5_000_000)) };
        let o = TracedOutlier {
            runtime: RuntimeKind::Docker,
            rep: 2,
            wall_ms: 412.0,
            median_ms: 380.0,
            moved: vec![PhaseMove { phase: Phase::Runtime, detail: None, ns: 60e6, median_ns: 30e6, saw }],
            lost: 7,
        };
        let line = traced_outlier(&o);
        assert_eq!(
            line,
            "docker rep 2 (412.0 ms vs median 380.0 ms): runtime +30.0 ms (60.0 ms vs median 30.0 ms; \
             20.0 ms with no run process on a CPU, 3 block I/O requests, busiest: runc (5.0 ms on CPU)) \
             [7 trace records lost in this rep]"
        );
        let spread = TracedOutlier { moved: Vec::new(), lost: 0, ..o };
        assert!(traced_outlier(&spread).ends_with("no single phase moved by 1 ms or more: the extra time is spread thin"));
    }
}

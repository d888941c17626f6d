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
use crate::output::report::lang::Lang;
use crate::output::results::RunDir;
use crate::output::table::{ms, prose, terminal_width, Table};
use crate::trace::critical::{self, TaskRef, Wait, WaitKind};

/// Draws each runtime's median rep as one timeline into `path` (--timeline), with its
/// critical path where the rep was traced, its words in `lang`.
pub fn timeline(path: &Path, o: &Outcome, dir: &RunDir, lang: Lang) -> anyhow::Result<()> {
    let runs = StartupTracer::timeline_runs(o.tracer.as_ref(), &o.saved.report.results);
    let title = |rt: &RuntimeKind, ms: f64| lang.pick(format!("{rt} — median rep, {ms:.1} ms"), format!("{rt} — repetición mediana, {ms:.1} ms"));
    let runs: Vec<crate::output::timeline::Drawn> = runs.iter().map(|(rt, ms, a, p)| (title(rt, *ms), a, p.as_ref())).collect();
    anyhow::ensure!(!runs.is_empty(), "--timeline: no rep has phases to draw (the results are saved in {})", dir.path().display());
    crate::output::timeline::write(path, &runs, lang)?;
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
    let explained = match b.min_explained {
        Some(e) => format!("; the critical path explains ≥ {:.1}%", e * 100.0),
        None => String::new(),
    };
    let head = format!(
        "Phases of {} (median total {} ms; named phases cover ≥ {:.1}% of every rep{explained})",
        b.runtime,
        ms(b.total_median_ms),
        b.min_coverage * 100.0
    );
    let mut out = prose(&head, "", "  ", terminal_width());
    let mut t = Table::new(["phase", "detail", "median ms", "p95 ms", "share", "task-clock ms", "probe overhead µs", "dominant wait (mean/rep)"]);
    for r in &b.rows {
        t.row([
            r.phase.to_string(),
            r.detail.clone().unwrap_or_default(),
            format!("{:.3}", r.median_ms),
            format!("{:.3}", r.p95_ms),
            format!("{:.1}%", r.share * 100.0),
            r.task_clock_ms.map(|v| format!("{v:.3}")).unwrap_or_else(|| "n/a".into()),
            r.overhead_us.map(|v| format!("{v:.1}")).unwrap_or_else(|| "n/a".into()),
            r.dominant_wait.as_ref().map(short_wait).unwrap_or_else(|| "-".into()),
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
    outlier_line(o, 1, " ms", |m| {
        let causes: String = m.saw.causes.iter().map(|w| format!("{}; ", wait_words(w, &o.run_pids))).collect();
        format!("{causes}{}", kernel_saw(&m.saw))
    })
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
    let explained = o.explained.map(|e| format!(", {:.0}% explained", e * 100.0)).unwrap_or_default();
    format!("{} rep {} ({:.d$} ms vs median {:.d$} ms{explained}): {why}{lost}", o.runtime, o.rep, o.wall_ms, o.median_ms)
}

fn who(t: &TaskRef) -> String {
    format!("{} (pid {})", t.comm, t.pid)
}

/// A critical-path wait in a sentence: "dockerd (pid 10) waited 400.0 ms on containerd (pid
/// 20), which was stopped by SIGSTOP from pid 50 (bash)", and where it waited in the kernel
/// when stacks were recorded.
fn wait_words(w: &Wait, run_pids: &[u32]) -> String {
    format!("{}{}", wait_state_words(w, run_pids), site_words(w))
}

/// A kernel wait site, or that the switch-out's call chain named none.
fn site_name(site: &Option<String>) -> &str {
    site.as_deref().unwrap_or("not recorded")
}

/// ", kernel wait site: signal stop" (each with its time when several); nothing without
/// kernel stacks, so no site is ever claimed then.
fn site_words(w: &Wait) -> String {
    match &w.sites[..] {
        [] => String::new(),
        [(site, _)] => format!(", kernel wait site: {}", site_name(site)),
        many => {
            let each: Vec<String> = many.iter().map(|(site, ns)| format!("{} ({})", site_name(site), ms_of_ns(*ns as f64))).collect();
            format!(", kernel wait sites: {}", each.join(", "))
        }
    }
}

fn wait_state_words(w: &Wait, run_pids: &[u32]) -> String {
    let d = ms_of_ns(w.ns as f64);
    let task = w.task.as_ref().map(who).unwrap_or_else(|| "?".into());
    let subject = match &w.waiter {
        Some(waiter) if Some(waiter.pid) != w.task.as_ref().map(|t| t.pid) => format!("{} waited {d} on {task}, which was", who(waiter)),
        _ => format!("{task} was {d}"),
    };
    match w.kind {
        WaitKind::Stopped => {
            let sig = w.signal.map(critical::signal_name).unwrap_or_else(|| "a stop signal".into());
            let from = w.by.as_ref().map(|s| format!("from pid {} ({})", s.pid, s.comm)).unwrap_or_else(|| "from a sender not traced".into());
            format!("{subject} stopped by {sig} {from}")
        }
        WaitKind::Runnable => {
            let holders: Vec<String> = w
                .holders
                .iter()
                .take(2)
                .map(|(t, ns)| {
                    let side = if run_pids.contains(&t.pid) { "part of the run" } else { "not part of the run" };
                    format!("pid {} ({}, {side}, {})", t.pid, t.comm, ms_of_ns(*ns as f64))
                })
                .collect();
            let held = if holders.is_empty() { "no other task was seen on a CPU".to_string() } else { format!("{} held the CPUs", holders.join(" and ")) };
            format!("the run was runnable {d} while {held}")
        }
        WaitKind::Blocked => {
            let disk = match w.requests {
                0 => "no disk request in flight".to_string(),
                n => format!("{n} disk requests in flight on {} meanwhile", w.devices.join(", ")),
            };
            format!("{subject} blocked in D state, {disk}")
        }
        WaitKind::Sleeping => match &w.by {
            Some(by) => format!("{subject} asleep until woken by {}", who(by)),
            None => format!("{subject} asleep, its waker not seen"),
        },
        WaitKind::Interrupt => format!("{subject} asleep until a timer or interrupt woke it"),
        WaitKind::Running | WaitKind::Unknown => format!("{task}: {d} {:?}", w.kind),
    }
}

/// The breakdown's "dominant wait" cell: "stopped: containerd 40.0 ms", with its main
/// kernel wait site when stacks were recorded ("[signal stop]").
fn short_wait(w: &Wait) -> String {
    let site = w.sites.first().map(|(s, _)| format!(" [{}]", site_name(s))).unwrap_or_default();
    format!("{}{site}", short_state(w))
}

fn short_state(w: &Wait) -> String {
    let d = ms_of_ns(w.ns as f64);
    let task = w.task.as_ref().map(|t| t.comm.as_str()).unwrap_or("?");
    match w.kind {
        WaitKind::Runnable => match w.holders.first() {
            Some((h, _)) => format!("runnable {d} (CPU: {})", h.comm),
            None => format!("runnable {d}"),
        },
        WaitKind::Stopped => format!("stopped: {task} {d}"),
        WaitKind::Blocked => format!("D: {task} {d} ({} disk rq)", w.requests),
        WaitKind::Sleeping => format!("asleep: {task} {d}"),
        WaitKind::Interrupt => format!("timer/irq: {task} {d}"),
        WaitKind::Running | WaitKind::Unknown => format!("{task} {d}"),
    }
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
            explained: None,
            run_pids: Vec::new(),
        };
        let line = native_outlier(&r);
        assert!(line.starts_with("native rep 5 (32.00 ms vs median 3.00 ms)"), "{line}");
        assert!(line.contains("exec execve +29.00 ms (30.00 vs median 1.00 ms; "), "{line}");
        assert!(line.contains("29.00 ms off-CPU") && line.contains("7 page faults"), "{line}");
        assert!(!line.contains("context switches"), "a counter not read is left out, not 0: {line}");
    }

    #[test]
    fn traced_outlier_says_what_the_kernel_saw() {
        let saw = KernelSaw { off_cpu_ns: Some(20_000_000), page_faults: None, block_io: 3, busiest: Some(("runc".into(), 5_000_000)), causes: Vec::new() };
        let o = TracedOutlier {
            runtime: RuntimeKind::Docker,
            rep: 2,
            wall_ms: 412.0,
            median_ms: 380.0,
            moved: vec![PhaseMove { phase: Phase::Runtime, detail: None, ns: 60e6, median_ns: 30e6, saw }],
            lost: 7,
            explained: Some(0.97),
            run_pids: vec![10],
        };
        let line = traced_outlier(&o);
        assert_eq!(
            line,
            "docker rep 2 (412.0 ms vs median 380.0 ms, 97% explained): runtime +30.0 ms (60.0 ms vs median 30.0 ms; \
             20.0 ms with no run process on a CPU, 3 block I/O requests, busiest: runc (5.0 ms on CPU)) \
             [7 trace records lost in this rep]"
        );
        let spread = TracedOutlier { moved: Vec::new(), lost: 0, ..o };
        assert!(traced_outlier(&spread).ends_with("no single phase moved by 1 ms or more: the extra time is spread thin"));
    }

    fn task(pid: u32, comm: &str) -> TaskRef {
        TaskRef { pid, tid: pid, comm: comm.into() }
    }

    #[test]
    fn waits_in_words_name_the_stopped_process_its_sender_and_the_cpu_hogs() {
        let stop = Wait {
            kind: WaitKind::Stopped,
            task: Some(task(20, "containerd")),
            waiter: Some(task(10, "dockerd")),
            by: Some(task(50, "bash")),
            signal: Some(19),
            ns: 400_000_000,
            holders: Vec::new(),
            requests: 0,
            devices: Vec::new(),
            sites: Vec::new(),
        };
        assert_eq!(
            wait_words(&stop, &[10, 20]),
            "dockerd (pid 10) waited 400.0 ms on containerd (pid 20), which was stopped by SIGSTOP from pid 50 (bash)"
        );
        assert_eq!(short_wait(&stop), "stopped: containerd 400.0 ms");
        let sited = Wait { sites: vec![(Some("signal stop".into()), 390_000_000), (None, 10_000_000)], ..stop.clone() };
        assert_eq!(
            wait_words(&sited, &[10, 20]),
            "dockerd (pid 10) waited 400.0 ms on containerd (pid 20), which was stopped by SIGSTOP from pid 50 (bash), \
             kernel wait sites: signal stop (390.0 ms), not recorded (10.0 ms)"
        );
        assert_eq!(short_wait(&sited), "stopped: containerd 400.0 ms [signal stop]");
        let futex = Wait { kind: WaitKind::Sleeping, waiter: None, by: Some(task(10, "dockerd")), sites: vec![(Some("futex".into()), 400_000_000)], ..stop.clone() };
        assert_eq!(wait_words(&futex, &[10, 20]), "containerd (pid 20) was 400.0 ms asleep until woken by dockerd (pid 10), kernel wait site: futex");
        let hog = Wait { kind: WaitKind::Runnable, task: None, waiter: None, by: None, signal: None, holders: vec![(task(77, "sh"), 200_000_000), (task(10, "dockerd"), 9_000_000)], ..stop };
        assert_eq!(
            wait_words(&hog, &[10]),
            "the run was runnable 400.0 ms while pid 77 (sh, not part of the run, 200.0 ms) and pid 10 (dockerd, part of the run, 9.0 ms) held the CPUs"
        );
    }
}

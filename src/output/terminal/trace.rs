//! `probe trace` on the terminal: the command's phases and what each of its processes did in
//! the kernel (or the raw events as JSON), and the --timeline drawing.

use std::path::Path;

use crate::output::table::Table;
use crate::output::timeline;
use crate::trace::attribution::Attribution;
use crate::trace::command::Run;
use crate::trace::critical::{CriticalPath, State, Step, Tracker, WakeRef};
use crate::trace::event::{Event, FAULTS_PER_SAMPLE, PAGE_FAULT};
use crate::trace::procs::{self, Procs};
use crate::trace::summary;

/// Prints what `probe trace` shows of `run`, then draws the timeline if asked.
pub fn show(argv: &[String], run: &Run, json: bool, critical: bool, timeline_path: Option<&Path>) -> anyhow::Result<()> {
    let t = match &run.traced {
        Err(why) => {
            let ms = (run.end - run.start) as f64 / 1e6;
            if json {
                println!("{}", serde_json::json!({ "command": argv, "traced": false, "why": why, "wall_ms": ms }));
            } else {
                println!("{} ran in {ms:.1} ms (not traced: wall time only)", argv.join(" "));
            }
            if let Some(path) = timeline_path {
                eprintln!("note: --timeline: nothing traced, so {} was not drawn", path.display());
            }
            return Ok(());
        }
        Ok(t) => t,
    };
    let att = &t.attribution;
    let inside: Vec<&Event> = t.inside().collect();
    let (lost, throttled, malformed) = (t.lost, t.throttled, t.malformed);
    let path = critical.then(|| {
        let mut tracker = Tracker::new();
        t.events.iter().for_each(|e| tracker.feed(e));
        tracker.path(t.window.root, t.window.start, t.window.end, &procs::proc_comm)
    });
    if json {
        println!(
            "{}",
            serde_json::to_string(&serde_json::json!({
                "command": argv, "lost": lost, "throttled": throttled,
                "coverage": att.coverage(), "attribution": att, "events": inside,
                "critical_path": path, "explained": path.as_ref().map(CriticalPath::explained),
            }))?
        );
    } else {
        print!("{}", render(att, &t.events, t.window.root));
        if let Some(p) = &path {
            print!("\n{}", render_path(p));
        }
    }
    eprintln!(
        "{} events in the window; lost {lost}, throttled {throttled}, unparsed {malformed}{}",
        inside.len(),
        if lost > 0 { " — the phases above miss events: trace fewer --events" } else { "" }
    );
    if let Some(path) = timeline_path {
        timeline::write(path, &[(argv.join(" "), att)])?;
        eprintln!("timeline: {}", path.display());
    }
    Ok(())
}

fn render(att: &Attribution, events: &[Event], root: u32) -> String {
    let w = att.window;
    let mut out = format!(
        "Phases of pid {root} ({:.1} ms; {:.1}% attributed{})\n",
        (w.end - w.start) as f64 / 1e6,
        att.coverage() * 100.0,
        att.container_cgroup.as_deref().map(|c| format!("; container cgroup {c}")).unwrap_or_default()
    );
    // Sampled faults are estimates; `page-faults:1` counts are exact.
    let sampled = events.iter().any(|e| e.name == PAGE_FAULT && e.uint(FAULTS_PER_SAMPLE).is_some_and(|n| n > 1));
    let faults = if sampled { "faults ≈" } else { "faults" };
    let mut t = Table::new(["start ms", "dur ms", "phase", "detail", "on-CPU ms", "off-CPU ms", faults, "block I/O", "busiest"]);
    let opt = |v: Option<u64>, div: f64| v.map(|x| format!("{:.2}", x as f64 / div)).unwrap_or_else(|| "n/a".into());
    for s in &att.slices {
        t.row([
            format!("{:.2}", (s.start - w.start) as f64 / 1e6),
            format!("{:.2}", (s.end - s.start) as f64 / 1e6),
            s.phase.to_string(),
            s.detail.clone().unwrap_or_default(),
            opt(s.stats.on_cpu_ns, 1e6),
            opt(s.stats.off_cpu_ns, 1e6),
            s.stats.page_faults.map(|v| v.to_string()).unwrap_or_else(|| "n/a".into()),
            s.stats.block_io.to_string(),
            s.stats.top.as_ref().map(|(n, _)| n.clone()).unwrap_or_default(),
        ]);
    }
    out.push_str(&t.render());
    let procs = Procs::build(events, root, &procs::proc_comm);
    let inside: Vec<_> = events.iter().filter(|e| e.time_ns >= w.start && e.time_ns <= w.end).cloned().collect();
    out.push_str("\nEvents per process of the run\n");
    let mut t = Table::new(["process", "event", "count"]);
    for ((p, e), n) in summary::counts(&inside, &procs) {
        t.row([p, e, n.to_string()]);
    }
    out.push_str(&t.render());
    out
}

/// Steps shorter than this are folded into one line per table, so a path of thousands of
/// context switches stays readable; their count and total are printed.
const FOLD_NS: u64 = 100_000;

fn render_path(p: &CriticalPath) -> String {
    let mut out = format!(
        "Critical path, from the command's exit backwards ({:.1}% of the window explained)\n",
        p.explained() * 100.0
    );
    for m in &p.missing {
        out.push_str(&format!("missing: tracepoint {m} not recorded, so the path cannot be trusted\n"));
    }
    // Consecutive steps of one task in one state with the same reason read as one.
    let mut merged: Vec<(Step, String)> = Vec::new();
    for s in &p.steps {
        let on = waiting_on(&s.state);
        match merged.last_mut() {
            Some((l, lon)) if l.task.tid == s.task.tid && l.state.word() == s.state.word() && *lon == on && l.end == s.start => l.end = s.end,
            _ => merged.push((s.clone(), on)),
        }
    }
    let mut t = Table::new(["interval ms", "task", "state", "waiting on", "on behalf of", "kernel wait site"]);
    let (mut folded, mut folded_ns) = (0usize, 0u64);
    for (s, on) in &merged {
        if s.end - s.start < FOLD_NS {
            folded += 1;
            folded_ns += s.end - s.start;
            continue;
        }
        let rel = |t: u64| (t - p.start) as f64 / 1e6;
        t.row([
            format!("{:.2}–{:.2}", rel(s.start), rel(s.end)),
            format!("{} ({}/{})", s.task.comm, s.task.pid, s.task.tid),
            s.state.word().to_string(),
            on.clone(),
            s.waiter.as_ref().map(|w| format!("{} ({})", w.comm, w.pid)).unwrap_or_default(),
            // Callchains at switch-out are not recorded yet: the site is a missing instrument.
            "n/a".to_string(),
        ]);
    }
    out.push_str(&t.render());
    if folded > 0 {
        out.push_str(&format!("{folded} steps shorter than 0.1 ms not listed ({:.2} ms in all)\n", folded_ns as f64 / 1e6));
    }
    out.push_str("kernel wait site: n/a — callchains at switch-out are not recorded\n");
    out
}

/// What a step's task was waiting on, in a few words.
fn waiting_on(s: &State) -> String {
    let wake = |w: &Option<WakeRef>| match w {
        Some(WakeRef::Task(t)) => format!("woken by {} ({})", t.comm, t.pid),
        Some(WakeRef::Interrupt) => "woken by an interrupt".into(),
        None => String::new(),
    };
    match s {
        State::Runnable { cpu_holders } => {
            let names: Vec<String> = cpu_holders.iter().take(2).map(|(t, _)| format!("{} ({})", t.comm, t.pid)).collect();
            if names.is_empty() { "a CPU".into() } else { format!("a CPU held by {}", names.join(", ")) }
        }
        State::Blocked { requests, devices, woken_by } => format!("disk ({requests} requests in flight {}); {}", devices.join(","), wake(woken_by)),
        State::Stopped { sender, signal, .. } => match (sender, signal) {
            (Some(t), Some(sig)) => format!("{} from {} ({})", crate::trace::critical::signal_name(*sig), t.comm, t.pid),
            _ => "a continue signal (stop sender not traced)".into(),
        },
        State::Sleeping { woken_by: Some(t) } => format!("{} ({})", t.comm, t.pid),
        State::Sleeping { woken_by: None } => "a wakeup not seen".into(),
        State::Interrupt => "a timer or interrupt".into(),
        State::Running | State::Exited | State::Unknown => String::new(),
    }
}

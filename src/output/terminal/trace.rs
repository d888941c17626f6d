//! `probe trace` on the terminal: the command's phases and what each of its processes did in
//! the kernel (or the raw events as JSON), and the --timeline drawing.

use std::path::Path;

use crate::output::table::Table;
use crate::output::timeline;
use crate::trace::attribution::Attribution;
use crate::trace::command::Run;
use crate::trace::event::{Event, FAULTS_PER_SAMPLE, PAGE_FAULT};
use crate::trace::procs::{self, Procs};
use crate::trace::summary;

/// Prints what `probe trace` shows of `run`, then draws the timeline if asked.
pub fn show(argv: &[String], run: &Run, json: bool, timeline_path: Option<&Path>) -> anyhow::Result<()> {
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
    if json {
        println!(
            "{}",
            serde_json::to_string(&serde_json::json!({
                "command": argv, "lost": lost, "throttled": throttled,
                "coverage": att.coverage(), "attribution": att, "events": inside,
            }))?
        );
    } else {
        print!("{}", render(att, &t.events, t.window.root));
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

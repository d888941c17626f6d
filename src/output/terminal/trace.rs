//! `probe trace` on the terminal: one phase table per container the command started, what
//! each of its processes did (on and off CPU, I/O, children, events), the raw events as a
//! JSON document streamed while the command runs (`--json`, `--output`), and the timeline.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::output::report::lang::Lang;
use crate::output::table::Table;
use crate::output::timeline;
use crate::trace::attribution::Attribution;
use crate::trace::command::{Progress, Run, Traced};
use crate::trace::critical::{CriticalPath, State, Step, WakeRef};
use crate::trace::event::{Event, PAGE_FAULT};
use crate::trace::summary::Summary;

/// The events of a trace as one JSON document, `{"command": [...], "events": [...], ...}`,
/// written while they are drained: the events go out as they come and the analysis follows
/// them at the end. Never held in memory.
pub struct EventStream {
    out: BufWriter<Box<dyn Write>>,
    /// Writing into this temporary file, linked to the second path when complete.
    file: Option<(PathBuf, PathBuf)>,
    first: bool,
    /// The first write error: streaming stops there and `finish` reports it.
    failed: Option<std::io::Error>,
}

impl EventStream {
    pub fn stdout(argv: &[String]) -> anyhow::Result<Self> {
        Self::start(Box::new(std::io::stdout()), None, argv)
    }

    /// Into `path`, a new file: written beside it and linked into place when complete, so it
    /// appears whole or not at all.
    pub fn file(path: &Path, argv: &[String]) -> anyhow::Result<Self> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("trace.json");
        let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .with_context(|| format!("--output: creating {}", tmp.display()))?;
        Self::start(Box::new(f), Some((tmp, path.to_path_buf())), argv)
    }

    fn start(out: Box<dyn Write>, file: Option<(PathBuf, PathBuf)>, argv: &[String]) -> anyhow::Result<Self> {
        let mut s = EventStream { out: BufWriter::with_capacity(1 << 16, out), file, first: true, failed: None };
        let head = format!("{{\"command\":{},\"events\":[", serde_json::to_string(argv)?);
        s.out.write_all(head.as_bytes()).context("writing the events")?;
        Ok(s)
    }

    pub fn event(&mut self, e: &Event) {
        if self.failed.is_some() {
            return;
        }
        let sep: &[u8] = if self.first { b"\n" } else { b",\n" };
        self.first = false;
        let r = self.out.write_all(sep).and_then(|()| serde_json::to_writer(&mut self.out, e).map_err(std::io::Error::from));
        if let Err(e) = r {
            self.failed = Some(e);
        }
    }

    /// Closes the events array with `tail`'s fields after it, and puts the file in place.
    fn finish(mut self, tail: serde_json::Value) -> anyhow::Result<()> {
        let what = self.file.as_ref().map_or("stdout".to_string(), |(_, p)| p.display().to_string());
        let written = (|| -> anyhow::Result<()> {
            if let Some(e) = self.failed.take() {
                return Err(e.into());
            }
            let tail = serde_json::to_string(&tail)?;
            let fields = tail.strip_prefix('{').unwrap_or("}");
            let sep = if fields == "}" { "" } else { "," };
            write!(self.out, "\n]{sep}{fields}\n")?;
            self.out.flush()?;
            if let Some((tmp, path)) = &self.file {
                timeline::place(tmp, path)?;
            }
            Ok(())
        })();
        if let Some((tmp, _)) = &self.file {
            let _ = std::fs::remove_file(tmp);
        }
        written.with_context(|| format!("writing the events to {what}"))
    }
}

/// A line on stderr that rewrites itself: how long, how many events, what was lost, and
/// probe's memory.
pub fn progress(p: &Progress) {
    let rss = crate::sys::procfs::own_rss_kb().map_or("n/a".into(), |(now, _)| format!("{} MB", now / 1024));
    eprint!("\rtracing: {:.0} s, {} events, lost {}, memory {rss}   ", p.elapsed_ns as f64 / 1e9, p.events, p.lost);
}

/// Prints what `probe trace` shows of `run` (and ends `stream`'s document with the
/// analysis), then draws the timeline if asked, its words in `lang`.
pub fn show(argv: &[String], run: &Run, stream: Option<EventStream>, to_stdout: bool, timeline_path: Option<&Path>, lang: Lang) -> anyhow::Result<()> {
    let t = match &run.traced {
        Err(why) => {
            let ms = (run.end - run.start) as f64 / 1e6;
            if !to_stdout {
                println!("{} ran in {ms:.1} ms (not traced: wall time only)", argv.join(" "));
            }
            if let Some(s) = stream {
                s.finish(serde_json::json!({ "traced": false, "why": why, "wall_ms": ms }))?;
            }
            if let Some(path) = timeline_path {
                eprintln!("note: --timeline: nothing traced, so {} was not drawn", path.display());
            }
            return Ok(());
        }
        Ok(t) => t,
    };
    // The command's own start, when it is an engine CLI that started a container.
    let own = t.breakdowns.iter().find(|a| a.window.root == t.window.root);
    if let Some(s) = stream {
        s.finish(serde_json::json!({
            "window": t.window, "events_seen": t.events, "lost": t.lost,
            "lost_per_cpu": t.lost_per_cpu.iter().map(|(cpu, n)| serde_json::json!({"cpu": cpu, "lost": n})).collect::<Vec<_>>(),
            "throttled": t.throttled, "unparsed": t.malformed,
            "coverage": own.map(Attribution::coverage), "attribution": own,
            "containers": t.breakdowns, "summary": t.summary,
            "critical_path": t.critical, "explained": t.critical.as_ref().map(CriticalPath::explained),
        }))?;
    }
    if !to_stdout {
        print!("{}", render(t));
        if let Some(p) = &t.critical {
            print!("\n{}", render_path(p));
        }
    }
    let per_cpu: Vec<String> = t.lost_per_cpu.iter().filter(|(_, n)| *n > 0).map(|(c, n)| format!("cpu{c} {n}")).collect();
    let peak = crate::sys::procfs::own_rss_kb().map_or("n/a".into(), |(_, hwm)| format!("{} MB", hwm / 1024));
    eprintln!(
        "{} events seen ({} of them the command's); lost {}{}, throttled {}, unparsed {}; probe's peak memory {peak}{}",
        t.events,
        t.summary.procs.iter().map(|p| p.events.values().sum::<u64>()).sum::<u64>(),
        t.lost,
        if per_cpu.is_empty() { String::new() } else { format!(" ({})", per_cpu.join(", ")) },
        t.throttled,
        t.malformed,
        if t.lost > 0 { " — the analysis misses events: trace fewer --events" } else { "" }
    );
    if let Some(path) = timeline_path {
        let titled: Vec<(String, Attribution)> = if t.breakdowns.is_empty() {
            vec![(argv.join(" "), t.summary.timeline())]
        } else {
            t.breakdowns.iter().enumerate().map(|(i, a)| (format!("container start {} (pid {})", i + 1, a.window.root), a.clone())).collect()
        };
        // The command's path, clipped to each drawn window (its own start, or each start
        // it made): what the command waited for meanwhile.
        let runs: Vec<timeline::Drawn> = titled.iter().map(|(n, a)| (n.clone(), a, t.critical.as_ref())).collect();
        timeline::write(path, &runs, lang)?;
        eprintln!("timeline: {}", path.display());
    }
    Ok(())
}

fn ms(ns: u64) -> String {
    format!("{:.2}", ns as f64 / 1e6)
}

fn render(t: &Traced) -> String {
    let mut out = String::new();
    let n = t.breakdowns.len();
    for (i, att) in t.breakdowns.iter().enumerate() {
        let w = att.window;
        let which = if n > 1 { format!("container start {} of {n}, ", i + 1) } else { String::new() };
        out.push_str(&format!(
            "Phases of {which}pid {} ({:.1} ms from {:.1} ms into the trace; {:.1}% attributed{})\n",
            w.root,
            (w.end - w.start) as f64 / 1e6,
            w.start.saturating_sub(t.window.start) as f64 / 1e6,
            att.coverage() * 100.0,
            att.container_cgroup.as_deref().map(|c| format!("; container cgroup {c}")).unwrap_or_default()
        ));
        out.push_str(&phase_table(att, &t.summary));
        out.push('\n');
    }
    out.push_str(&process_table(&t.summary));
    out.push_str("\nEvents per process of the command\n");
    let mut tab = Table::new(["process", "event", "count"]);
    for ((p, e), n) in t.summary.counts() {
        tab.row([p, e, n.to_string()]);
    }
    out.push_str(&tab.render());
    let others: u64 = t.summary.others.values().sum();
    out.push_str(&format!("{others} events of other tasks were counted, not kept\n"));
    out
}

fn phase_table(att: &Attribution, summary: &Summary) -> String {
    let w = att.window;
    // Sampled faults are estimates; `page-faults:1` counts are exact.
    let sampled = summary.procs.iter().any(|p| p.events.contains_key(&format!("{PAGE_FAULT} ≈")));
    let faults = if sampled { "faults ≈" } else { "faults" };
    let mut t = Table::new(["start ms", "dur ms", "phase", "detail", "on-CPU ms", "off-CPU ms", faults, "block I/O", "busiest"]);
    let opt = |v: Option<u64>| v.map(ms).unwrap_or_else(|| "n/a".into());
    for s in &att.slices {
        t.row([
            ms(s.start - w.start),
            ms(s.end - s.start),
            s.phase.to_string(),
            s.detail.clone().unwrap_or_default(),
            opt(s.stats.on_cpu_ns),
            opt(s.stats.off_cpu_ns),
            s.stats.page_faults.map(|v| v.to_string()).unwrap_or_else(|| "n/a".into()),
            s.stats.block_io.to_string(),
            s.stats.top.as_ref().map(|(n, _)| n.clone()).unwrap_or_default(),
        ]);
    }
    t.render()
}

/// Processes shown by name; a `make -j` forks thousands, the busiest come first.
const MAX_PROC_ROWS: usize = 40;

fn process_table(s: &Summary) -> String {
    let w = s.window;
    let mut out = format!("Processes of pid {} ({:.1} ms, {} processes)\n", w.root, (w.end - w.start) as f64 / 1e6, s.procs.len());
    let mut t = Table::new([
        "pid", "parent", "process", "start ms", "wall ms", "on-CPU ms", "off: runnable ms", "sleep ms", "blocked ms",
        "block I/O", "children", "preempted most by",
    ]);
    let mut procs: Vec<_> = s.procs.iter().collect();
    procs.sort_by_key(|p| std::cmp::Reverse(p.on_cpu_ns + p.off_cpu.blocked_ns));
    for p in procs.iter().take(MAX_PROC_ROWS) {
        let end = p.end.unwrap_or(w.end);
        let io = if p.block_io == 0 {
            "0".to_string()
        } else {
            let devs: Vec<String> = p.devices.keys().cloned().collect();
            format!("{} ({} KiB; {})", p.block_io, p.block_bytes / 1024, devs.join(" "))
        };
        t.row([
            p.tgid.to_string(),
            p.parent.map(|x| x.to_string()).unwrap_or_default(),
            p.name.clone(),
            ms(p.start.saturating_sub(w.start)),
            ms(end.saturating_sub(p.start)),
            ms(p.on_cpu_ns),
            ms(p.off_cpu.runnable_ns),
            ms(p.off_cpu.sleep_ns),
            ms(p.off_cpu.blocked_ns),
            io,
            p.children.to_string(),
            p.preempted_by.iter().max_by_key(|(_, n)| **n).map(|(c, n)| format!("{c} ×{n}")).unwrap_or_default(),
        ]);
    }
    out.push_str(&t.render());
    if procs.len() > MAX_PROC_ROWS {
        out.push_str(&format!("… {} more processes (probe trace --json has them all)\n", procs.len() - MAX_PROC_ROWS));
    }
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
            // Without stacks at switch-out the site is a missing instrument, not blank.
            match (&s.site, p.stacks) {
                (Some(site), _) => site.clone(),
                (None, true) => String::new(),
                (None, false) => "n/a".to_string(),
            },
        ]);
    }
    out.push_str(&t.render());
    if folded > 0 {
        out.push_str(&format!("{folded} steps shorter than 0.1 ms not listed ({:.2} ms in all)\n", folded_ns as f64 / 1e6));
    }
    if !p.stacks {
        out.push_str("kernel wait site: n/a — stacks at switch-out not recorded (add --kernel-stacks)\n");
    }
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

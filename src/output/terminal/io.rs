//! `probe io` on the terminal: speed per storage mode, and per mode the evidence of whether
//! its sync reached the disk.

use crate::experiment::io::backing::Store;
use crate::experiment::io::crash;
use crate::experiment::io::{self, ModeResult, Report, Rep};
use crate::ground::stats;
use crate::output::table::Table;

const MIB: u64 = 1 << 20;

fn median_of(reps: &[Rep], f: impl Fn(&Rep) -> Option<f64>) -> Option<f64> {
    let xs: Vec<f64> = reps.iter().filter_map(f).filter(|x| x.is_finite()).collect();
    (!xs.is_empty()).then(|| stats::median(&xs))
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map(f).unwrap_or_else(|| "-".into())
}

pub fn render(report: &Report) -> String {
    let p = &report.params;
    let mut out = format!(
        "Experiment 4: write {} MiB in {} KiB blocks, then {}; {} rep(s) per mode, medians\n\n",
        p.size / MIB,
        p.block / 1024,
        p.sync.name(),
        p.reps
    );
    let mut t = Table::new([
        "mode", "write MB/s", "sync ms", "MB/s incl. sync", "chapter MB/s", "on disk before return", "flushes", "verdict",
    ]);
    for r in &report.results {
        t.row(row(r, report));
    }
    out.push_str(&t.render());
    if !report.background.bytes_per_s.is_empty() {
        let bg: Vec<String> = report
            .background
            .bytes_per_s
            .iter()
            .map(|(d, b)| format!("{d} {:.1} KiB/s", b / 1024.0))
            .collect();
        out.push_str(&format!("\nbackground writes while idle ({} ms), subtracted: {}\n", report.background.idle_ms, bg.join(", ")));
    }
    if let Some(c) = &report.crash_check {
        out.push_str(&format!("crash check: scratch disk {c}\n"));
    }
    for r in &report.results {
        out.push_str(&evidence(r));
    }
    out
}

fn row(r: &ModeResult, report: &Report) -> Vec<String> {
    let share = median_of(&r.reps, Rep::device_share);
    let bytes = median_of(&r.reps, |x| x.disk.as_ref().map(|d| d.before_return_bytes as f64));
    let on_disk = match (bytes, share) {
        (Some(b), Some(s)) => format!("{:.1} MiB ({:.0}%)", b / MIB as f64, s * 100.0),
        _ => match r.reps.first().map(|x| &x.backing.store) {
            Some(Store::Memory { .. }) => "no disk (RAM)".into(),
            _ => "unresolved".into(),
        },
    };
    let flushes = median_of(&r.reps, |x| x.disk.as_ref().and_then(|d| Some((d.write_phase.flushes? + d.sync_phase.flushes?) as f64)));
    vec![
        r.mode.to_string(),
        opt(median_of(&r.reps, |x| Some(x.write_mbps())), |v| format!("{v:.0}")),
        opt(median_of(&r.reps, |x| Some(x.sync_ms())), |v| format!("{v:.1}")),
        opt(median_of(&r.reps, |x| Some(x.total_mbps())), |v| format!("{v:.0}")),
        opt(report.reference.mean.get(r.mode.name()).copied(), |v| format!("{v:.0}")),
        on_disk,
        opt(flushes, |v| format!("{v:.0}")),
        r.verdict.clone(),
    ]
}

/// Per mode: the mount as the container sees it, the FUSE daemon, why the verdict, and (when
/// traced) what the kernel saw during the sync call.
fn evidence(r: &ModeResult) -> String {
    let Some(first) = r.reps.first() else { return String::new() };
    let b = &first.backing;
    let mut out = format!("\n{} — {}\n", r.mode, r.verdict);
    if let Some(m) = &b.root_mount {
        out.push_str(&format!("  container root: {} {} ({})\n", m.fstype, m.source, m.all_options().join(",")));
    }
    if let Some(m) = b.mount.as_ref().filter(|m| Some(*m) != b.root_mount.as_ref()) {
        out.push_str(&format!("  target mount:   {} {} on {} ({})\n", m.fstype, m.source, m.mount_point, m.all_options().join(",")));
    }
    if let Some(d) = &b.fuse_daemon {
        out.push_str(&format!("  FUSE daemon:    {} pid {}, -o {}\n", d.comm, d.pid, d.options.join(",")));
    }
    match &b.store {
        Store::Device(d) => out.push_str(&format!("  block stack:    {} (via {})\n", d.chain.describe(), d.via)),
        Store::Memory { fstype } => out.push_str(&format!("  backing:        no disk ({fstype}, RAM)\n")),
        Store::Unknown { why } => out.push_str(&format!("  backing:        block stack not resolved: {why}\n")),
    }
    for rep in &r.reps {
        let split = rep.disk.as_ref().map_or(String::new(), |d| {
            format!(" [write phase {:.1} MiB, sync call {:.1} MiB]", d.write_phase.bytes as f64 / MIB as f64, d.sync_phase.bytes as f64 / MIB as f64)
        });
        out.push_str(&format!("  rep {}: {}{split}\n", rep.rep, rep.verdict.decided_by));
        if let Some(c) = &rep.crash {
            out.push_str(&format!("    crash check: {}\n", crash::describe(c, rep.bytes)));
        }
    }
    if let Some(m) = &first.verdict.mechanism {
        out.push_str(&format!("  mechanism: {m}\n"));
    }
    if let Some(t) = &first.trace {
        if !t.missing.is_empty() {
            out.push_str(&format!("  not recorded (tracepoints missing in this kernel): {}\n", t.missing.join(", ")));
        }
        for (name, w) in [("write phase", &t.write_phase), ("sync call  ", &t.sync_phase)] {
            let fuse: Vec<String> = w.fuse_requests.iter().map(|(k, v)| format!("{k}×{v}")).collect();
            let (syncs, calls) = (callers(&w.fs_syncs), callers(&w.sync_syscalls));
            out.push_str(&format!(
                "  traced {name}: disk writes {:.1} MiB in {} requests, {} flush, {} FUA; FUSE {}; fs syncs {}; syscalls {}\n",
                w.write_bytes as f64 / MIB as f64,
                w.write_requests,
                w.flushes,
                w.fua_writes,
                if fuse.is_empty() { "-".into() } else { fuse.join(" ") },
                syncs,
                calls,
            ));
            if !w.fuse_errors.is_empty() {
                let errs: Vec<String> = w.fuse_errors.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
                out.push_str(&format!("    FUSE errors: {} (-61 ENODATA, -38 ENOSYS)\n", errs.join(", ")));
            }
        }
    }
    out
}

/// "ext4 fdatasync by probe[4304] ×1, ext4 fsync by dpkg[25478] ×14", the first few callers.
fn callers(calls: &[io::events::Caller]) -> String {
    const SHOWN: usize = 4;
    if calls.is_empty() {
        return "none".into();
    }
    let mut parts: Vec<String> =
        calls.iter().take(SHOWN).map(|c| format!("{} by {}[{}] ×{}", c.what, c.comm, c.pid, c.count)).collect();
    if calls.len() > SHOWN {
        parts.push(format!("+{} more processes", calls.len() - SHOWN));
    }
    parts.join(", ")
}

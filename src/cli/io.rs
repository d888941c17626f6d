//! `probe io`: Experiment 4, disk write speed per storage mode, and whether each mode's sync
//! really reached the disk, with the kernel's evidence beside every verdict.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::emit::{emit, finish, save, Format};
use crate::experiment::io::backing::Store;
use crate::experiment::io::crash::{self, ScratchFs};
use crate::experiment::io::mode::Mode;
use crate::experiment::io::protocol::SyncMode;
use crate::experiment::io::{self, ModeResult, Params, Report, Rep};
use crate::output::results;
use crate::output::seed_csv::{self, MetricRow};
use crate::output::table::Table;
use crate::ground::stats;

const MIB: u64 = 1 << 20;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    sudo probe io                                   every mode that works here, 100 MiB, fdatasync\n  \
    sudo probe io --fsync-trace                     plus block, FUSE and ext4 events per phase\n  \
    sudo probe io --modes bare,docker-volume --size 8 --reps 2\n\n\
A verdict is `durable` when ≥ 95% of the file reached the backing disk (per /proc/diskstats,\n\
background writes subtracted) before the sync call returned. docs/io.md explains the evidence.")]
pub struct IoArgs {
    /// Storage modes, comma-separated: bare, tmpfs, docker-overlay, docker-volume,
    /// podman-overlay, podman-volume, rootless-fuse-overlayfs, rootless-volume, native-overlay,
    /// native-fuse-overlayfs, native-bind, overlay, overlay-volatile (a kernel overlay probe
    /// mounts with its upper in --dir). Default: all that work here (others listed as skipped).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub modes: Option<Vec<Mode>>,
    /// File size in MiB [default: 100, from probes/io.json].
    #[arg(long, value_name = "MiB", value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub size: Option<u64>,
    /// Bytes per write call, in KiB [default: 1024].
    #[arg(long, value_name = "KiB", value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub block: Option<u64>,
    /// How the file is made durable: fdatasync (dd conv=fdatasync), fsync, direct (O_DIRECT
    /// writes, no sync call: dd oflag=direct) or none [default: fdatasync].
    #[arg(long, value_enum)]
    pub sync: Option<SyncMode>,
    /// Measured repetitions per mode [default: 3, as the chapter].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub reps: Option<u32>,
    /// Milliseconds the disks are watched, idle, for their background write rate [default: 2000].
    #[arg(long, value_name = "MS")]
    pub idle_ms: Option<u64>,
    /// Directory on disk where bare mode writes and volumes are made [default: /var/tmp].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Also trace block requests, FUSE requests and ext4 sync calls in each phase.
    #[arg(long)]
    pub fsync_trace: bool,
    /// Prove each verdict by a simulated power cut: write to a scratch loop disk made in
    /// --dir, copy it when the sync returns, mount the copy and read the file back.
    /// Default modes then: bare, native-bind, overlay, overlay-volatile, podman-overlay;
    /// default --size 16. Not with --sync direct (the capture cannot model a disk cache).
    #[arg(long)]
    pub crash_check: bool,
    /// The scratch disk's filesystem for --crash-check.
    #[arg(long, value_enum, default_value_t = ScratchFs::Ext4, requires = "crash_check")]
    pub crash_fs: ScratchFs,
    /// What to print on stdout; the run folder always gets CSV and JSON.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Folder that receives a new run folder (and a `latest` link) per run.
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub results: PathBuf,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(a: IoArgs) -> anyhow::Result<ExitCode> {
    let d = io::probe_file().defaults;
    let params = Params {
        size: a.size.map_or(if a.crash_check { crash::DEFAULT_FILE_BYTES } else { d.size_mib * MIB }, |s| s * MIB),
        block: a.block.unwrap_or(d.block_kib) * 1024,
        sync: a.sync.unwrap_or(d.sync),
        reps: a.reps.unwrap_or(d.reps),
        idle_ms: a.idle_ms.unwrap_or(d.idle_ms),
        dir: a.dir.clone().unwrap_or(d.dir),
    };
    results::check_writable(&a.results)?;
    crate::sys::signals::install();
    let report = io::run(
        io::Config {
            explicit: a.modes.is_some(),
            modes: a.modes.clone().unwrap_or_else(|| if a.crash_check { crash::default_modes() } else { io::default_modes() }),
            params,
            trace: a.fsync_trace,
            crash_check: a.crash_check.then_some(a.crash_fs),
            quiet: a.quiet,
        },
        &crate::sys::signals::interrupted,
    )?;

    let csv = seed_csv::metric_csv(&csv_rows(&report))?;
    let json = serde_json::to_vec_pretty(&report)?;
    let dir = save(&a.results, "io", &[("io.csv", &csv), ("io.json", &json)])?;
    emit(a.format, &render(&report), &csv, &json);
    let code = finish(&report.warnings, &report.skipped, &dir)?;
    if report.results.iter().flat_map(|r| &r.reps).any(|x| x.crash.as_ref().is_some_and(|c| c.agrees == Some(false))) {
        eprintln!("probe: the crash check contradicts a verdict (see the warnings): those verdicts are not proven");
        return Ok(ExitCode::FAILURE);
    }
    Ok(code)
}

/// The chapter's rows (`docker,io_overlay,<MB/s>`, write + sync like dd conv=fdatasync), then
/// the split figures under the same metric name with a suffix.
fn csv_rows(report: &Report) -> Vec<MetricRow> {
    let mut rows = Vec::new();
    for r in &report.results {
        for rep in &r.reps {
            let mut row = |suffix: &str, value: String| {
                rows.push(MetricRow { runtime: r.runtime.to_string(), metric: format!("{}{suffix}", r.metric), value })
            };
            row("", format!("{:.1}", rep.total_mbps()));
            row("_write_mbps", format!("{:.1}", rep.write_mbps()));
            row("_sync_ms", format!("{:.3}", rep.sync_ms()));
            if let Some(share) = rep.device_share() {
                row("_device_pct", format!("{:.1}", share * 100.0));
            }
            row("_durable", rep.verdict.outcome.csv_value().into());
            if let Some(c) = &rep.crash {
                row("_crash_survived", u8::from(c.complete).to_string());
            }
        }
    }
    rows
}

fn median_of(reps: &[Rep], f: impl Fn(&Rep) -> Option<f64>) -> Option<f64> {
    let xs: Vec<f64> = reps.iter().filter_map(f).filter(|x| x.is_finite()).collect();
    (!xs.is_empty()).then(|| stats::median(&xs))
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map(f).unwrap_or_else(|| "-".into())
}

fn render(report: &Report) -> String {
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

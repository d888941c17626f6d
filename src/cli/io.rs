//! `probe io`: Experiment 4, disk write speed per storage mode, and whether each mode's sync
//! really reached the disk, with the kernel's evidence beside every verdict.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::OutputArgs;
use crate::experiment::io::crash::{self, ScratchFs};
use crate::experiment::io::mode::Mode;
use crate::experiment::io::protocol::SyncMode;
use crate::experiment::io::{self, Params};
use crate::output::emit::{emit, fail_if_stopped, finish, save};
use crate::output::{results, run_files, seed_csv, terminal};

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
    /// podman-overlay, podman-volume, rootless-fuse-overlayfs, rootless-volume, native-overlay
    /// (probe's own container, its root a kernel overlay with the upper on disk),
    /// native-overlay-volatile (the same mounted `volatile`, as podman's `run --rm`),
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
    /// --dir, capture it when the sync returns (--crash-method), mount the capture and read
    /// the file back.
    /// Default modes then: bare, native-bind, overlay, overlay-volatile, native-overlay,
    /// native-overlay-volatile (the native container's upper layer on the scratch disk too),
    /// podman-overlay;
    /// default --size 16. --sync direct only with dm-log-writes (a copy cannot model a disk
    /// cache).
    #[arg(long)]
    pub crash_check: bool,
    /// The scratch disk's filesystem for --crash-check.
    #[arg(long, value_enum, default_value_t = ScratchFs::Ext4, requires = "crash_check")]
    pub crash_fs: ScratchFs,
    /// How --crash-check captures the disk at sync return: dm-log-writes (xfstests' way: a
    /// mark in a device-mapper write log, replayed up to it; only flushed writes count), copy
    /// (the loop's backing file), or auto: dm-log-writes where the kernel has device-mapper.
    #[arg(long, value_enum, default_value_t = crash::Method::Auto, requires = "crash_check")]
    pub crash_method: crash::Method,
    #[command(flatten)]
    pub output: OutputArgs,
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
    results::check_writable(&a.output.results)?;
    crate::sys::signals::install();
    let report = io::run(
        io::Config {
            explicit: a.modes.is_some(),
            modes: a.modes.clone().unwrap_or_else(|| if a.crash_check { crash::default_modes() } else { io::default_modes() }),
            params,
            trace: a.fsync_trace,
            crash_check: a.crash_check.then_some((a.crash_fs, a.crash_method)),
            quiet: a.output.quiet,
        },
        &crate::sys::signals::interrupted,
    )?;

    let csv = seed_csv::metric_csv(&run_files::io_rows(&report))?;
    let json = serde_json::to_vec_pretty(&report)?;
    let dir = save(&a.output.results, "io", &[("io.csv", &csv), ("io.json", &json)])?;
    emit(a.output.format, &terminal::io::render(&report), &csv, &json);
    let code = finish(&report.warnings, &report.skipped, &dir)?;
    if report.results.iter().flat_map(|r| &r.reps).any(|x| x.crash.as_ref().is_some_and(|c| c.agrees == Some(false))) {
        eprintln!("probe: the crash check contradicts a verdict (see the warnings): those verdicts are not proven");
        return Ok(ExitCode::FAILURE);
    }
    fail_if_stopped(code, report.incomplete.as_ref(), &dir)
}

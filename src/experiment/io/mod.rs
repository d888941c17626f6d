//! Experiment 4: disk I/O — how fast a container writes, and whether its sync reached the
//! disk. The chapter measured Podman's overlay at 1.7 GB/s, 3.5× the bare disk, and guessed
//! the page cache; this experiment asks the disk: a worker in the container writes and syncs
//! a file, pausing at each phase boundary while the host reads /proc/diskstats for the
//! backing device (and, with the tracer, drains block, FUSE and ext4 events), so the bytes
//! the device received before the sync returned decide the verdict.

pub mod backing;
pub mod crash;
pub mod events;
pub mod handshake;
pub mod logwrites;
pub mod mode;
pub mod protocol;
pub mod verdict;
pub mod worker;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use self::backing::{Backing, Store};
use self::handshake::Point;
use self::mode::{Launcher, Mode};
use self::protocol::SyncMode;
use self::verdict::{FuseFacts, Outcome, Verdict};
use crate::experiment::common::open::open_each;
use crate::runtimes::cli_engine::StderrSink;
use crate::experiment::common::host::Header;
use crate::measure::runner::{self, Runs, Stopped};
use crate::sys::clock::monotonic_ns;
use crate::sys::diskstats;
use crate::trace::session::{Options, Session};

pub struct Config {
    pub modes: Vec<Mode>,
    /// Modes named by the user must all run; default ones that cannot are skipped with why.
    pub explicit: bool,
    pub params: Params,
    /// Open the kernel tracer for block, FUSE and ext4 evidence (`--fsync-trace`).
    pub trace: bool,
    /// Write to a scratch disk with this filesystem and prove each verdict by a simulated
    /// power cut (`--crash-check`).
    pub crash_check: Option<(crash::ScratchFs, crash::Method)>,
    pub quiet: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Params {
    pub size: u64,
    pub block: u64,
    pub sync: SyncMode,
    pub reps: u32,
    /// How long the disk is watched, idle, for its background write rate.
    pub idle_ms: u64,
    /// Where bare and volume modes write (a directory on disk).
    pub dir: PathBuf,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct Skipped {
    pub mode: Mode,
    pub reason: String,
}

/// Writes and flushes the disks received while nothing was measured.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Background {
    pub idle_ms: u64,
    /// Bytes and flushes per second, per device that wrote anything.
    pub bytes_per_s: BTreeMap<String, f64>,
    pub flushes_per_s: BTreeMap<String, f64>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct DiskWindow {
    /// Host-side duration of the window (the worker's phase plus the handshake).
    pub host_ns: u64,
    pub raw_bytes: u64,
    /// The idle rate times the window: what the disk would have received anyway.
    pub background_bytes: u64,
    /// raw − background, never below 0.
    pub bytes: u64,
    pub write_requests: u64,
    /// Flushes summed over the bottom disks (the kernel counts none on partitions or on
    /// most stacked devices); None when one of them does not count flushes.
    pub flushes: Option<u64>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct DiskEvidence {
    /// Where the filesystem sits: its bytes.
    pub device: String,
    /// The whole disks at the bottom of its stack: their flushes.
    pub flush_devices: Vec<String>,
    pub write_phase: DiskWindow,
    pub sync_phase: DiskWindow,
    /// Bytes (background subtracted) the device received from `ready` until the sync returned.
    pub before_return_bytes: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct TraceEvidence {
    /// Tracepoints this kernel lacks: their evidence was not recorded (never read as 0).
    pub missing: Vec<String>,
    pub write_phase: events::Window,
    pub sync_phase: events::Window,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Rep {
    pub rep: u32,
    pub bytes: u64,
    pub write_ns: u64,
    pub sync_ns: u64,
    pub backing: Backing,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskEvidence>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceEvidence>,
    pub verdict: Verdict,
    /// What a power cut at sync return left of the file (`--crash-check`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crash: Option<crash::Survived>,
}

/// MB/s as dd prints it (10^6 bytes per second).
fn mbps(bytes: u64, ns: u64) -> f64 {
    if ns == 0 {
        return f64::INFINITY;
    }
    bytes as f64 / 1e6 / (ns as f64 / 1e9)
}

impl Rep {
    pub fn write_mbps(&self) -> f64 {
        mbps(self.bytes, self.write_ns)
    }

    /// Write plus sync: what `dd conv=fdatasync` reports, and the chapter's figure.
    pub fn total_mbps(&self) -> f64 {
        mbps(self.bytes, self.write_ns + self.sync_ns)
    }

    pub fn sync_ms(&self) -> f64 {
        self.sync_ns as f64 / 1e6
    }

    /// Share of the written bytes on the device before the sync returned (None: no device).
    pub fn device_share(&self) -> Option<f64> {
        self.disk.as_ref().map(|d| d.before_return_bytes as f64 / self.bytes.max(1) as f64)
    }
}

#[derive(Serialize, Deserialize, Debug)]
pub struct ModeResult {
    pub mode: Mode,
    pub runtime: crate::ground::RuntimeKind,
    pub metric: String,
    pub reps: Vec<Rep>,
    /// The reps' common outcome, None when they disagree.
    pub outcome: Option<Outcome>,
    pub verdict: String,
}

/// The chapter's raw MB/s per mode and its averages (probes/io.json).
#[derive(Deserialize, Serialize, Clone, Debug)]
pub struct Reference {
    pub machine: String,
    pub unit: String,
    pub reps: BTreeMap<String, Vec<f64>>,
    pub mean: BTreeMap<String, f64>,
}

#[derive(Deserialize, Serialize, Clone, Debug)]
pub struct Defaults {
    pub size_mib: u64,
    pub block_kib: u64,
    pub sync: SyncMode,
    pub reps: u32,
    pub idle_ms: u64,
    pub dir: PathBuf,
    pub modes: Vec<String>,
}

pub type IoProbe = crate::experiment::common::reference::ProbeFile<Defaults, Reference>;

pub fn probe_file() -> IoProbe {
    serde_json::from_str(include_str!("../../../probes/io.json")).expect("probes/io.json is checked by a unit test")
}

pub fn default_modes() -> Vec<Mode> {
    probe_file().defaults.modes.iter().filter_map(|m| m.parse().ok()).collect()
}

#[derive(Serialize, Deserialize, Debug)]
pub struct Report {
    #[serde(flatten)]
    pub header: Header,
    pub params: Params,
    pub traced: bool,
    /// The scratch disk the crash check wrote to, e.g. "ext4 on /dev/loop3".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crash_check: Option<String>,
    pub background: Background,
    pub results: Vec<ModeResult>,
    pub skipped: Vec<Skipped>,
    pub warnings: Vec<String>,
    pub reference: Reference,
    /// Set when a rep failed and the run stopped: where, and why. `results` then holds only
    /// the reps finished before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<Stopped>,
}

pub fn run(cfg: Config, interrupted: &dyn Fn() -> bool) -> Result<Report> {
    let p = &cfg.params;
    worker::check_sizes(p.size, p.block, p.sync)?;
    let worker_args = vec![
        "--size".to_string(),
        p.size.to_string(),
        "--block".into(),
        p.block.to_string(),
        "--sync".into(),
        p.sync.name().into(),
        "--pause".into(),
    ];
    let mut scratch = match cfg.crash_check {
        Some((fs, method)) => {
            anyhow::ensure!(
                p.size <= fs.scratch_bytes() / 2,
                "--size {} MiB is too large for the crash check's {} MiB {} scratch disk: use --size {} or less",
                p.size >> 20,
                fs.scratch_bytes() >> 20,
                fs.name(),
                fs.scratch_bytes() >> 21
            );
            if let Some(why) = method.copy_reason()?.filter(|_| p.sync == SyncMode::Direct) {
                return Err(crash::refuse_direct(&why));
            }
            let s = crash::Scratch::create(&p.dir, fs, method).context("--crash-check: making the scratch disk")?;
            // Auto falls back to the copy when dm-log-writes cannot be made.
            if p.sync == SyncMode::Direct && !s.models_disk_cache() {
                return Err(crash::refuse_direct(&s.method));
            }
            Some(s)
        }
        None => None,
    };
    let mut launcher = Launcher::new(scratch.as_ref().map_or(p.dir.clone(), |s| s.dir().to_path_buf()))?;
    // Declared after the scratch disk, so dropped before it: podman's state goes first.
    let mut _runroot = None;
    if let Some(s) = scratch.as_ref().filter(|_| cfg.modes.iter().any(|m| m.runtime() == crate::ground::RuntimeKind::Podman)) {
        let runroot = crash::RunRoot::create().context("--crash-check: podman's run root")?;
        let storage = mode::PodmanStorage {
            root: s.dir().join("podman-root"),
            runroot: runroot.path().to_path_buf(),
            image_store: launcher.podman_graph_root().context("--crash-check: podman's image store")?,
        };
        launcher.set_podman_storage(storage);
        _runroot = Some(runroot);
    }
    if let Some(s) = scratch.as_ref() {
        // The native container's upper layer on the scratch disk too, so its file is captured.
        launcher.set_native_storage(s.dir().join("native-containers"));
    }
    let crash_check = scratch.as_ref().map(|s| format!("{} on {}; capture: {}", s.fs.name(), s.device(), s.method));
    let mut stderr = StderrSink::new().context("memfd for the worker's stderr")?;
    let (mut modes, skipped) = usable_modes(&cfg, &mut launcher, &mut stderr)?;
    let mut session = if cfg.trace { Some(open_tracer()?) } else { None };
    let background = measure_background(p.idle_ms)?;

    let (runs, incomplete) = runner::interleaved(&mut modes, 0, p.reps, cfg.quiet, interrupted, |m| *m, |m, round| {
        let launch = match launcher.launch(*m, &worker_args) {
            Ok(l) => l,
            Err(e) => return Ok(Err(e)),
        };
        Ok(measure_rep(launch, &mut stderr, session.as_mut(), scratch.as_mut(), &background, p, round.n))
    })?;

    let results: Vec<ModeResult> = runs
        .into_iter()
        .map(|Runs { runtime: m, reps, .. }| {
            let (outcome, verdict) = verdict::combine(&reps.iter().map(|r| &r.verdict).collect::<Vec<_>>());
            ModeResult { mode: m, runtime: m.runtime(), metric: m.chapter_metric().into(), reps, outcome, verdict }
        })
        .collect();
    let mut warnings = advice(&results, p);
    if let Some(s) = &session {
        if s.lost() > 0 {
            warnings.push(format!("the tracer lost {} events (ring full): FUSE and block counts may be short", s.lost()));
        }
    }
    let kinds: Vec<_> = {
        let mut k: Vec<_> = modes.iter().map(|m| m.runtime()).collect();
        k.dedup();
        k
    };
    Ok(Report {
        header: Header::collect("io", &kinds),
        params: cfg.params,
        traced: cfg.trace,
        crash_check,
        background,
        results,
        skipped,
        warnings,
        reference: probe_file().reference,
        incomplete,
    })
}

/// Checks every mode, then runs a 4 KiB rep of each, so a missing engine, a stale image
/// without the worker, or an unwritable target fails before minutes of measurement.
fn usable_modes(cfg: &Config, launcher: &mut Launcher, stderr: &mut StderrSink) -> Result<(Vec<Mode>, Vec<Skipped>)> {
    let tiny = ["--size", "4096", "--block", "4096", "--sync", "none", "--pause"].map(String::from);
    let trial = |m: Mode| -> Result<Mode> {
        launcher.check(m)?;
        let mut launch = launcher.launch(m, &tiny)?;
        handshake::drive(&mut launch.cmd, stderr, &mut |_, _| Ok(())).map_err(|e| {
            if format!("{e:#}").contains("unrecognized subcommand") {
                e.context("the test image's probe has no worker (stale image): rebuild it with `sudo probe image build`")
            } else {
                e.context("trial run of the worker")
            }
        })?;
        Ok(m)
    };
    let (ok, failed) = open_each(&cfg.modes, cfg.explicit, "storage mode can run here", trial, |m, e| e.context(format!("{m} cannot run here")))?;
    let skipped = failed.into_iter().map(|(m, e)| Skipped { mode: m, reason: format!("{m}: {e:#}") }).collect();
    Ok((ok, skipped))
}

fn open_tracer() -> Result<Session> {
    let opts = Options { tracepoints: events::TRACEPOINTS.iter().map(|s| s.to_string()).collect(), page_fault_period: None, switch_stacks: false };
    crate::trace::open(&opts).context("--fsync-trace needs the kernel tracer (root, tracefs)")
}

/// The disks' write rate while probe does nothing, after a sync so that earlier dirty data
/// does not count as background.
fn measure_background(idle_ms: u64) -> Result<Background> {
    // SAFETY: sync(2) has no preconditions and cannot fail.
    unsafe { libc::sync() };
    let a = diskstats::Snapshot::read().context("reading /proc/diskstats")?;
    std::thread::sleep(Duration::from_millis(idle_ms));
    let b = diskstats::Snapshot::read().context("reading /proc/diskstats")?;
    let secs = idle_ms as f64 / 1e3;
    let mut bg = Background { idle_ms, ..Default::default() };
    for (name, now) in &b.0 {
        let Some(before) = a.get(name) else { continue };
        let d = now.since(before);
        if d.sectors_written > 0 {
            bg.bytes_per_s.insert(name.clone(), d.bytes_written() as f64 / secs.max(1e-3));
        }
        if let Some(f) = d.flushes.filter(|f| *f > 0) {
            bg.flushes_per_s.insert(name.clone(), f as f64 / secs.max(1e-3));
        }
    }
    Ok(bg)
}

/// One boundary: when (host CLOCK_MONOTONIC) and every disk's counters.
struct Mark {
    mono_ns: u64,
    disks: diskstats::Snapshot,
}

fn measure_rep(
    mut launch: mode::Launch,
    stderr: &mut StderrSink,
    mut session: Option<&mut Session>,
    mut scratch: Option<&mut crash::Scratch>,
    bg: &Background,
    p: &Params,
    rep: u32,
) -> Result<Rep> {
    let mut marks: Vec<Mark> = Vec::new();
    let mut in_scratch: Option<PathBuf> = None;
    let mut capture: Option<crash::Capture> = None;
    let mut backing: Option<Backing> = None;
    let mut trace: Option<TraceEvidence> = None;
    let timing = handshake::drive(&mut launch.cmd, stderr, &mut |point, target| {
        if point == Point::Ready {
            backing = Some(backing::resolve(target));
            if let Some(s) = scratch.as_deref() {
                in_scratch = Some(crash::file_in_scratch(target, s.dir()).context("--crash-check")?);
            }
            // Whatever the engine and the last rep left dirty goes to disk now, not inside
            // this rep's windows.
            // SAFETY: sync(2) has no preconditions.
            unsafe { libc::sync() };
            if let Some(s) = session.as_deref_mut() {
                s.drain();
            }
        }
        marks.push(Mark { mono_ns: monotonic_ns(), disks: diskstats::Snapshot::read().context("reading /proc/diskstats")? });
        if point == Point::Synced {
            // The power cut: the disk as it stands now, the worker still paused.
            if let Some(s) = scratch.as_deref_mut() {
                capture = Some(s.capture().context("--crash-check: capturing the scratch disk")?);
            }
            if let (Some(s), Some(b)) = (session.as_deref_mut(), backing.as_ref()) {
                // Summarized now, while the worker and the FUSE daemon still live to be named.
                trace = Some(trace_evidence(&s.drain(), &s.missing.clone(), &marks, b));
            }
        }
        Ok(())
    })?;
    drop(launch.overlay);
    drop(launch.dir);
    let backing = backing.context("the worker never reported `ready`")?;
    let disk = match &backing.store {
        Store::Device(d) => {
            let bottoms: Vec<String> = d.bottoms().iter().map(|n| n.name.clone()).collect();
            Some(disk_evidence(&d.name, &bottoms, &marks, bg))
        }
        _ => None,
    };
    let verdict = verdict::decide(&facts(p, &backing, disk.as_ref(), trace.as_ref()));
    let crash = match (scratch, capture, in_scratch) {
        (Some(s), Some(c), Some(rel)) => {
            let mut survived = s.read_back(c, &rel, timing.bytes).context("--crash-check: reading the file back")?;
            survived.agrees = survived.agreement(verdict.outcome);
            Some(survived)
        }
        _ => None,
    };
    Ok(Rep { rep, bytes: timing.bytes, write_ns: timing.write_ns, sync_ns: timing.sync_ns, backing, disk, trace, verdict, crash })
}

fn disk_window(device: &str, bottoms: &[String], from: &Mark, to: &Mark, bg: &Background) -> DiskWindow {
    let delta = |name: &str| match (to.disks.get(name), from.disks.get(name)) {
        (Some(b), Some(a)) => Some(b.since(a)),
        _ => None,
    };
    let d = delta(device).unwrap_or_default();
    let flushes = bottoms.iter().map(|b| delta(b).and_then(|c| c.flushes)).sum::<Option<u64>>();
    let host_ns = to.mono_ns.saturating_sub(from.mono_ns);
    let rate = bg.bytes_per_s.get(device).copied().unwrap_or(0.0);
    let background_bytes = (rate * host_ns as f64 / 1e9) as u64;
    DiskWindow {
        host_ns,
        raw_bytes: d.bytes_written(),
        background_bytes,
        bytes: d.bytes_written().saturating_sub(background_bytes),
        write_requests: d.writes,
        flushes: flushes.filter(|_| !bottoms.is_empty()),
    }
}

fn disk_evidence(device: &str, bottoms: &[String], marks: &[Mark], bg: &Background) -> DiskEvidence {
    let write_phase = disk_window(device, bottoms, &marks[0], &marks[1], bg);
    let sync_phase = disk_window(device, bottoms, &marks[1], &marks[2], bg);
    DiskEvidence {
        device: device.to_string(),
        flush_devices: bottoms.to_vec(),
        before_return_bytes: write_phase.bytes + sync_phase.bytes,
        write_phase,
        sync_phase,
    }
}

fn trace_evidence(evs: &[crate::trace::event::Event], missing: &[String], marks: &[Mark], b: &Backing) -> TraceEvidence {
    let dev = match &b.store {
        Store::Device(d) => Some(d),
        _ => None,
    };
    let fuse = b.mount.as_ref().filter(|m| m.fstype.starts_with("fuse")).map(|m| events::kernel_dev(m.major, m.minor));
    let filter = events::Filter {
        disks: dev.map(|d| d.bottoms().iter().map(|n| events::kernel_dev(n.major, n.minor)).collect()).unwrap_or_default(),
        fs: dev.map(|d| events::kernel_dev(d.major, d.minor)),
        fuse,
    };
    let comm = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).map(|s| s.trim().to_string()).unwrap_or_else(|_| "(exited)".into())
    };
    TraceEvidence {
        missing: missing.to_vec(),
        write_phase: events::window(evs, marks[0].mono_ns, marks[1].mono_ns, &filter, &comm),
        sync_phase: events::window(evs, marks[1].mono_ns, marks[2].mono_ns, &filter, &comm),
    }
}

/// Options that make a FUSE overlay daemon acknowledge fsync without syncing.
const FUSE_NO_SYNC: &[&str] = &["volatile", "fsync=0"];

fn facts<'a>(p: &Params, b: &'a Backing, disk: Option<&DiskEvidence>, trace: Option<&TraceEvidence>) -> verdict::Facts<'a> {
    let overlay_volatile = b
        .mount
        .as_ref()
        .is_some_and(|m| m.fstype == "overlay" && (m.has_option("volatile") || m.super_option("fsync") == Some("volatile")));
    let fuse = b.fuse_daemon.as_ref().map(|d| FuseFacts {
        daemon: format!("{} (pid {})", d.comm, d.pid),
        no_sync_options: d.options.iter().filter(|o| FUSE_NO_SYNC.contains(&o.as_str())).cloned().collect(),
        fsync_requests: trace.map(|t| t.sync_phase.fuse_requests.get("FSYNC").copied().unwrap_or(0)),
        fsync_errors: trace.map(|t| t.sync_phase.fuse_errors.keys().filter(|k| k.starts_with("FSYNC")).cloned().collect()).unwrap_or_default(),
        daemon_fs_syncs: trace.map(|t| t.sync_phase.fs_syncs.iter().filter(|c| c.pid == d.pid).map(|c| c.count).sum()),
    });
    let flushes = disk.and_then(|d| Some(d.write_phase.flushes? + d.sync_phase.flushes?));
    verdict::Facts {
        size: p.size,
        sync: p.sync,
        store: &b.store,
        device_bytes: disk.map_or(0, |d| d.before_return_bytes),
        flushes,
        overlay_volatile,
        fuse,
    }
}

/// Warnings that say what may be wrong with these numbers, and what to do.
fn advice(results: &[ModeResult], p: &Params) -> Vec<String> {
    let mut out = Vec::new();
    if p.reps < 3 {
        out.push(format!("only {} rep(s) per mode: the chapter used 3; use --reps 3 or more to see the spread", p.reps));
    }
    for r in results {
        for rep in &r.reps {
            if let Some(c) = rep.crash.as_ref().filter(|c| c.agrees == Some(false)) {
                out.push(format!(
                    "{} rep {}: the crash check disagrees with the counters: {} said {}, the capture held {} of {} bytes",
                    r.mode,
                    rep.rep,
                    rep.verdict.decided_by,
                    rep.verdict.outcome.label(),
                    c.intact_bytes,
                    rep.bytes
                ));
            }
        }
        if r.outcome.is_none() {
            out.push(format!("{}: the reps disagree ({}); the per-rep evidence is in the JSON. Rerun on a quieter machine", r.mode, r.verdict));
        }
        let noisy = r.reps.iter().filter_map(|x| x.disk.as_ref()).map(|d| d.write_phase.background_bytes + d.sync_phase.background_bytes).max();
        if let Some(n) = noisy.filter(|n| *n as f64 > 0.05 * p.size as f64) {
            out.push(format!(
                "{}: the disk's background writes ({:.1} MiB expected in one rep) exceed 5% of the file: verdicts near the 95% bar are uncertain; stop other disk activity or use a larger --size",
                r.mode,
                n as f64 / (1u64 << 20) as f64
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::diskstats::DiskCounters;

    #[test]
    fn probe_file_parses_and_matches_the_chapter() {
        let p = probe_file();
        assert_eq!((p.defaults.size_mib, p.defaults.block_kib), (100, 1024));
        for m in &p.defaults.modes {
            assert!(m.parse::<Mode>().is_ok(), "{m}");
        }
        for (mode, reps) in &p.reference.reps {
            let mean = reps.iter().sum::<f64>() / reps.len() as f64;
            assert!((mean - p.reference.mean[mode]).abs() < 1.0, "{mode}: {mean}");
        }
    }

    fn mark(ns: u64, sectors: u64, flushes: u64) -> Mark {
        let c = DiskCounters { writes: sectors / 8, sectors_written: sectors, flushes: Some(flushes) };
        Mark { mono_ns: ns, disks: diskstats::Snapshot([("vda".to_string(), c)].into_iter().collect()) }
    }

    #[test]
    fn background_is_subtracted_per_window() {
        let mut bg = Background::default();
        bg.bytes_per_s.insert("vda".into(), 1e6);
        // 0.5 s of writing (+1000 sectors), then 0.1 s of sync (+204800 sectors, 1 flush).
        let marks = [mark(0, 0, 0), mark(500_000_000, 1000, 0), mark(600_000_000, 205_800, 1)];
        let d = disk_evidence("vda", &["vda".to_string()], &marks, &bg);
        assert_eq!(d.write_phase.raw_bytes, 512_000);
        assert_eq!(d.write_phase.background_bytes, 500_000);
        assert_eq!(d.write_phase.bytes, 12_000);
        assert_eq!(d.sync_phase.bytes, 204_800 * 512 - 100_000);
        assert_eq!(d.sync_phase.flushes, Some(1));
        assert_eq!(d.before_return_bytes, d.write_phase.bytes + d.sync_phase.bytes);
    }

    #[test]
    fn bytes_count_at_the_partition_and_flushes_at_the_disk() {
        let c = |sectors, flushes| DiskCounters { writes: 1, sectors_written: sectors, flushes };
        let snap = |p: u64, d: u64, f: u64| diskstats::Snapshot(
            [("vda1".to_string(), c(p, Some(0))), ("vda".to_string(), c(d, Some(f))), ("vdb".to_string(), c(0, Some(f)))].into_iter().collect(),
        );
        let marks = [
            Mark { mono_ns: 0, disks: snap(0, 0, 0) },
            Mark { mono_ns: 1, disks: snap(100, 100, 0) },
            Mark { mono_ns: 2, disks: snap(200, 200, 2) },
        ];
        let bg = Background::default();
        let d = disk_evidence("vda1", &["vda".to_string()], &marks, &bg);
        assert_eq!(d.before_return_bytes, 200 * 512);
        assert_eq!((d.write_phase.flushes, d.sync_phase.flushes), (Some(0), Some(2)));
        let two = disk_evidence("vda1", &["vda".to_string(), "vdb".to_string()], &marks, &bg);
        assert_eq!(two.sync_phase.flushes, Some(4), "summed over every bottom disk");
        let gone = disk_evidence("vda1", &["sdz".to_string()], &marks, &bg);
        assert_eq!(gone.sync_phase.flushes, None, "a disk without counters is not read as 0");
    }

    #[test]
    fn throughput_is_dd_style() {
        let r = Rep {
            rep: 1,
            bytes: 100 << 20,
            write_ns: 100_000_000,
            sync_ns: 100_000_000,
            backing: Backing { mount: None, root_mount: None, store: Store::Memory { fstype: "tmpfs".into() }, fuse_daemon: None },
            disk: None,
            trace: None,
            verdict: Verdict { outcome: Outcome::NotDurable, decided_by: String::new(), mechanism: None },
            crash: None,
        };
        assert!((r.write_mbps() - 1048.576).abs() < 1e-6);
        assert!((r.total_mbps() - 524.288).abs() < 1e-6);
        assert_eq!(r.sync_ms(), 100.0);
        assert_eq!(r.device_share(), None);
    }
}

//! `probe io --crash-check`: a simulated power cut as the proof of each verdict. The modes
//! write to a small scratch disk made from a loop file; when the sync call returns (the
//! worker paused at that boundary), the loop's backing file is copied — that copy is the
//! disk as a power cut at that instant would leave it — then mounted on a loop device of its
//! own and the file read back. A durable verdict must find every byte there, NOT durable
//! must not.
//!
//! Why a copy of the backing file is the disk's state: what the loop device has received is
//! exactly what is in its backing file (the loop writes each request into it before
//! completing it); what the scratch filesystem still holds in its own page cache is not.
//!
//! Where the kernel has device-mapper, the default is what xfstests does instead
//! (logwrites.rs): dm-log-writes between the loop and the filesystem, a mark put in its log
//! at sync return, and the log replayed up to the mark onto the image as it was when the
//! log began. That log holds a write only once a cache flush covered it, so the capture is
//! what a disk with a volatile write cache keeps, which the copy cannot model. Kernels
//! without device-mapper (and `--crash-method copy`) get the copy.
//!
//! What could change the backing file while it is copied, and how it is held off:
//! - the writer: paused by the worker protocol at `synced` until the copy is done;
//! - background writeback of the scratch filesystem's dirty pages (the volatile cases'
//!   data): vm.dirty_writeback_centisecs is set to 0 (no periodic flusher wakeups) and
//!   vm.dirty_expire_centisecs to an hour for the whole check, and restored after, also on
//!   error and Ctrl-C (`WritebackHeld`). The file is far below vm.dirty_background_ratio of
//!   any host's memory, so the threshold flusher does not start either;
//! - the journal's periodic commit: ext4 and btrfs are mounted with `commit=600`.
//!
//! The copy is mounted read-only but on a writable loop device, so the filesystem replays
//! its journal (ext4, xfs log, btrfs log tree) as the first mount after a real reboot does:
//! what an fsync made durable is often only in the journal at that instant, and norecovery
//! would hide it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::logwrites;
use super::protocol::Target;
use super::verdict::Outcome;
use crate::sys::mountinfo;

/// The file the crash check writes unless --size says otherwise.
pub const DEFAULT_FILE_BYTES: u64 = 16 << 20;
/// The byte the worker writes (worker.rs): every byte of a survived file is this.
const PATTERN: u8 = 0xA5;

#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ScratchFs {
    Ext4,
    Xfs,
    Btrfs,
}

impl ScratchFs {
    pub fn name(self) -> &'static str {
        match self {
            ScratchFs::Ext4 => "ext4",
            ScratchFs::Xfs => "xfs",
            ScratchFs::Btrfs => "btrfs",
        }
    }

    /// The scratch disk's size: each filesystem's minimum with room for the file (mkfs.xfs
    /// refuses less than 300 MB, btrfs wants ~114 MiB); the copy skips holes, so only what
    /// mkfs and the modes wrote is copied.
    pub fn scratch_bytes(self) -> u64 {
        match self {
            ScratchFs::Ext4 => 128 << 20,
            ScratchFs::Btrfs => 192 << 20,
            ScratchFs::Xfs => 320 << 20,
        }
    }

    fn mkfs(self) -> (&'static str, &'static [&'static str]) {
        match self {
            ScratchFs::Ext4 => ("mkfs.ext4", &["-q", "-F"]),
            ScratchFs::Xfs => ("mkfs.xfs", &["-q", "-f"]),
            ScratchFs::Btrfs => ("mkfs.btrfs", &["-q", "-f"]),
        }
    }

    fn mount_options(self) -> &'static str {
        match self {
            ScratchFs::Ext4 | ScratchFs::Btrfs => "commit=600",
            ScratchFs::Xfs => "defaults",
        }
    }

    /// Options for mounting the copy beside the still-mounted original: XFS refuses a second
    /// filesystem with the same UUID unless told.
    fn copy_options(self) -> &'static str {
        match self {
            ScratchFs::Xfs => "ro,nouuid",
            ScratchFs::Ext4 | ScratchFs::Btrfs => "ro",
        }
    }
}

fn run(cmd: &mut Command) -> Result<String> {
    let what = format!("{cmd:?}");
    let out = cmd.output().with_context(|| format!("starting {what}"))?;
    if !out.status.success() {
        bail!("{what} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A loop device on `file`, detached when dropped.
struct Loop(String);

impl Loop {
    fn attach(file: &Path) -> Result<Loop> {
        let dev = run(Command::new("losetup").args(["-f", "--show"]).arg(file))
            .with_context(|| format!("attaching {} to a loop device (needs root and a free /dev/loopN)", file.display()))?;
        Ok(Loop(dev))
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        if let Err(e) = run(Command::new("losetup").args(["-d", &self.0])) {
            eprintln!("probe: could not detach {}: {e:#}", self.0);
        }
    }
}

/// A mount point with a filesystem on it: everything mounted under it (a podman run's
/// leftovers, say) and then it are unmounted, and the directory removed, when dropped.
struct Mounted(PathBuf);

impl Mounted {
    fn mount(dev: &str, at: &Path, fstype: &str, options: &str) -> Result<Mounted> {
        std::fs::create_dir(at).with_context(|| format!("creating mount point {}", at.display()))?;
        let guard = Mounted(at.to_path_buf());
        run(Command::new("mount").args(["-t", fstype, "-o", options, dev]).arg(at))
            .with_context(|| format!("mounting the {fstype} on {dev}"))?;
        Ok(guard)
    }
}

/// Unmounts `dir` and everything mounted under it.
fn unmount_under(dir: &Path) {
    let mounts = mountinfo::read(Path::new("/proc/self/mountinfo")).unwrap_or_default();
    // Latest first, so each unmount leaves its parent unbusy.
    for m in mounts.iter().rev().filter(|m| Path::new(&m.mount_point).starts_with(dir)) {
        if let Err(e) = nix::mount::umount2(Path::new(&m.mount_point), nix::mount::MntFlags::empty()) {
            eprintln!("probe: could not unmount {}: {e}", m.mount_point);
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        unmount_under(&self.0);
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Podman's run root for the check: short (podman refuses one over 50 characters, which a
/// path on the scratch disk can exceed) and in /run, where runtime state belongs; whatever
/// podman mounted there is unmounted, and the tree removed, when dropped.
pub struct RunRoot(PathBuf);

impl RunRoot {
    pub fn create() -> Result<RunRoot> {
        let dir = PathBuf::from(format!("/run/{}io-crash-{}", crate::ground::NAME_PREFIX, std::process::id()));
        std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(RunRoot(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for RunRoot {
    fn drop(&mut self) {
        unmount_under(&self.0);
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            eprintln!("probe: could not remove {}: {e}", self.0.display());
        }
    }
}

/// A file or directory tree removed when dropped.
struct Removed(PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        // A mount left under it (an unmount that failed) must not have its files deleted.
        let mounts = mountinfo::read(Path::new("/proc/self/mountinfo")).unwrap_or_default();
        if mounts.iter().any(|m| Path::new(&m.mount_point).starts_with(&self.0)) {
            eprintln!("probe: {} still has a mount under it; left in place", self.0.display());
            return;
        }
        let r = if self.0.is_dir() { std::fs::remove_dir_all(&self.0) } else { std::fs::remove_file(&self.0) };
        match r {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => eprintln!("probe: could not remove {}: {e}", self.0.display()),
            _ => {}
        }
    }
}

/// vm.dirty_* raised for the check and put back when dropped.
struct WritebackHeld(Vec<(&'static str, String)>);

const HELD: [(&str, &str); 2] = [
    // 0: the flusher threads never wake up on their own to write old dirty pages.
    ("/proc/sys/vm/dirty_writeback_centisecs", "0"),
    // An hour: nothing is old enough to be written back by age during the check.
    ("/proc/sys/vm/dirty_expire_centisecs", "360000"),
];

impl WritebackHeld {
    fn hold() -> Result<WritebackHeld> {
        let mut held = WritebackHeld(Vec::new());
        for (path, value) in HELD {
            let old = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
            std::fs::write(path, value).with_context(|| format!("writing {value} to {path} (needs root)"))?;
            held.0.push((path, old.trim().to_string()));
        }
        Ok(held)
    }
}

impl Drop for WritebackHeld {
    fn drop(&mut self) {
        for (path, old) in &self.0 {
            if let Err(e) = std::fs::write(path, old) {
                eprintln!("probe: could not restore {path} to {old}: {e}");
            }
        }
    }
}

/// How the disk is captured at sync return.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// dm-log-writes where the kernel has device-mapper, else the copy.
    Auto,
    /// A mark in a dm-log-writes log at sync return, the log replayed up to it (xfstests'
    /// way): only writes a cache flush covered count, as on a disk with a volatile cache.
    DmLogWrites,
    /// The loop's backing file copied at sync return: every write the loop received counts.
    Copy,
}

impl Method {
    /// Why this method comes to the copy on this host (None: dm-log-writes will be tried), or
    /// why the method asked for cannot run here.
    pub fn copy_reason(self) -> Result<Option<String>> {
        match self {
            Method::Copy => Ok(Some("asked for with --crash-method copy".into())),
            Method::Auto => Ok(logwrites::unavailable()),
            Method::DmLogWrites => match logwrites::unavailable() {
                Some(why) => bail!("--crash-method dm-log-writes: {why}; use --crash-method copy (or auto)"),
                None => Ok(None),
            },
        }
    }
}

/// The copy keeps whatever the loop device received, flushed or not: it stands for a disk
/// without a volatile cache, so it cannot judge writes that never ask for a flush and rely on
/// none (O_DIRECT's verdict turns on the disk cache). dm-log-writes keeps only flushed writes,
/// so it can.
pub fn refuse_direct(copy: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "--crash-check cannot judge --sync direct with a copy of the disk ({copy}): a copy keeps every write the scratch disk received, flushed or not, so it cannot stand for a volatile disk cache; use --sync fdatasync, fsync or none, or --crash-method dm-log-writes on a kernel with device-mapper"
    )
}

/// dm-log-writes between the scratch loop and its filesystem, with what a replay needs: the
/// log's file and the image as it was when logging began. Drop order is field order.
struct LogWrites {
    dev: logwrites::Device,
    log_disk: Loop,
    log_file: PathBuf,
    start: PathBuf,
}

/// The log's size: sparse, so only what is logged takes space; room for every write of a
/// long check (each rep's file, metadata and journal, podman's layers).
const LOG_BYTES: u64 = 8 << 30;

impl LogWrites {
    fn create(base: &Path, image: &Path, disk: &Loop) -> Result<LogWrites> {
        let start = base.join("start.img");
        copy_sparse(image, &start).with_context(|| format!("copying {} to {}", image.display(), start.display()))?;
        let log_file = base.join("log.img");
        let f = std::fs::File::create_new(&log_file).with_context(|| format!("creating {}", log_file.display()))?;
        f.set_len(LOG_BYTES).with_context(|| format!("sizing {}", log_file.display()))?;
        drop(f);
        let log_disk = Loop::attach(&log_file)?;
        let sectors = std::fs::metadata(image).with_context(|| format!("stat {}", image.display()))?.len() / 512;
        let name = base.file_name().expect("named by create").to_string_lossy().into_owned();
        let dev = logwrites::Device::create(&name, &disk.0, &log_disk.0, sectors)?;
        Ok(LogWrites { dev, log_disk, log_file, start })
    }

    /// The capture for `mark`: the starting image with the log replayed up to the mark.
    /// The kernel writes the log from a thread of its own, so a mark made a moment ago may
    /// not be in the file yet: retried for a few seconds.
    fn replay(&self, mark: &str, out: &Path) -> Result<logwrites::Replayed> {
        let started = Instant::now();
        loop {
            let _ = std::fs::remove_file(out);
            copy_sparse(&self.start, out).with_context(|| format!("copying {} to {}", self.start.display(), out.display()))?;
            match logwrites::replay(&self.log_file, out, mark) {
                Ok(r) => return Ok(r),
                Err(e) if started.elapsed() > Duration::from_secs(5) => {
                    return Err(e).with_context(|| format!("replaying {} on {}", self.log_file.display(), self.log_disk.0))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

/// The scratch disk: a loop file in `--dir`, a filesystem on it, mounted (through
/// dm-log-writes when that is the method); all of it (and the writeback setting) undone when
/// dropped, in reverse order of creation.
pub struct Scratch {
    pub fs: ScratchFs,
    /// How captures are made, and why that way: for the report.
    pub method: String,
    // Field order is drop order: unmount, remove the dm device, detach, remove the files,
    // restore writeback.
    mounted: Mounted,
    log: Option<LogWrites>,
    disk: Loop,
    base: Removed,
    _writeback: WritebackHeld,
    image: PathBuf,
    copies: u32,
}

impl Scratch {
    pub fn create(dir: &Path, fs: ScratchFs, method: Method) -> Result<Scratch> {
        let base = dir.join(format!("{}io-crash-{}", crate::ground::NAME_PREFIX, std::process::id()));
        std::fs::create_dir(&base).with_context(|| format!("creating {} (pass --dir DIR on a writable disk)", base.display()))?;
        let base_guard = Removed(base.clone());
        let writeback = WritebackHeld::hold()?;
        let image = base.join("scratch.img");
        let f = std::fs::File::create(&image).with_context(|| format!("creating {}", image.display()))?;
        f.set_len(fs.scratch_bytes()).with_context(|| format!("sizing {}", image.display()))?;
        drop(f);
        let (mkfs, args) = fs.mkfs();
        run(Command::new(mkfs).args(args).arg(&image))
            .with_context(|| format!("{mkfs} (install {})", if fs == ScratchFs::Ext4 { "e2fsprogs" } else { "xfsprogs / btrfs-progs" }))?;
        let disk = Loop::attach(&image)?;
        let (log, why_copy) = match method.copy_reason()? {
            Some(why) => (None, why),
            None => match LogWrites::create(&base, &image, &disk) {
                Ok(l) => (Some(l), String::new()),
                Err(e) if method == Method::Auto => (None, format!("dm-log-writes failed: {e:#}")),
                Err(e) => return Err(e.context("--crash-method dm-log-writes")),
            },
        };
        let (dev, method) = match &log {
            Some(l) => (
                l.dev.path(),
                format!("dm-log-writes {} over {} (log on {}), a mark at each sync return", l.dev.path(), disk.0, l.log_disk.0),
            ),
            None => (disk.0.clone(), format!("copy of {}'s backing file at each sync return ({why_copy})", disk.0)),
        };
        let mounted = Mounted::mount(&dev, &base.join("mnt"), fs.name(), fs.mount_options())?;
        Ok(Scratch { fs, method, mounted, log, disk, base: base_guard, _writeback: writeback, image, copies: 0 })
    }

    /// Where the modes write.
    pub fn dir(&self) -> &Path {
        &self.mounted.0
    }

    /// The device the scratch filesystem is mounted from.
    pub fn device(&self) -> String {
        self.log.as_ref().map_or_else(|| self.disk.0.clone(), |l| l.dev.path())
    }

    /// Whether a capture keeps only what a cache flush covered (dm-log-writes), so that it
    /// stands for a disk with a volatile cache; the copy keeps every write received.
    pub fn models_disk_cache(&self) -> bool {
        self.log.is_some()
    }

    /// The disk at this instant: a mark in the log, or a copy beside it. Called with the
    /// writer paused.
    pub fn capture(&mut self) -> Result<Capture> {
        self.copies += 1;
        let n = self.copies;
        let start = Instant::now();
        let at = match &self.log {
            Some(l) => {
                let mark = format!("probe-sync-{n}");
                l.dev.mark(&mark).context("marking the dm-log-writes log")?;
                Captured::Mark(mark)
            }
            None => {
                let path = self.base.0.join(format!("capture-{n}.img"));
                let guard = Removed(path.clone());
                copy_sparse(&self.image, &path).with_context(|| format!("copying {} to {}", self.image.display(), path.display()))?;
                Captured::Copy(guard)
            }
        };
        Ok(Capture { n, at, ms: start.elapsed().as_secs_f64() * 1e3 })
    }

    /// Mounts a capture as the first boot after the power cut would, and reads `rel` (a path
    /// inside the scratch filesystem) back.
    pub fn read_back(&self, capture: Capture, rel: &Path, size: u64) -> Result<Survived> {
        let (file, method) = match capture.at {
            Captured::Copy(f) => (f, format!("copy of the loop's backing file, {:.0} ms with the writer paused", capture.ms)),
            Captured::Mark(mark) => {
                let l = self.log.as_ref().expect("marks are made only with a log");
                let path = self.base.0.join(format!("capture-{}.img", capture.n));
                let guard = Removed(path.clone());
                let r = l.replay(&mark, &path)?;
                let how = format!(
                    "dm-log-writes replayed to the mark made at sync return ({:.0} ms): {} flushed write(s), {:.1} MiB, {} flush(es) since the log began",
                    capture.ms,
                    r.writes,
                    r.bytes as f64 / (1u64 << 20) as f64,
                    r.flushes
                );
                (guard, how)
            }
        };
        let disk = Loop::attach(&file.0)?;
        let at = self.base.0.join(format!("check-{}", capture.n));
        let mounted = Mounted::mount(&disk.0, &at, self.fs.name(), self.fs.copy_options())
            .context("mounting the capture (journal replay, as after a reboot)")?;
        let path = at.join(rel.strip_prefix("/").unwrap_or(rel));
        let (found, file_bytes, intact_bytes) = match std::fs::File::open(&path) {
            Ok(mut f) => {
                let mut buf = vec![0u8; 1 << 20];
                let (mut total, mut intact) = (0u64, 0u64);
                loop {
                    let n = f.read(&mut buf).with_context(|| format!("reading {} from the capture", path.display()))?;
                    if n == 0 {
                        break;
                    }
                    total += n as u64;
                    intact += buf[..n].iter().filter(|b| **b == PATTERN).count() as u64;
                }
                (true, total, intact)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (false, 0, 0),
            Err(e) => return Err(e).with_context(|| format!("opening {} in the capture", path.display())),
        };
        drop(mounted);
        drop(disk);
        drop(file);
        Ok(Survived {
            file: rel.display().to_string(),
            copy_ms: capture.ms,
            method,
            found,
            file_bytes,
            intact_bytes,
            complete: intact_bytes >= size,
            agrees: None,
        })
    }
}

/// Copies only the data extents (SEEK_DATA/SEEK_HOLE, which see data still in the page
/// cache too), so a mostly empty scratch disk copies in milliseconds.
fn copy_sparse(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;
    let src = std::fs::File::open(from)?;
    let dst = std::fs::File::create_new(to)?;
    let len = src.metadata()?.len();
    dst.set_len(len)?;
    let seek = |off: u64, whence| {
        // SAFETY: lseek on an open fd has no memory effects.
        let r = unsafe { libc::lseek(src.as_raw_fd(), off as libc::off_t, whence) };
        if r < 0 { Err(std::io::Error::last_os_error()) } else { Ok(r as u64) }
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0;
    while off < len {
        let data = match seek(off, libc::SEEK_DATA) {
            Ok(d) => d,
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => break,
            Err(e) => return Err(e),
        };
        let end = seek(data, libc::SEEK_HOLE)?.min(len);
        let mut pos = data;
        while pos < end {
            let want = ((end - pos) as usize).min(buf.len());
            let n = src.read_at(&mut buf[..want], pos)?;
            if n == 0 {
                break;
            }
            dst.write_all_at(&buf[..n], pos)?;
            pos += n as u64;
        }
        off = end;
    }
    Ok(())
}

/// The disk as it stood at one sync return: a copy (removed when dropped), or a mark in the
/// log that `read_back` replays up to.
pub struct Capture {
    n: u32,
    at: Captured,
    /// How long making it took, with the writer paused.
    ms: f64,
}

enum Captured {
    Copy(Removed),
    Mark(String),
}

/// What the capture held of the file.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Survived {
    /// The file's path inside the scratch filesystem.
    pub file: String,
    /// How long the capture (a copy, or a mark in the log) took, with the writer paused.
    pub copy_ms: f64,
    /// How the disk was captured and read back (dm-log-writes or a copy).
    #[serde(default)]
    pub method: String,
    pub found: bool,
    pub file_bytes: u64,
    /// Bytes holding what the worker wrote.
    pub intact_bytes: u64,
    /// Every byte written is there.
    pub complete: bool,
    /// The counters' verdict and this agree (None: the counters did not decide).
    pub agrees: Option<bool>,
}

impl Survived {
    /// Does the power cut agree with the counters? None when the counters did not decide.
    pub fn agreement(&self, outcome: Outcome) -> Option<bool> {
        match outcome {
            Outcome::Durable => Some(self.complete),
            Outcome::NotDurable => Some(!self.complete),
            Outcome::Undecided => None,
        }
    }
}

/// The modes `--crash-check` runs unless told: bare and a bind volume (durable), the
/// kernel overlay with and without `volatile`, mounted by probe on the host and as the
/// native container's root, and podman `run --rm` with its storage on the scratch disk.
pub fn default_modes() -> Vec<super::mode::Mode> {
    use super::mode::Mode;
    vec![
        Mode::Bare,
        Mode::NativeBind,
        Mode::Overlay,
        Mode::OverlayVolatile,
        Mode::NativeOverlay,
        Mode::NativeOverlayVolatile,
        Mode::PodmanOverlay,
    ]
}

/// "12.0 of 12.0 MiB survived a power cut at sync return (copy 40 ms): agrees".
pub fn describe(c: &Survived, written: u64) -> String {
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    let held = if c.found {
        format!("{:.1} of {:.1} MiB survived", mib(c.intact_bytes), mib(written))
    } else {
        format!("the file did not survive (0 of {:.1} MiB)", mib(written))
    };
    let agrees = match c.agrees {
        Some(true) => "agrees with the counters",
        Some(false) => "DISAGREES with the counters",
        None => "the counters did not decide",
    };
    let how = if c.method.is_empty() { format!("copied in {:.0} ms", c.copy_ms) } else { c.method.clone() };
    format!("{held} a power cut at sync return ({} in the capture; {how}): {agrees}", c.file)
}

/// Where the worker's file is inside the scratch filesystem, from what the worker reported:
/// an overlay's file lives in its upper directory (a host path); a filesystem or a bind of
/// part of it shows the mounted subtree in mountinfo's `root`.
pub fn file_in_scratch(target: &Target, scratch_dir: &Path) -> Result<PathBuf> {
    let m = target.mount.as_ref().context("the worker could not read its mountinfo")?;
    let inside = Path::new(&target.path).strip_prefix(&m.mount_point).unwrap_or(Path::new(""));
    if m.fstype == "overlay" {
        let upper = m.super_option("upperdir").context("overlay without an upper directory")?;
        let rel = Path::new(upper).strip_prefix(scratch_dir).with_context(|| {
            format!("the overlay's upper directory {upper} is not on the scratch disk {}", scratch_dir.display())
        })?;
        return Ok(Path::new("/").join(rel).join(inside));
    }
    if m.fstype.starts_with("fuse") {
        bail!("the crash check does not follow FUSE mounts ({} at {})", m.fstype, m.mount_point);
    }
    Ok(Path::new(&m.root).join(inside))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(path: &str, line: &str) -> Target {
        Target { path: path.into(), dev_major: 0, dev_minor: 0, mount: mountinfo::parse_line(line), root_mount: None }
    }

    #[test]
    fn the_file_is_found_in_the_upper_dir_or_under_the_bind_root() {
        let s = Path::new("/var/tmp/probe-io-crash-1/mnt");
        let bind = target("/mnt/testfile", "180 172 7:3 /probe-io-9-0 /mnt rw - ext4 /dev/loop3 rw");
        assert_eq!(file_in_scratch(&bind, s).unwrap(), Path::new("/probe-io-9-0/testfile"));
        let bare = target("/var/tmp/probe-io-crash-1/mnt/probe-io-9-1/testfile", "90 1 7:3 / /var/tmp/probe-io-crash-1/mnt rw - ext4 /dev/loop3 rw");
        assert_eq!(file_in_scratch(&bare, s).unwrap(), Path::new("/probe-io-9-1/testfile"));
        let ovl = target(
            "/tmp/testfile",
            "173 121 0:63 / / rw - overlay overlay rw,lowerdir=/l,upperdir=/var/tmp/probe-io-crash-1/mnt/root/overlay/ab/diff,workdir=/w",
        );
        assert_eq!(file_in_scratch(&ovl, s).unwrap(), Path::new("/root/overlay/ab/diff/tmp/testfile"));
        let elsewhere = target("/tmp/testfile", "173 121 0:63 / / rw - overlay overlay rw,upperdir=/var/lib/docker/x/diff");
        assert!(file_in_scratch(&elsewhere, s).unwrap_err().to_string().contains("not on the scratch disk"));
    }

    #[test]
    fn agreement_follows_the_outcome() {
        let s = Survived { file: "/f".into(), copy_ms: 1.0, method: String::new(), found: true, file_bytes: 8, intact_bytes: 8, complete: true, agrees: None };
        assert_eq!(s.agreement(Outcome::Durable), Some(true));
        assert_eq!(s.agreement(Outcome::NotDurable), Some(false));
        assert_eq!(s.agreement(Outcome::Undecided), None);
    }
}

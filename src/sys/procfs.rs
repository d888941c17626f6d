//! Readers of /proc: system memory as `free` computes it, a process's cgroups, its memory
//! (smaps_rollup) and status, and the process tree. The procfs crate parses the file's text
//! (its `FromBufRead` parsers take bytes, so they are tested on fixtures and fuzzed); the
//! readers here only add the path and the errno.

use std::path::{Path, PathBuf};

use ::procfs::process::SmapsRollup;
use ::procfs::{FromBufRead, Meminfo, ProcessCGroups};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {what}")]
    Parse { path: PathBuf, what: String },
}

impl ProcError {
    /// True when the process is gone (ESRCH from a /proc/PID file, or the directory vanished):
    /// callers walking live processes skip those instead of failing.
    pub fn is_gone(&self) -> bool {
        match self {
            ProcError::Read { source, .. } => {
                source.kind() == std::io::ErrorKind::NotFound || source.raw_os_error() == Some(libc::ESRCH)
            }
            ProcError::Parse { .. } => false,
        }
    }
}

pub fn read(path: &Path) -> Result<String, ProcError> {
    std::fs::read_to_string(path).map_err(|source| ProcError::Read { path: path.to_path_buf(), source })
}

/// Whether procfs-core can parse `text` without panicking: it cuts the last byte off each
/// meminfo field name (a panic inside a multi-byte character) and multiplies kB by 1024
/// unchecked (a panic in debug builds past 2^54 kB). The kernel writes ASCII and far smaller
/// figures, so text that fails this is no /proc file.
fn fit_for_crate(text: &str) -> bool {
    text.is_ascii() && text.split(|c: char| !c.is_ascii_digit()).all(|digits| digits.len() <= 16)
}

/// The /proc/meminfo fields `free` uses, in kB.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemInfo {
    pub total_kb: u64,
    pub free_kb: u64,
    /// None on kernels before 3.14.
    pub available_kb: Option<u64>,
    pub buffers_kb: u64,
    pub cached_kb: u64,
}

impl MemInfo {
    /// None unless the text holds every field procfs-core requires (all that kernels since
    /// 2.6 print: MemTotal, MemFree, Buffers, Cached, Slab, ...).
    pub fn parse(text: &str) -> Option<MemInfo> {
        if !fit_for_crate(text) {
            return None;
        }
        let m = Meminfo::from_buf_read(text.as_bytes()).ok()?;
        // The crate turns kB into bytes; the kB figures are what `free` computes with.
        Some(MemInfo {
            total_kb: m.mem_total / 1024,
            free_kb: m.mem_free / 1024,
            available_kb: m.mem_available.map(|b| b / 1024),
            buffers_kb: m.buffers / 1024,
            cached_kb: m.cached / 1024,
        })
    }

    /// The "used" column of `free` in procps-ng 4 (free(1): "calculated as total -
    /// available"). procps falls back to MemFree when MemAvailable is missing or exceeds
    /// MemTotal; so does this.
    pub fn used_kb(&self) -> u64 {
        let available = self.available_kb.filter(|&a| a <= self.total_kb).unwrap_or(self.free_kb);
        self.total_kb.saturating_sub(available)
    }

    /// What `free -m` prints for "used": kB shifted to MiB, truncated.
    pub fn used_mb(&self) -> u64 {
        self.used_kb() / 1024
    }
}

pub fn meminfo() -> Result<MemInfo, ProcError> {
    let path = Path::new("/proc/meminfo");
    MemInfo::parse(&read(path)?)
        .ok_or_else(|| ProcError::Parse { path: path.into(), what: "not a meminfo (a field such as MemTotal or MemFree is missing)".into() })
}

/// One line of /proc/PID/cgroup: `hierarchy-id:controllers:path`. The v2 line has id 0 and
/// no controllers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupLine {
    pub id: u32,
    pub controllers: Vec<String>,
    pub path: String,
}

/// None when a line is not `id:controllers:path`.
pub fn parse_cgroup(text: &str) -> Option<Vec<CgroupLine>> {
    let lines = ProcessCGroups::from_buf_read(text.as_bytes()).ok()?;
    Some(lines.into_iter().map(|l| CgroupLine { id: l.hierarchy, controllers: l.controllers, path: l.pathname }).collect())
}

pub fn cgroups_of(pid: u32) -> Result<Vec<CgroupLine>, ProcError> {
    let path = PathBuf::from(format!("/proc/{pid}/cgroup"));
    let text = read(&path)?;
    parse_cgroup(&text).ok_or_else(|| ProcError::Parse { path, what: "a line is not hierarchy-id:controllers:path".into() })
}

/// Resident and proportional set size of one process, kB (smaps_rollup, Linux 4.14+). PSS
/// divides every shared page among the processes mapping it, so a sum of PSS over a set of
/// processes counts each page once.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rollup {
    pub rss_kb: u64,
    pub pss_kb: u64,
}

impl std::ops::AddAssign for Rollup {
    fn add_assign(&mut self, o: Rollup) {
        self.rss_kb += o.rss_kb;
        self.pss_kb += o.pss_kb;
    }
}

pub fn parse_smaps_rollup(text: &str) -> Option<Rollup> {
    if !fit_for_crate(text) {
        return None;
    }
    let maps = SmapsRollup::from_buf_read(text.as_bytes()).ok()?.memory_map_rollup;
    let fields = &maps.iter().next()?.extension.map;
    // The crate turns kB into bytes.
    Some(Rollup { rss_kb: fields.get("Rss")? / 1024, pss_kb: fields.get("Pss")? / 1024 })
}

/// A kernel thread or a zombie has an empty smaps_rollup: zero, not an error.
pub fn rollup_of(pid: u32) -> Result<Rollup, ProcError> {
    let path = PathBuf::from(format!("/proc/{pid}/smaps_rollup"));
    let text = read(&path)?;
    if text.trim().is_empty() {
        return Ok(Rollup::default());
    }
    parse_smaps_rollup(&text).ok_or_else(|| ProcError::Parse { path, what: "no Rss/Pss lines".into() })
}

/// The /proc/PID/status fields used to pick processes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// comm: the executable's name, truncated by the kernel to 15 bytes.
    pub name: String,
    pub ppid: u32,
    /// Real uid.
    pub uid: u32,
}

// Hand-written: procfs-core's Status keeps only what precedes a second ':' (it would read the
// comm `kworker/u4:2` as `kworker/u4`) and fails on a file missing any of ~25 other fields.
pub fn parse_status(text: &str) -> Option<Status> {
    let field = |k: &str| text.lines().find_map(|l| l.strip_prefix(k)).map(str::trim);
    Some(Status {
        name: field("Name:")?.to_string(),
        ppid: field("PPid:")?.parse().ok()?,
        uid: field("Uid:")?.split_whitespace().next()?.parse().ok()?,
    })
}

pub fn status_of(pid: u32) -> Result<Status, ProcError> {
    let path = PathBuf::from(format!("/proc/{pid}/status"));
    let text = read(&path)?;
    parse_status(&text).ok_or_else(|| ProcError::Parse { path, what: "no Name/PPid/Uid lines".into() })
}

/// probe's own resident memory now and at its peak (VmRSS, VmHWM), in kB.
pub fn own_rss_kb() -> Result<(u64, u64), ProcError> {
    let path = PathBuf::from("/proc/self/status");
    let text = read(&path)?;
    let kb = |k: &str| text.lines().find_map(|l| l.strip_prefix(k))?.split_whitespace().next()?.parse().ok();
    kb("VmRSS:").zip(kb("VmHWM:")).ok_or_else(|| ProcError::Parse { path, what: "no VmRSS/VmHWM lines".into() })
}

/// The command line, split at NULs; empty for a kernel thread or a zombie.
// Hand-written: the crate's Process::cmdline fails on an argument that is not UTF-8.
pub fn cmdline_of(pid: u32) -> Result<Vec<String>, ProcError> {
    let path = PathBuf::from(format!("/proc/{pid}/cmdline"));
    let bytes = std::fs::read(&path).map_err(|source| ProcError::Read { path, source })?;
    Ok(split_cmdline(&bytes))
}

fn split_cmdline(bytes: &[u8]) -> Vec<String> {
    bytes.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

/// Every process (not thread) alive now.
// Hand-written: the crate's all_processes opens every /proc/PID, where only the numbers are needed.
pub fn all_pids() -> Result<Vec<u32>, ProcError> {
    let dir = Path::new("/proc");
    let entries = std::fs::read_dir(dir).map_err(|source| ProcError::Read { path: dir.into(), source })?;
    Ok(entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
}

/// The threads of `pid` (tids from /proc/PID/task); empty once the process is gone.
pub fn threads_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks.filter_map(|t| t.ok()?.file_name().to_str()?.parse().ok()).collect()
}

/// Direct children of `pid` (all its threads'), from /proc/PID/task/*/children (Linux 3.5+,
/// CONFIG_PROC_CHILDREN); empty once the process is gone.
// Hand-written: polled while a native start is timed; the crate opens /proc/PID and each task first.
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("children")).ok())
        .flat_map(|s| s.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<u32>>())
        .collect()
}

/// `pid` and all its descendants, parents before children.
pub fn tree_of(pid: u32) -> Vec<u32> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        out.extend(children_of(out[i]));
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This VM's file, less the fields nothing here reads and procfs-core does not require.
    const MEMINFO: &str = "\
MemTotal:       24684084 kB
MemFree:        23136828 kB
MemAvailable:   24192956 kB
Buffers:           52448 kB
Cached:          1230008 kB
SwapCached:            0 kB
Active:          2645072 kB
Inactive:       18574796 kB
SwapTotal:             0 kB
SwapFree:              0 kB
Dirty:               816 kB
Writeback:             0 kB
Mapped:           366980 kB
Slab:             785356 kB
Committed_AS:    1041396 kB
VmallocTotal:   34359738367 kB
VmallocUsed:        7704 kB
VmallocChunk:          0 kB
HugePages_Total:       0
";

    /// MEMINFO with its first three lines replaced.
    fn meminfo_with(head: &str) -> String {
        format!("{head}{}", MEMINFO.lines().skip(3).map(|l| format!("{l}\n")).collect::<String>())
    }

    #[test]
    fn meminfo_used_is_total_minus_available() {
        let m = MemInfo::parse(MEMINFO).unwrap();
        assert_eq!(m.used_kb(), 24_684_084 - 24_192_956);
        assert_eq!(m.used_mb(), (24_684_084 - 24_192_956) / 1024);
        assert_eq!(m.buffers_kb, 52_448);
    }

    #[test]
    fn meminfo_without_available_falls_back_to_free() {
        let m = MemInfo::parse(&meminfo_with("MemTotal: 1000 kB\nMemFree: 300 kB\n")).unwrap();
        assert_eq!(m.available_kb, None);
        assert_eq!(m.used_kb(), 700);
        let odd = MemInfo::parse(&meminfo_with("MemTotal: 1000 kB\nMemFree: 300 kB\nMemAvailable: 5000 kB\n")).unwrap();
        assert_eq!(odd.used_kb(), 700);
        assert!(MemInfo::parse(&meminfo_with("MemFree: 3 kB\n")).is_none());
        assert!(MemInfo::parse("MemTotal: 1000 kB\nMemFree: 300 kB\n").is_none(), "a file missing fields every kernel prints is not a meminfo");
        assert!(MemInfo::parse(&meminfo_with("MemTotal: 1000 kB\nMemFree: 300 kB\nSwapCaché 1\n")).is_none());
    }

    #[test]
    fn cgroup_file_hybrid() {
        let text = "9:name=systemd:/docker/abc\n4:memory:/docker/abc\n1:cpu,cpuacct:/docker/abc\n0::/docker/abc\n";
        let l = parse_cgroup(text).unwrap();
        assert_eq!(l.len(), 4);
        assert_eq!(l[0].controllers, vec!["name=systemd"]);
        assert_eq!(l[2].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(l[3], CgroupLine { id: 0, controllers: vec![], path: "/docker/abc".into() });
        // A path may contain ':' (systemd escapes little): everything after the 2nd colon.
        assert_eq!(parse_cgroup("0::/a:b\n").unwrap()[0].path, "/a:b");
        assert!(parse_cgroup("0::/a\nnot a cgroup line\n").is_none());
    }

    #[test]
    fn smaps_rollup_fixture() {
        let text = "00400000-7ffdd43a0000 ---p 00000000 00:00 0     [rollup]\nRss:                1108 kB\nPss:                1100 kB\nPss_Dirty:            52 kB\nPss_Anon:             52 kB\n";
        assert_eq!(parse_smaps_rollup(text), Some(Rollup { rss_kb: 1108, pss_kb: 1100 }));
        assert_eq!(parse_smaps_rollup("Rss: 1 kB\n"), None);
        let mut sum = Rollup { rss_kb: 1, pss_kb: 2 };
        sum += Rollup { rss_kb: 10, pss_kb: 20 };
        assert_eq!(sum, Rollup { rss_kb: 11, pss_kb: 22 });
    }

    #[test]
    fn numbers_too_large_for_bytes_are_rejected() {
        assert_eq!(parse_smaps_rollup("00400000-7ffdd43a0000 ---p 00000000 00:00 0 [rollup]\nRss: 99999999999999999 kB\nPss: 1 kB\n"), None);
        assert!(MemInfo::parse(&meminfo_with("MemTotal: 99999999999999999 kB\nMemFree: 300 kB\n")).is_none());
    }

    #[test]
    fn status_fixture() {
        let text = "Name:\tcontainerd-shim\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t20650\nPPid:\t1\nUid:\t1001\t1001\t1001\t1001\n";
        assert_eq!(parse_status(text), Some(Status { name: "containerd-shim".into(), ppid: 1, uid: 1001 }));
        assert_eq!(parse_status("Name:\tx\n"), None);
    }

    #[test]
    fn cmdline_fixture() {
        assert_eq!(split_cmdline(b"/usr/bin/fuse-overlayfs\0-o\0lowerdir=/l\0/m/merged\0"), vec!["/usr/bin/fuse-overlayfs", "-o", "lowerdir=/l", "/m/merged"]);
        assert!(split_cmdline(b"").is_empty());
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(rollup_of(me).unwrap().rss_kb > 0);
        assert_eq!(status_of(me).unwrap().uid, nix::unistd::Uid::current().as_raw());
        assert!(!cgroups_of(me).unwrap().is_empty());
        assert!(meminfo().unwrap().used_kb() > 0);
        assert!(all_pids().unwrap().contains(&me));
        assert_eq!(tree_of(me)[0], me);
        assert!(!cmdline_of(me).unwrap().is_empty());
        let gone = status_of(u32::MAX / 2).unwrap_err();
        assert!(gone.is_gone(), "{gone}");
    }
}

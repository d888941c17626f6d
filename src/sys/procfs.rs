//! Readers of /proc: system memory as `free` computes it, a process's cgroups, its memory
//! (smaps_rollup) and status, and the process tree. The parsers are pure functions of the
//! file's text, tested on fixtures; the readers only add the path and the errno.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

/// `key: value [kB]` files (meminfo, status, smaps_rollup) → key → first number.
fn keyed_numbers(text: &str) -> BTreeMap<&str, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim(), v.split_whitespace().next()?.parse().ok()?))
        })
        .collect()
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
    pub fn parse(text: &str) -> Option<MemInfo> {
        let f = keyed_numbers(text);
        Some(MemInfo {
            total_kb: *f.get("MemTotal")?,
            free_kb: *f.get("MemFree")?,
            available_kb: f.get("MemAvailable").copied(),
            buffers_kb: f.get("Buffers").copied().unwrap_or(0),
            cached_kb: f.get("Cached").copied().unwrap_or(0),
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
        .ok_or_else(|| ProcError::Parse { path: path.into(), what: "no MemTotal/MemFree line".into() })
}

/// One line of /proc/PID/cgroup: `hierarchy-id:controllers:path`. The v2 line has id 0 and
/// no controllers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupLine {
    pub id: u32,
    pub controllers: Vec<String>,
    pub path: String,
}

pub fn parse_cgroup(text: &str) -> Vec<CgroupLine> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let id = it.next()?.parse().ok()?;
            let controllers = it.next()?.split(',').filter(|c| !c.is_empty()).map(str::to_string).collect();
            Some(CgroupLine { id, controllers, path: it.next()?.to_string() })
        })
        .collect()
}

pub fn cgroups_of(pid: u32) -> Result<Vec<CgroupLine>, ProcError> {
    Ok(parse_cgroup(&read(&PathBuf::from(format!("/proc/{pid}/cgroup")))?))
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
    let f = keyed_numbers(text);
    Some(Rollup { rss_kb: *f.get("Rss")?, pss_kb: *f.get("Pss")? })
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

/// The command line, split at NULs; empty for a kernel thread or a zombie.
pub fn cmdline_of(pid: u32) -> Result<Vec<String>, ProcError> {
    let path = PathBuf::from(format!("/proc/{pid}/cmdline"));
    let bytes = std::fs::read(&path).map_err(|source| ProcError::Read { path, source })?;
    Ok(split_cmdline(&bytes))
}

fn split_cmdline(bytes: &[u8]) -> Vec<String> {
    bytes.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

/// Every process (not thread) alive now.
pub fn all_pids() -> Result<Vec<u32>, ProcError> {
    let dir = Path::new("/proc");
    let entries = std::fs::read_dir(dir).map_err(|source| ProcError::Read { path: dir.into(), source })?;
    Ok(entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
}

/// Direct children of `pid` (all its threads'), from /proc/PID/task/*/children (Linux 3.5+,
/// CONFIG_PROC_CHILDREN); empty once the process is gone.
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

    const MEMINFO: &str = "\
MemTotal:       24684084 kB
MemFree:        23136828 kB
MemAvailable:   24192956 kB
Buffers:           52448 kB
Cached:          1230008 kB
SwapCached:            0 kB
";

    #[test]
    fn meminfo_used_is_total_minus_available() {
        let m = MemInfo::parse(MEMINFO).unwrap();
        assert_eq!(m.used_kb(), 24_684_084 - 24_192_956);
        assert_eq!(m.used_mb(), (24_684_084 - 24_192_956) / 1024);
        assert_eq!(m.buffers_kb, 52_448);
    }

    #[test]
    fn meminfo_without_available_falls_back_to_free() {
        let m = MemInfo::parse("MemTotal: 1000 kB\nMemFree: 300 kB\n").unwrap();
        assert_eq!(m.available_kb, None);
        assert_eq!(m.used_kb(), 700);
        let odd = MemInfo::parse("MemTotal: 1000 kB\nMemFree: 300 kB\nMemAvailable: 5000 kB\n").unwrap();
        assert_eq!(odd.used_kb(), 700);
        assert!(MemInfo::parse("MemFree: 3 kB\n").is_none());
    }

    #[test]
    fn cgroup_file_hybrid() {
        let text = "9:name=systemd:/docker/abc\n4:memory:/docker/abc\n1:cpu,cpuacct:/docker/abc\n0::/docker/abc\n";
        let l = parse_cgroup(text);
        assert_eq!(l.len(), 4);
        assert_eq!(l[0].controllers, vec!["name=systemd"]);
        assert_eq!(l[2].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(l[3], CgroupLine { id: 0, controllers: vec![], path: "/docker/abc".into() });
        // A path may contain ':' (systemd escapes little): everything after the 2nd colon.
        assert_eq!(parse_cgroup("0::/a:b\n")[0].path, "/a:b");
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

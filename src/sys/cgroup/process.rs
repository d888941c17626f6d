//! Readers of a process's own cgroup: which directory holds it for a controller (from
//! /proc/PID/cgroup and the host's layout, v1, v2 or hybrid), how much memory the kernel
//! charged to it, and how much CPU time it used.
//!
//! Why two memory figures: the usage counter (v1 memory.usage_in_bytes, v2 memory.current)
//! includes pages pre-charged in per-CPU batches of 64 that no page uses yet, released
//! whenever another cgroup charges on that CPU. On an idle container that slack (up to 256
//! KiB per CPU) is as large as the signal, so the counter jumps between reads. The sum of
//! the statistics (pages actually in use: anon, page cache, kernel memory) has no such slack;
//! it is the "exact" figure, the counter is kept to compare with `docker stats`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::sys::procfs::{self, CgroupLine, ProcError};
use super::CgroupLayout;

#[derive(Debug, thiserror::Error)]
pub enum CgroupFsError {
    #[error(transparent)]
    Proc(#[from] ProcError),
    #[error("pid {pid} has no {controller} cgroup in /proc/{pid}/cgroup (this host's layout has no such controller, or the process left it)")]
    NoController { pid: u32, controller: &'static str },
}

/// The directory of `pid`'s cgroup for `controller`, on v2 when the layout has it there.
pub fn dir_for(layout: &CgroupLayout, lines: &[CgroupLine], controller: &str) -> Option<PathBuf> {
    let on_v2 = layout.controller_on_v2(controller)?;
    let (mount, line) = if on_v2 {
        (layout.unified.as_ref()?, lines.iter().find(|l| l.id == 0)?)
    } else {
        (layout.v1.get(controller)?, lines.iter().find(|l| l.controllers.iter().any(|c| c == controller))?)
    };
    Some(mount.join(line.path.trim_start_matches('/')))
}

pub fn dir_of(pid: u32, layout: &CgroupLayout, controller: &'static str) -> Result<PathBuf, CgroupFsError> {
    dir_for(layout, &procfs::cgroups_of(pid)?, controller).ok_or(CgroupFsError::NoController { pid, controller })
}

/// The container's own cgroup for `controller`, or None when it has none: a container has
/// one when its cgroup differs from its parent process's (the shim, conmon or `probe run`);
/// rootless podman on a v1 host leaves containers in the caller's. The Err side of the
/// inner Result is the shared directory.
pub fn own_dir(pid: u32, layout: &CgroupLayout, controller: &'static str) -> Result<Result<PathBuf, PathBuf>, CgroupFsError> {
    let own = dir_of(pid, layout, controller)?;
    let parent = dir_of(procfs::status_of(pid)?.ppid, layout, controller)?;
    Ok(if own == parent { Err(own) } else { Ok(own) })
}

/// `key value` lines (memory.stat, cpu.stat).
// Hand-written, like every cgroupfs read here: the procfs crate stops at /proc, and cgroups-rs was dropped (see sys/cgroup/mod.rs).
pub fn parse_flat(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryUsage {
    /// The kernel's usage counter, per-CPU charge batches included (what `docker stats` starts from).
    pub usage_bytes: u64,
    /// anon + page cache + kernel memory (+ socket buffers on v2): pages in use, no slack.
    pub exact_bytes: u64,
    pub anon_bytes: u64,
    pub file_bytes: u64,
    pub kernel_bytes: u64,
}

impl MemoryUsage {
    /// v1: memory.usage_in_bytes, memory.stat, memory.kmem.usage_in_bytes (None when the
    /// kernel has no kmem accounting file). Hierarchical `total_*` figures, so a container
    /// that nests cgroups is counted whole.
    pub fn from_v1(usage: &str, stat: &str, kmem: Option<&str>) -> Option<MemoryUsage> {
        let s = parse_flat(stat);
        let get = |k: &str| s.get(k).copied().unwrap_or(0);
        let anon = get("total_rss") + get("total_swap");
        let file = get("total_cache");
        let kernel = match kmem {
            Some(k) => k.trim().parse().ok()?,
            None => 0,
        };
        Some(MemoryUsage {
            usage_bytes: usage.trim().parse().ok()?,
            exact_bytes: anon + file + kernel,
            anon_bytes: anon,
            file_bytes: file,
            kernel_bytes: kernel,
        })
    }

    /// v2: memory.current and memory.stat. `kernel` exists since Linux 5.18; before that it
    /// is the sum of its parts.
    pub fn from_v2(current: &str, stat: &str) -> Option<MemoryUsage> {
        let s = parse_flat(stat);
        let get = |k: &str| s.get(k).copied().unwrap_or(0);
        let kernel = s.get("kernel").copied().unwrap_or_else(|| {
            ["kernel_stack", "pagetables", "sec_pagetables", "percpu", "slab", "vmalloc"].iter().map(|k| get(k)).sum()
        });
        let (anon, file) = (get("anon"), get("file"));
        Some(MemoryUsage {
            usage_bytes: current.trim().parse().ok()?,
            exact_bytes: anon + file + kernel + get("sock"),
            anon_bytes: anon,
            file_bytes: file,
            kernel_bytes: kernel,
        })
    }
}

fn parse_err(path: &Path, what: &str) -> CgroupFsError {
    ProcError::Parse { path: path.to_path_buf(), what: what.into() }.into()
}

pub fn read_memory(dir: &Path, on_v2: bool) -> Result<MemoryUsage, CgroupFsError> {
    let stat = procfs::read(&dir.join("memory.stat"))?;
    let parsed = if on_v2 {
        MemoryUsage::from_v2(&procfs::read(&dir.join("memory.current"))?, &stat)
    } else {
        let kmem = match procfs::read(&dir.join("memory.kmem.usage_in_bytes")) {
            Ok(k) => Some(k),
            Err(e) if e.is_gone() => None,
            Err(e) => return Err(e.into()),
        };
        MemoryUsage::from_v1(&procfs::read(&dir.join("memory.usage_in_bytes"))?, &stat, kmem.as_deref())
    };
    parsed.ok_or_else(|| parse_err(dir, "unreadable memory usage counter"))
}

/// The memory cgroup of `pid` and what is charged to it now.
pub fn memory_of(pid: u32, layout: &CgroupLayout) -> Result<(PathBuf, MemoryUsage), CgroupFsError> {
    let dir = dir_of(pid, layout, "memory")?;
    let usage = read_memory(&dir, layout.controller_on_v2("memory") == Some(true))?;
    Ok((dir, usage))
}

/// Which controller accounts CPU time: cpuacct on v1, cpu on v2.
pub fn cpu_controller(layout: &CgroupLayout) -> Option<&'static str> {
    match layout.controller_on_v2("cpu") {
        Some(true) => Some("cpu"),
        _ => layout.v1.contains_key("cpuacct").then_some("cpuacct"),
    }
}

/// The counter `cpu_usage_ns` reads, in words, for a report to name its source.
pub fn cpu_usage_counter(on_v2: bool) -> &'static str {
    if on_v2 { "cgroup v2 cpu.stat usage_usec" } else { "cgroup v1 cpuacct.usage" }
}

/// CPU time used by everything that ever ran in the cgroup `dir` (descendants included, and
/// dead ones too), in ns: v1 cpuacct.usage, v2 cpu.stat usage_usec.
pub fn cpu_usage_ns(dir: &Path, on_v2: bool) -> Result<u64, CgroupFsError> {
    if on_v2 {
        let path = dir.join("cpu.stat");
        parse_flat(&procfs::read(&path)?)
            .get("usage_usec")
            .map(|us| us * 1000)
            .ok_or_else(|| parse_err(&path, "no usage_usec line"))
    } else {
        let path = dir.join("cpuacct.usage");
        procfs::read(&path)?.trim().parse().map_err(|_| parse_err(&path, "not a number"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hybrid() -> CgroupLayout {
        let mountinfo = "\
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
        CgroupLayout::parse(mountinfo, "hugetlb").unwrap()
    }

    fn v2() -> CgroupLayout {
        CgroupLayout::parse("30 22 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "cpu memory").unwrap()
    }

    const PROC_CGROUP: &str = "4:memory:/docker/abc\n2:cpuacct:/docker/abc\n1:cpu:/docker/abc\n0::/docker/abc\n";

    #[test]
    fn dirs_on_hybrid_and_v2() {
        let lines = procfs::parse_cgroup(PROC_CGROUP).unwrap();
        assert_eq!(dir_for(&hybrid(), &lines, "memory").unwrap(), PathBuf::from("/sys/fs/cgroup/memory/docker/abc"));
        assert_eq!(cpu_controller(&hybrid()), Some("cpuacct"));
        assert_eq!(dir_for(&hybrid(), &lines, "cpuacct").unwrap(), PathBuf::from("/sys/fs/cgroup/cpuacct/docker/abc"));
        assert_eq!(dir_for(&hybrid(), &lines, "pids"), None);
        let v2lines = procfs::parse_cgroup("0::/system.slice/docker-abc.scope\n").unwrap();
        assert_eq!(dir_for(&v2(), &v2lines, "memory").unwrap(), PathBuf::from("/sys/fs/cgroup/system.slice/docker-abc.scope"));
        assert_eq!(cpu_controller(&v2()), Some("cpu"));
        // v1 layout but the process only has its v2 line: nothing to read.
        assert_eq!(dir_for(&hybrid(), &v2lines, "memory"), None);
    }

    #[test]
    fn v1_exact_excludes_the_charge_batch() {
        // Measured on a docker container: the counter read 552960, then 327680 once the
        // per-CPU batch was drained; rss + cache + kmem is 327680 throughout.
        let stat = "cache 0\nrss 57344\ntotal_cache 0\ntotal_rss 57344\ntotal_swap 0\ntotal_inactive_file 0\n";
        let m = MemoryUsage::from_v1("552960\n", stat, Some("270336\n")).unwrap();
        assert_eq!(m.usage_bytes, 552_960);
        assert_eq!(m.exact_bytes, 327_680);
        assert_eq!((m.anon_bytes, m.file_bytes, m.kernel_bytes), (57_344, 0, 270_336));
        assert_eq!(MemoryUsage::from_v1("12\n", stat, None).unwrap().exact_bytes, 57_344);
        assert!(MemoryUsage::from_v1("x", stat, None).is_none());
    }

    #[test]
    fn v2_exact_with_and_without_kernel_line() {
        let stat = "anon 4096\nfile 8192\nkernel 16384\nkernel_stack 8192\nsock 0\nslab 4096\n";
        let m = MemoryUsage::from_v2("40960\n", stat).unwrap();
        assert_eq!((m.usage_bytes, m.exact_bytes, m.kernel_bytes), (40_960, 28_672, 16_384));
        let old = "anon 4096\nfile 0\nkernel_stack 8192\npagetables 4096\npercpu 100\nslab 1000\nsock 10\n";
        let m = MemoryUsage::from_v2("1\n", old).unwrap();
        assert_eq!(m.kernel_bytes, 8192 + 4096 + 100 + 1000);
        assert_eq!(m.exact_bytes, 4096 + 13_388 + 10);
    }

    #[test]
    fn flat_files() {
        let cpu = parse_flat("usage_usec 1234\nuser_usec 1000\nsystem_usec 234\n");
        assert_eq!(cpu["usage_usec"], 1234);
        assert!(parse_flat("bogus\n").is_empty());
    }

    #[test]
    fn reads_own_memory_cgroup() {
        let layout = super::super::detect().unwrap();
        let req = crate::ground::testing::require;
        if !req(layout.controller_on_v2("memory").is_some(), "no memory controller on this host") {
            return;
        }
        // The v2 root cgroup has no memory.current: run the test from a child cgroup there.
        let dir = dir_of(std::process::id(), &layout, "memory").unwrap();
        let usage = ["memory.current", "memory.usage_in_bytes"];
        if !req(usage.iter().any(|f| dir.join(f).exists()), &format!("{} has no usage file (the v2 root cgroup)", dir.display())) {
            return;
        }
        let (_, m) = memory_of(std::process::id(), &layout).unwrap();
        assert!(m.exact_bytes > 0 && m.usage_bytes > 0, "{m:?}");
    }
}

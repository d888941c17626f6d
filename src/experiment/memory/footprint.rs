//! What a set of running containers costs in memory right now, seen three ways: each
//! container's own cgroup (exact, per container), the engine's processes (RSS and PSS from
//! smaps_rollup: daemons, shims, monitors), and the whole system (`free`'s "used").
//! Shared by `memory --cgroup` (Exp 8) and `scale` (Exp 6).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::runtimes::detached::Fleet;
use crate::runtimes::rootless::RootlessUser;
use crate::ground::RuntimeKind;
use crate::sys::cgroup::CgroupLayout;
use crate::sys::cgroup::process::{self as cgroupfs, MemoryUsage};
use crate::sys::procfs::{self, Rollup};

/// Daemons shared by all of an engine's containers, by comm. Everything else an engine runs
/// per container (containerd-shim, conmon, `probe run`, fuse-overlayfs) is found from our
/// own containers, so other users' containers on the same host are not counted.
const DOCKER_DAEMONS: &[&str] = &["dockerd", "containerd"];
/// Rootless podman keeps a pause process (catatonit) holding its user namespace.
const ROOTLESS_DAEMONS: &[&str] = &["catatonit", "slirp4netns", "rootlessport"];

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ContainerMemory {
    pub name: String,
    pub main_pid: u32,
    /// None when the container has no memory cgroup of its own (see `cgroup_na`).
    pub cgroup: Option<PathBuf>,
    pub memory: Option<MemoryUsage>,
    /// The container's processes (main pid and descendants).
    pub processes: Rollup,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct EngineProcess {
    pub pid: u32,
    pub name: String,
    /// True for a daemon shared by all containers (dockerd, containerd, catatonit); false
    /// for a process that exists for one of our containers (shim, conmon, `probe run`,
    /// fuse-overlayfs).
    pub daemon: bool,
    pub rss_kb: u64,
    pub pss_kb: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Snapshot {
    pub containers: Vec<ContainerMemory>,
    pub engine: Vec<EngineProcess>,
    /// `free`'s "used" (MemTotal − MemAvailable), kB.
    pub used_kb: u64,
}

impl Snapshot {
    /// Σ exact cgroup bytes, None when the containers have no cgroups of their own.
    pub fn cgroup_bytes(&self) -> Option<u64> {
        self.containers.iter().map(|c| c.memory.map(|m| m.exact_bytes)).sum()
    }

    /// Σ of the kernel's usage counters (per-CPU charge batches included).
    pub fn usage_bytes(&self) -> Option<u64> {
        self.containers.iter().map(|c| c.memory.map(|m| m.usage_bytes)).sum()
    }

    pub fn container_pss_kb(&self) -> u64 {
        self.containers.iter().map(|c| c.processes.pss_kb).sum()
    }

    pub fn engine_total(&self) -> Rollup {
        self.engine_where(|_| true)
    }

    /// The engine's per-container processes only: their PSS grows with our containers and
    /// nothing else, unlike a daemon's heap, which any user of the engine moves.
    pub fn per_container_engine(&self) -> Rollup {
        self.engine_where(|p| !p.daemon)
    }

    pub fn daemons(&self) -> Rollup {
        self.engine_where(|p| p.daemon)
    }

    fn engine_where(&self, keep: impl Fn(&EngineProcess) -> bool) -> Rollup {
        let mut t = Rollup::default();
        for p in self.engine.iter().filter(|p| keep(p)) {
            t += Rollup { rss_kb: p.rss_kb, pss_kb: p.pss_kb };
        }
        t
    }

    /// Engine RSS and PSS per process name (dockerd, containerd-shim, conmon, ...).
    pub fn engine_by_name(&self) -> BTreeMap<String, Rollup> {
        let mut m: BTreeMap<String, Rollup> = BTreeMap::new();
        for p in &self.engine {
            *m.entry(p.name.clone()).or_default() += Rollup { rss_kb: p.rss_kb, pss_kb: p.pss_kb };
        }
        m
    }

    /// What the containers cost, bytes: their cgroups (or, without cgroups, their
    /// processes' PSS) plus the PSS of the engine processes that exist for them. Daemons are
    /// left out: their heap moves with anything anyone does with the engine.
    pub fn per_container_bytes(&self) -> u64 {
        let containers = self.cgroup_bytes().unwrap_or(self.container_pss_kb() * 1024);
        containers + self.per_container_engine().pss_kb * 1024
    }
}

/// Why the runtime's containers have no memory cgroup of their own here, or None when they do.
pub fn cgroup_na(layout: &CgroupLayout, main_pid: u32) -> anyhow::Result<Option<String>> {
    Ok(cgroupfs::own_dir(main_pid, layout, "memory")?.err().map(|shared| {
        format!(
            "the container has no memory cgroup of its own (it shares {} with its parent process): \
             rootless containers on a cgroup v1 host get none, so the kernel keeps no per-container count; \
             the PSS of its processes is reported instead",
            shared.display()
        )
    }))
}

/// Which processes make up the runtime's engine right now: its daemons, the parent of each
/// of our containers (the shim, conmon, or `probe run` that monitors it), and the storage
/// helper serving each container's root.
pub fn engine_processes(kind: RuntimeKind, fleet: &Fleet) -> anyhow::Result<Vec<EngineProcess>> {
    let (daemons, uid) = match kind {
        RuntimeKind::Docker => (DOCKER_DAEMONS, 0),
        RuntimeKind::PodmanRootless => (ROOTLESS_DAEMONS, RootlessUser::find()?.uid),
        _ => (&[][..], 0),
    };
    let merged: Vec<&str> = fleet.containers().iter().filter_map(|c| c.merged_dir.as_deref()).collect();
    // pid → is a daemon
    let mut pids = BTreeMap::new();
    for c in fleet.containers() {
        if let Ok(s) = procfs::status_of(c.main_pid) {
            if s.ppid > 1 {
                pids.insert(s.ppid, false);
            }
        }
    }
    for pid in procfs::all_pids()? {
        let Ok(s) = procfs::status_of(pid) else { continue };
        if s.uid == uid && daemons.contains(&s.name.as_str()) {
            pids.insert(pid, true);
        } else if s.name == "fuse-overlayfs"
            && !merged.is_empty()
            && procfs::cmdline_of(pid).is_ok_and(|args| args.last().is_some_and(|a| merged.contains(&a.as_str())))
        {
            pids.insert(pid, false);
        }
    }
    let mut out = Vec::new();
    for (pid, daemon) in pids {
        let (status, rollup) = match (procfs::status_of(pid), procfs::rollup_of(pid)) {
            (Ok(s), Ok(r)) => (s, r),
            (Err(e), _) | (_, Err(e)) if e.is_gone() => continue,
            (Err(e), _) | (_, Err(e)) => return Err(e.into()),
        };
        out.push(EngineProcess { pid, name: status.name, daemon, rss_kb: rollup.rss_kb, pss_kb: rollup.pss_kb });
    }
    Ok(out)
}

fn container_processes(main_pid: u32) -> Rollup {
    let mut sum = Rollup::default();
    for p in procfs::tree_of(main_pid) {
        sum += procfs::rollup_of(p).unwrap_or_default();
    }
    sum
}

/// Reads every container's cgroup and processes, the engine's processes and `free`.
pub fn snapshot(kind: RuntimeKind, fleet: &Fleet, layout: &CgroupLayout, with_cgroups: bool) -> anyhow::Result<Snapshot> {
    let mut containers = Vec::new();
    for c in fleet.containers() {
        let (cgroup, memory) = if with_cgroups {
            let (dir, m) = cgroupfs::memory_of(c.main_pid, layout)?;
            (Some(dir), Some(m))
        } else {
            (None, None)
        };
        containers.push(ContainerMemory { name: c.name.clone(), main_pid: c.main_pid, cgroup, memory, processes: container_processes(c.main_pid) });
    }
    Ok(Snapshot { containers, engine: engine_processes(kind, fleet)?, used_kb: procfs::meminfo()?.used_kb() })
}

/// Waits until what the containers cost stops changing: a start leaves work behind (the
/// init's last page faults, runc's exit, freed slab), and a figure read during it would
/// differ from run to run. Stable means the containers' total moved by less than a page
/// (plus 1 KiB per container) over three reads 250 ms apart; after `timeout` the last
/// reading is used and the caller is told it never settled. The engine's figure is not
/// waited for: a daemon's heap never stops moving, it is averaged by the fit instead.
pub fn settle(
    kind: RuntimeKind,
    fleet: &Fleet,
    layout: &CgroupLayout,
    with_cgroups: bool,
    timeout: Duration,
) -> anyhow::Result<(Snapshot, bool)> {
    const INTERVAL: Duration = Duration::from_millis(250);
    let tolerance = 4096 + 1024 * fleet.containers().len() as u64;
    let start = Instant::now();
    let mut last: Vec<u64> = Vec::new();
    loop {
        let snap = snapshot(kind, fleet, layout, with_cgroups)?;
        let figure = snap.cgroup_bytes().unwrap_or(snap.container_pss_kb() * 1024);
        last.push(figure);
        if last.len() >= 3 {
            let w = &last[last.len() - 3..];
            let (lo, hi) = (w.iter().min().unwrap(), w.iter().max().unwrap());
            if hi - lo <= tolerance {
                return Ok((snap, true));
            }
        }
        if start.elapsed() >= timeout || crate::sys::signals::interrupted() {
            return Ok((snap, false));
        }
        std::thread::sleep(INTERVAL);
    }
}

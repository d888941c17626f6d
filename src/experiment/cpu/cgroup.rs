//! CPU time of a container's processes, from cgroups: the one counter that sees processes
//! that are not probe's children (docker's and podman's containers descend from their
//! daemons and monitors, not from the CLI probe runs).
//!
//! `run --rm` removes the container's cgroup before the CLI returns, so its counter cannot
//! be read afterwards. Instead each container is started under a parent cgroup made for the
//! run (`--cgroup-parent`): a parent's counter includes its children's time, dead ones too
//! (v1 cpuacct charges every ancestor; v2 folds a removed child's usage into its parent).
//! Podman puts conmon in a `conmon` child of that parent, which outlives the container; the
//! time of any child still there after a rep is subtracted, leaving the container's own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::sys::cgroup::CgroupLayout;
use crate::sys::cgroup::process as cgroupfs;

pub struct CpuParent {
    /// Relative to each hierarchy's root, e.g. `probe-1234-cpu`.
    pub name: String,
    /// The accounting directory (cpuacct on v1, the unified tree on v2).
    dir: PathBuf,
    on_v2: bool,
    /// Every hierarchy root where an engine may create `name` (removed at the end).
    roots: Vec<PathBuf>,
}

impl CpuParent {
    /// The accounting directory `name` would have, and whether it is on v2.
    fn locate(layout: &CgroupLayout, name: &str) -> anyhow::Result<(PathBuf, bool)> {
        let controller = cgroupfs::cpu_controller(layout).context("this host has no CPU accounting controller (cpuacct on v1, cpu on v2)")?;
        let on_v2 = controller == "cpu";
        let root = if on_v2 { layout.unified.clone() } else { layout.v1.get(controller).cloned() }.expect("controller has a mount");
        Ok((root.join(name), on_v2))
    }

    /// A cgroup that exists already and is not probe's (systemd's `system.slice`): read,
    /// never removed.
    pub fn existing(layout: &CgroupLayout, name: &str) -> anyhow::Result<CpuParent> {
        let (dir, on_v2) = Self::locate(layout, name)?;
        anyhow::ensure!(dir.is_dir(), "cgroup {} does not exist", dir.display());
        Ok(CpuParent { name: name.to_string(), dir, on_v2, roots: Vec::new() })
    }

    pub fn create(layout: &CgroupLayout, name: &str) -> anyhow::Result<CpuParent> {
        let (dir, on_v2) = Self::locate(layout, name)?;
        std::fs::create_dir(&dir).with_context(|| format!("cgroup: mkdir {}", dir.display()))?;
        let mut roots: Vec<PathBuf> = layout.v1.values().cloned().collect();
        roots.extend(layout.unified.clone());
        // Named hierarchies (name=systemd) are not in the layout, but runc creates the
        // parent there too.
        roots.extend(named_hierarchies());
        roots.sort();
        roots.dedup();
        Ok(CpuParent { name: name.to_string(), dir, on_v2, roots })
    }

    /// The parent's usage and that of every child cgroup present now but containers' scopes
    /// (conmon's, the engine's services).
    pub fn read(&self) -> anyhow::Result<Reading> {
        let mut children = BTreeMap::new();
        for e in std::fs::read_dir(&self.dir).with_context(|| format!("cgroup: reading {}", self.dir.display()))? {
            let path = e?.path();
            // A container's scope still there (systemd removes it a moment after the
            // container ends) is the container's own time, not a monitor's.
            if path.is_dir() && !crate::sys::cgroup::is_container_scope(&path.to_string_lossy()) {
                if let Ok(ns) = cgroupfs::cpu_usage_ns(&path, self.on_v2) {
                    children.insert(path, ns);
                }
            }
        }
        Ok(Reading { total_ns: cgroupfs::cpu_usage_ns(&self.dir, self.on_v2)?, children })
    }
}

/// Usage counters at one moment.
pub struct Reading {
    total_ns: u64,
    children: BTreeMap<PathBuf, u64>,
}

impl Reading {
    /// CPU time between `before` and `self` of the processes that are gone from the parent
    /// now (the containers), excluding children that are still there (monitors).
    pub fn container_ns_since(&self, before: &Reading) -> u64 {
        let lingering: u64 = self.children.iter().map(|(p, now)| now - before.children.get(p).copied().unwrap_or(0).min(*now)).sum();
        self.total_ns.saturating_sub(before.total_ns).saturating_sub(lingering)
    }
}

fn named_hierarchies() -> Vec<PathBuf> {
    let mounts = crate::sys::mountinfo::read(Path::new("/proc/self/mountinfo")).unwrap_or_default();
    mounts
        .into_iter()
        .filter(|m| m.fstype == "cgroup" && m.super_option("name").is_some())
        .map(|m| PathBuf::from(m.mount_point))
        .collect()
}

/// rmdir, children first (cgroups cannot be removed recursively); a cgroup whose last
/// process has just exited can be busy for a moment, hence the retries.
fn remove_tree(dir: &Path) -> std::io::Result<()> {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().is_dir() {
                remove_tree(&e.path())?;
            }
        }
    }
    let mut tries = 0;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(_) if tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    }
}

impl Drop for CpuParent {
    fn drop(&mut self) {
        for root in &self.roots {
            let dir = root.join(&self.name);
            if let Err(e) = remove_tree(&dir) {
                eprintln!("probe: cgroup: rmdir {}: {e}; remove it by hand (rmdir, children first)", dir.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lingering_children_are_subtracted() {
        let conmon = PathBuf::from("/x/conmon");
        let before = Reading { total_ns: 1_000, children: BTreeMap::new() };
        let after = Reading { total_ns: 11_000, children: [(conmon.clone(), 300)].into() };
        assert_eq!(after.container_ns_since(&before), 9_700);
        let later = Reading { total_ns: 21_500, children: [(conmon, 500)].into() };
        assert_eq!(later.container_ns_since(&after), 10_300);
    }

    #[test]
    fn parent_cgroup_is_created_read_and_removed() {
        if !crate::ground::testing::require_root() {
            return;
        }
        let layout = crate::sys::cgroup::detect().unwrap();
        let name = format!("probe-{}-cgtest", std::process::id());
        let parent = CpuParent::create(&layout, &name).unwrap();
        let dir = parent.dir.clone();
        let r = parent.read().unwrap();
        assert_eq!(r.container_ns_since(&r), 0);
        drop(parent);
        assert!(!dir.exists());
    }
}

//! Layout detection: statfs(2) tells a pure v2 host at once (youki's test); anything else is
//! read from /proc/self/mountinfo, where v1 hierarchies list their controllers in the super
//! options and a cgroup2 mount is the unified tree (v2-only, or hybrid beside v1).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::sys::cgroup::CgroupError;

#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LayoutKind {
    V1,
    V2,
    Hybrid,
}

#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct CgroupLayout {
    pub kind: LayoutKind,
    /// v1 controller → the directory its hierarchy is mounted on (co-mounted controllers such
    /// as `cpu,cpuacct` map to the same directory).
    pub v1: BTreeMap<String, PathBuf>,
    /// Where the cgroup2 tree is mounted, if any.
    pub unified: Option<PathBuf>,
    /// Controllers the v2 root offers (its cgroup.controllers).
    pub unified_controllers: Vec<String>,
}

/// v1 controller names as they appear in a cgroup mount's super options; anything else
/// there (`rw`, `name=systemd`, `clone_children`, `release_agent=`) is not a controller.
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

const MOUNTINFO: &str = "/proc/self/mountinfo";
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

impl CgroupLayout {
    /// Builds the layout from mountinfo text and the unified root's cgroup.controllers text.
    /// Pure, so it is tested on fixtures of v1-only, v2-only and hybrid hosts.
    // Hand-written: neither crate tells hybrid from v1 (cgroups-rs's auto() calls it v1), and procfs-core's mountinfo loses escapes.
    pub fn parse(mountinfo: &str, unified_controllers: &str) -> Option<CgroupLayout> {
        let mut v1 = BTreeMap::new();
        let mut unified = None;
        for m in crate::sys::mountinfo::parse(mountinfo) {
            match m.fstype.as_str() {
                "cgroup2" => {
                    // The first cgroup2 mount wins: later ones are bind mounts of the same tree
                    // (e.g. inside containers) and would only shadow it.
                    unified.get_or_insert_with(|| PathBuf::from(&m.mount_point));
                }
                "cgroup" => {
                    for opt in m.super_options.split(',') {
                        if V1_CONTROLLERS.contains(&opt) {
                            v1.entry(opt.to_string())
                                .or_insert_with(|| PathBuf::from(&m.mount_point));
                        }
                    }
                }
                _ => {}
            }
        }
        let kind = match (v1.is_empty(), unified.is_some()) {
            (true, true) => LayoutKind::V2,
            (false, false) => LayoutKind::V1,
            (false, true) => LayoutKind::Hybrid,
            (true, false) => return None,
        };
        let unified_controllers = if unified.is_some() {
            unified_controllers
                .split_whitespace()
                .map(str::to_string)
                .collect()
        } else {
            Vec::new()
        };
        Some(CgroupLayout {
            kind,
            v1,
            unified,
            unified_controllers,
        })
    }

    /// Where `controller` lives: `Some(true)` on the unified tree, `Some(false)` on v1.
    /// v2 is preferred when both offer it (a v2-only host, or a hybrid host that moved it).
    pub fn controller_on_v2(&self, controller: &str) -> Option<bool> {
        if self.unified.is_some() && self.unified_controllers.iter().any(|c| c == controller) {
            Some(true)
        } else if self.v1.contains_key(controller) {
            Some(false)
        } else {
            None
        }
    }
}

/// Detects this host's cgroup layout.
pub fn detect() -> Result<CgroupLayout, CgroupError> {
    let read = |p: &Path| {
        use std::io::Read;
        // procfs and cgroupfs report size 0, so read_to_string would start at 32 bytes and
        // double: 8 read(2)s for this host's mountinfo, each resuming the kernel's walk.
        let mut text = String::with_capacity(16 << 10);
        std::fs::File::open(p)
            .and_then(|mut f| f.read_to_string(&mut text))
            .map(|_| text)
            .map_err(|error| CgroupError::Read {
                path: p.to_path_buf(),
                error,
            })
    };
    let is_v2_root = nix::sys::statfs::statfs(CGROUP_ROOT)
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false);
    if is_v2_root {
        let controllers = read(&Path::new(CGROUP_ROOT).join("cgroup.controllers"))?;
        return Ok(CgroupLayout {
            kind: LayoutKind::V2,
            v1: BTreeMap::new(),
            unified: Some(PathBuf::from(CGROUP_ROOT)),
            unified_controllers: controllers.split_whitespace().map(str::to_string).collect(),
        });
    }
    let mountinfo = read(Path::new(MOUNTINFO))?;
    let probe = CgroupLayout::parse(&mountinfo, "").ok_or_else(|| CgroupError::NoCgroupFs {
        path: PathBuf::from(MOUNTINFO),
    })?;
    let controllers = match &probe.unified {
        Some(u) => read(&u.join("cgroup.controllers"))?,
        None => String::new(),
    };
    Ok(CgroupLayout::parse(&mountinfo, &controllers).unwrap_or(probe))
}


#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    const V1_ONLY: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
25 22 0:21 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:22 / /sys/fs/cgroup/systemd rw,nosuid shared:10 - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
27 25 0:23 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:11 - cgroup cgroup rw,cpu,cpuacct
28 25 0:24 / /sys/fs/cgroup/memory rw,nosuid shared:12 - cgroup cgroup rw,memory
";

    const V2_ONLY: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    #[test]
    fn hybrid_fixture() {
        let l = CgroupLayout::parse(HYBRID, "hugetlb\n").unwrap();
        assert_eq!(l.kind, LayoutKind::Hybrid);
        assert_eq!(l.v1["memory"], PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(
            l.v1.len(),
            4,
            "name=systemd is not a controller: {:?}",
            l.v1
        );
        assert_eq!(
            l.unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
        assert_eq!(l.unified_controllers, vec!["hugetlb"]);
        assert_eq!(l.controller_on_v2("memory"), Some(false));
        assert_eq!(l.controller_on_v2("hugetlb"), Some(true));
        assert_eq!(l.controller_on_v2("rdma"), None);
    }

    #[test]
    fn v1_fixture_with_comounted_controllers() {
        let l = CgroupLayout::parse(V1_ONLY, "").unwrap();
        assert_eq!(l.kind, LayoutKind::V1);
        assert_eq!(l.v1["cpu"], l.v1["cpuacct"]);
        assert_eq!(l.v1["cpu"], PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        assert!(l.unified.is_none() && l.unified_controllers.is_empty());
    }

    #[test]
    fn v2_fixture() {
        let l = CgroupLayout::parse(V2_ONLY, "cpuset cpu io memory pids").unwrap();
        assert_eq!(l.kind, LayoutKind::V2);
        assert!(l.v1.is_empty());
        assert_eq!(l.controller_on_v2("memory"), Some(true));
        assert_eq!(l.controller_on_v2("freezer"), None);
    }

    #[test]
    fn no_cgroup_mount_is_none() {
        assert!(CgroupLayout::parse("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n", "").is_none());
    }

    #[test]
    fn detects_this_host() {
        // Every Linux host that can run containers has some cgroup filesystem.
        let l = detect().unwrap();
        if let Some(u) = &l.unified {
            assert!(u.join("cgroup.procs").exists());
        }
        for dir in l.v1.values() {
            assert!(dir.join("cgroup.procs").exists(), "{}", dir.display());
        }
    }
}

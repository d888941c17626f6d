//! The cgroup filesystems of a `--privileged` container, so that a runtime inside it (an
//! inner `probe run`) can create cgroups: every hierarchy the host has is mounted again at
//! /sys/fs/cgroup inside, read-write.
//!
//! Mounted fresh rather than bind-mounted from the host: the init has already unshared its
//! cgroup namespace, and a cgroupfs mounted there is rooted at the container's own cgroup
//! (cgroup_namespaces(7)). An inner runtime's `probe-<pid>-<n>` therefore lands *below* the
//! container's cgroup — no clash between levels whose probe is pid 1 of its own pid
//! namespace, and the host's rmdir of the container's cgroup finds them (container.rs).
//! Without a cgroup namespace the mounts show the host's whole hierarchies.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;

use crate::sys::cgroup::{CgroupLayout, LayoutKind};

#[derive(Debug, thiserror::Error)]
#[error("mounts: cgroupfs: {what} {path}: {errno}")]
pub struct CgroupMountError {
    what: &'static str,
    path: String,
    errno: Errno,
}

struct FsMount {
    target: CString,
    fstype: &'static CStr,
    /// v1: the hierarchy's controllers, exactly as on the host (a v1 mount that names a
    /// different set than an existing hierarchy is refused with EBUSY).
    data: Option<CString>,
}

pub struct Plan {
    /// The tmpfs that holds the per-hierarchy mount points (none on a pure v2 host, where
    /// cgroup2 itself goes on /sys/fs/cgroup).
    tmpfs: Option<CString>,
    mounts: Vec<FsMount>,
}

fn c(p: &Path) -> CString {
    // Paths from the host's mountinfo cannot hold a NUL.
    CString::new(p.as_os_str().as_bytes()).expect("path without NUL")
}

impl Plan {
    /// Parent side: one mount per host hierarchy with a controller, under `root`/sys/fs/cgroup,
    /// each named as on the host (cpu, memory, ..., unified).
    pub fn new(layout: &CgroupLayout, root: &Path) -> Plan {
        let base = root.join("sys/fs/cgroup");
        let name = |m: &Path| base.join(m.file_name().unwrap_or(m.as_os_str()));
        let mut by_mount: BTreeMap<&PathBuf, Vec<&str>> = BTreeMap::new();
        for (controller, m) in &layout.v1 {
            by_mount.entry(m).or_default().push(controller);
        }
        let mut mounts: Vec<FsMount> = by_mount
            .into_iter()
            .map(|(m, controllers)| FsMount {
                target: c(&name(m)),
                fstype: c"cgroup",
                data: Some(CString::new(controllers.join(",")).expect("no NUL")),
            })
            .collect();
        let pure_v2 = layout.kind == LayoutKind::V2;
        if let Some(u) = &layout.unified {
            mounts.push(FsMount {
                target: c(&if pure_v2 { base.clone() } else { name(u) }),
                fstype: c"cgroup2",
                data: None,
            });
        }
        Plan {
            tmpfs: (!pure_v2).then(|| c(&base)),
            mounts,
        }
    }

    /// Init side, after the cgroup namespace and the sysfs mount.
    pub fn mount(&self) -> Result<(), CgroupMountError> {
        let fl = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        if let Some(t) = &self.tmpfs {
            mount(Some(c"tmpfs"), t.as_c_str(), Some(c"tmpfs"), fl, Some(c"mode=755"))
                .map_err(err("mount tmpfs on", t))?;
        }
        for m in &self.mounts {
            if self.tmpfs.is_some() {
                nix::unistd::mkdir(m.target.as_c_str(), Mode::from_bits_truncate(0o755))
                    .map_err(err("mkdir", &m.target))?;
            }
            mount(
                Some(m.fstype),
                m.target.as_c_str(),
                Some(m.fstype),
                fl,
                m.data.as_deref(),
            )
            .map_err(err("mount cgroupfs on", &m.target))?;
        }
        Ok(())
    }
}

fn err<'a>(what: &'static str, path: &'a CString) -> impl FnOnce(Errno) -> CgroupMountError + 'a {
    move |errno| CgroupMountError {
        what,
        path: path.to_string_lossy().into_owned(),
        errno,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(p: &Plan) -> Vec<(String, &'static CStr, Option<String>)> {
        p.mounts
            .iter()
            .map(|m| {
                let data = m.data.as_ref().map(|d| d.to_string_lossy().into_owned());
                (m.target.to_string_lossy().into_owned(), m.fstype, data)
            })
            .collect()
    }

    #[test]
    fn hybrid_host_gets_one_mount_per_hierarchy_on_a_tmpfs() {
        let layout = CgroupLayout {
            kind: LayoutKind::Hybrid,
            v1: [("cpu", "/sys/fs/cgroup/cpu,cpuacct"), ("cpuacct", "/sys/fs/cgroup/cpu,cpuacct"), ("pids", "/sys/fs/cgroup/pids")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), PathBuf::from(v)))
                .collect(),
            unified: Some("/sys/fs/cgroup/unified".into()),
            unified_controllers: vec![],
        };
        let p = Plan::new(&layout, Path::new("/m"));
        assert_eq!(p.tmpfs.as_deref(), Some(c"/m/sys/fs/cgroup"));
        assert_eq!(
            targets(&p),
            [
                ("/m/sys/fs/cgroup/cpu,cpuacct".into(), c"cgroup", Some("cpu,cpuacct".into())),
                ("/m/sys/fs/cgroup/pids".into(), c"cgroup", Some("pids".into())),
                ("/m/sys/fs/cgroup/unified".into(), c"cgroup2", None),
            ]
        );
    }

    #[test]
    fn pure_v2_host_mounts_cgroup2_on_sys_fs_cgroup() {
        let layout = CgroupLayout {
            kind: LayoutKind::V2,
            v1: BTreeMap::new(),
            unified: Some("/sys/fs/cgroup".into()),
            unified_controllers: vec!["cpu".into()],
        };
        let p = Plan::new(&layout, Path::new("/m"));
        assert!(p.tmpfs.is_none());
        assert_eq!(targets(&p), [("/m/sys/fs/cgroup".into(), c"cgroup2", None)]);
    }
}

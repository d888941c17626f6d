//! Which block device really stores what the worker writes. The container sees an overlay or
//! a FUSE mount on an anonymous device (0:NN) that no disk counter knows; the data lands in
//! the overlay's upper directory, or in the FUSE daemon's, on a real filesystem on a real
//! disk. This follows that chain from the worker's mountinfo entry to a /proc/diskstats name.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::protocol::Target;
use crate::sys::mountinfo::{self, Mount};

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Backing {
    /// The target file's mount and the container's root, as the kernel shows them inside.
    pub mount: Option<Mount>,
    pub root_mount: Option<Mount>,
    pub store: Store,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuse_daemon: Option<FuseDaemon>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Store {
    /// A block device: `name` is its /proc/diskstats name, `via` how it was found.
    Device(Device),
    /// A filesystem with no device behind it: the data lives in RAM.
    Memory { fstype: String },
    Unknown { why: String },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Device {
    pub name: String,
    pub major: u32,
    pub minor: u32,
    /// The whole disk (`vda` for `vda1`): block tracepoints and the write cache are per disk.
    pub disk: String,
    pub disk_major: u32,
    pub disk_minor: u32,
    /// The disk keeps written data in a volatile cache until a flush (queue/write_cache is
    /// "write back"); None if the kernel does not say.
    pub volatile_cache: Option<bool>,
    pub via: String,
}

/// The process serving a FUSE mount, and the options it was started with: what decides
/// whether it honours fsync, since the kernel mount options do not show them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FuseDaemon {
    pub pid: u32,
    pub comm: String,
    pub cmdline: Vec<String>,
    /// Every `-o` option, split at commas.
    pub options: Vec<String>,
}

impl FuseDaemon {
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.iter().find_map(|o| o.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
    }
}

/// Filesystems that keep their data in memory only.
const MEMORY_FS: &[&str] = &["tmpfs", "ramfs", "devtmpfs", "hugetlbfs"];

pub fn resolve(target: &Target) -> Backing {
    let mut fuse_daemon = None;
    let store = match &target.mount {
        None => Store::Unknown { why: "the container has no /proc/self/mountinfo to read".into() },
        Some(m) => match m.fstype.as_str() {
            "overlay" => match m.super_option("upperdir") {
                Some(upper) => store_of_path(Path::new(upper), &format!("overlay upperdir {upper}")),
                None => Store::Unknown { why: "overlay mount without upperdir (read-only overlay)".into() },
            },
            t if t == "fuse" || t.starts_with("fuse.") => match find_fuse_daemon(m.major, m.minor) {
                Some(d) => {
                    let store = match d.option("upperdir") {
                        Some(upper) => {
                            let host = Path::new(upper);
                            let via_root = PathBuf::from(format!("/proc/{}/root{upper}", d.pid));
                            let path = if host.exists() { host.to_path_buf() } else { via_root };
                            store_of_path(&path, &format!("FUSE daemon {} (pid {}) upperdir {upper}", d.comm, d.pid))
                        }
                        None => Store::Unknown { why: format!("FUSE daemon {} (pid {}) names no upperdir", d.comm, d.pid) },
                    };
                    fuse_daemon = Some(d);
                    store
                }
                None => Store::Unknown { why: format!("no process serving FUSE mount {}:{} was found", m.major, m.minor) },
            },
            t if MEMORY_FS.contains(&t) => Store::Memory { fstype: t.to_string() },
            _ => store_of_dev(m.major, m.minor, &format!("{} {} mounted at {}", m.fstype, m.source, m.mount_point)),
        },
    };
    Backing { mount: target.mount.clone(), root_mount: target.root_mount.clone(), store, fuse_daemon }
}

fn store_of_path(path: &Path, via: &str) -> Store {
    match std::fs::metadata(path) {
        Ok(meta) => store_of_dev(libc::major(meta.dev()), libc::minor(meta.dev()), via),
        Err(e) => Store::Unknown { why: format!("stat {}: {e}", path.display()) },
    }
}

/// From a filesystem's st_dev to its disk: directly when the filesystem sits on a block
/// device; through the host mount's source device otherwise (btrfs subvolumes have
/// anonymous st_dev); memory filesystems have none.
fn store_of_dev(major: u32, minor: u32, via: &str) -> Store {
    let host = mountinfo::read(Path::new("/proc/1/mountinfo")).unwrap_or_default();
    let host_mount = host.iter().rev().find(|m| (m.major, m.minor) == (major, minor));
    if let Some(m) = host_mount.filter(|m| MEMORY_FS.contains(&m.fstype.as_str())) {
        return Store::Memory { fstype: m.fstype.clone() };
    }
    let mut dev = (major, minor);
    if block_name(dev).is_none() {
        let rdev = host_mount
            .filter(|m| m.source.starts_with("/dev/"))
            .and_then(|m| std::fs::metadata(&m.source).ok())
            .map(|meta| (libc::major(meta.rdev()), libc::minor(meta.rdev())));
        match rdev {
            Some(d) => dev = d,
            None => return Store::Unknown { why: format!("{via}: device {major}:{minor} is not a block device") },
        }
    }
    let Some(name) = block_name(dev) else {
        return Store::Unknown { why: format!("{via}: no /sys/dev/block/{}:{}", dev.0, dev.1) };
    };
    let disk = whole_disk(&name);
    let (disk_major, disk_minor) = std::fs::read_to_string(format!("/sys/class/block/{disk}/dev"))
        .ok()
        .and_then(|s| s.trim().split_once(':').and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?))))
        .unwrap_or(dev);
    let volatile_cache = std::fs::read_to_string(format!("/sys/block/{disk}/queue/write_cache"))
        .ok()
        .map(|s| s.trim() == "write back");
    Store::Device(Device { name, major: dev.0, minor: dev.1, disk, disk_major, disk_minor, volatile_cache, via: format!("{via} → {major}:{minor}") })
}

/// The kernel name of a block device (`vda1`), which is its /proc/diskstats name.
fn block_name((major, minor): (u32, u32)) -> Option<String> {
    let link = std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).ok()?;
    link.file_name().map(|n| n.to_string_lossy().into_owned())
}

/// `vda` for `vda1` (a partition's sysfs directory sits inside its disk's), `vda` for `vda`.
fn whole_disk(name: &str) -> String {
    let dir = PathBuf::from(format!("/sys/class/block/{name}"));
    if dir.join("partition").exists() {
        if let Some(parent) = std::fs::canonicalize(&dir).ok().and_then(|p| p.parent().map(Path::to_path_buf)) {
            if let Some(n) = parent.file_name() {
                return n.to_string_lossy().into_owned();
            }
        }
    }
    name.to_string()
}

/// The process that serves the FUSE mount with device `major:minor`: it holds /dev/fuse open
/// and the mount is in its mount namespace. When several daemons share a namespace, the one
/// whose command line names the mount point is it.
fn find_fuse_daemon(major: u32, minor: u32) -> Option<FuseDaemon> {
    let mut candidates = Vec::new();
    for pid in proc_pids() {
        if !holds_dev_fuse(pid) {
            continue;
        }
        let Ok(mounts) = mountinfo::read(Path::new(&format!("/proc/{pid}/mountinfo"))) else { continue };
        let Some(m) = mounts.iter().find(|m| (m.major, m.minor) == (major, minor)) else { continue };
        let cmdline = read_cmdline(pid);
        let names_mount = cmdline.iter().any(|a| a == &m.mount_point);
        candidates.push((names_mount, pid, cmdline));
    }
    // A daemon inside the container's own namespace sees the mount at "/" after pivot_root,
    // so its command line cannot match; a lone candidate is taken as is.
    let pick = if candidates.len() == 1 { candidates.pop() } else { candidates.into_iter().find(|c| c.0) };
    pick.map(|(_, pid, cmdline)| FuseDaemon {
        pid,
        comm: std::fs::read_to_string(format!("/proc/{pid}/comm")).map(|s| s.trim().to_string()).unwrap_or_default(),
        options: fuse_options(&cmdline),
        cmdline,
    })
}

fn proc_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default()
}

/// /dev/fuse is the misc character device 10:229 (devices.txt). Matched by number, not by
/// link text: a daemon inside a container shows it as `/fuse` from its own new /dev.
const DEV_FUSE: (u32, u32) = (10, 229);

fn holds_dev_fuse(pid: u32) -> bool {
    use std::os::unix::fs::FileTypeExt;
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    fds.filter_map(|e| e.ok()).any(|e| {
        std::fs::metadata(e.path())
            .is_ok_and(|m| m.file_type().is_char_device() && (libc::major(m.rdev()), libc::minor(m.rdev())) == DEV_FUSE)
    })
}

fn read_cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| b.split(|c| *c == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect())
        .unwrap_or_default()
}

/// Every `-o a,b` / `-oa,b` option of a FUSE daemon's command line, split at commas.
pub fn fuse_options(cmdline: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut args = cmdline.iter();
    while let Some(a) = args.next() {
        let opts = match a.strip_prefix("-o") {
            Some("") => args.next().map(String::as_str),
            Some(rest) => Some(rest),
            None => None,
        };
        out.extend(opts.into_iter().flat_map(|o| o.split(',')).filter(|o| !o.is_empty()).map(str::to_string));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuse_daemon_options_from_podman_rootless_cmdline() {
        // As captured from this machine's rootless podman (note the trailing comma).
        let cmd: Vec<String> = [
            "/usr/bin/fuse-overlayfs",
            "-o",
            "lowerdir=/h/l/L4RH,upperdir=/h/085d/diff,workdir=/h/085d/work,",
            "/h/085d/merged",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let d = FuseDaemon { pid: 1, comm: "fuse-overlayfs".into(), options: fuse_options(&cmd), cmdline: cmd };
        assert_eq!(d.options, vec!["lowerdir=/h/l/L4RH", "upperdir=/h/085d/diff", "workdir=/h/085d/work"]);
        assert_eq!(d.option("upperdir"), Some("/h/085d/diff"));
        assert!(!d.options.iter().any(|o| o == "volatile"));
        let joined = fuse_options(&["x".into(), "-ofsync=0,volatile".into(), "-o".into(), "ro".into()]);
        assert_eq!(joined, vec!["fsync=0", "volatile", "ro"]);
    }

    #[test]
    fn memory_and_root_device_on_this_host() {
        let mounts = mountinfo::read(Path::new("/proc/self/mountinfo")).unwrap();
        let root = mountinfo::mount_of(&mounts, "/").unwrap();
        let t = Target { path: "/".into(), dev_major: root.major, dev_minor: root.minor, mount: Some(root.clone()), root_mount: None };
        // The root filesystem is on a disk here (CI VMs and laptops alike), never in RAM.
        assert!(!matches!(resolve(&t).store, Store::Memory { .. }));
        if let Some(shm) = mounts.iter().find(|m| m.mount_point == "/dev/shm" && m.fstype == "tmpfs") {
            let t = Target { mount: Some(shm.clone()), ..t };
            assert_eq!(resolve(&t).store, Store::Memory { fstype: "tmpfs".into() });
        }
    }
}

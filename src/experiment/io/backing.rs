//! Which block device really stores what the worker writes. The container sees an overlay or
//! a FUSE mount on an anonymous device (0:NN) that no disk counter knows; the data lands in
//! the overlay's upper directory, or in the FUSE daemon's, on a real filesystem on a real
//! disk. This follows that chain from the worker's mountinfo entry to a /proc/diskstats name.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::protocol::Target;
use crate::sys::block::{self, Chain, Node, Resolved, Stack};
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
    /// The stack under the file could not be followed to a disk (why says where it stopped).
    Unknown { why: String },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Device {
    /// The device the filesystem sits on, by its /proc/diskstats name: where bytes count.
    pub name: String,
    pub major: u32,
    pub minor: u32,
    /// Everything under it down to the disks, which count the flushes and hold the cache.
    pub chain: Chain,
    pub via: String,
}

impl Device {
    /// The whole disks at the bottom of the stack.
    pub fn bottoms(&self) -> Vec<&Node> {
        self.chain.bottoms()
    }

    /// Some bottom disk keeps written data in a volatile cache until a flush; None if the
    /// kernel does not say.
    pub fn volatile_cache(&self) -> Option<bool> {
        self.chain.volatile_cache()
    }
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
            _ => store(block::resolve_mount(m), &format!("{} {} mounted at {}", m.fstype, m.source, m.mount_point)),
        },
    };
    Backing { mount: target.mount.clone(), root_mount: target.root_mount.clone(), store, fuse_daemon }
}

fn store(r: Result<Resolved, String>, via: &str) -> Store {
    match r {
        Ok(Resolved::Device(chain)) => {
            let top = &chain.top;
            Store::Device(Device { name: top.name.clone(), major: top.major, minor: top.minor, via: via.to_string(), chain })
        }
        Ok(Resolved::Memory { fstype }) => Store::Memory { fstype },
        Err(why) => Store::Unknown { why: format!("{via}: {why}") },
    }
}

/// A host directory's stack: through the host mount with its st_dev when there is one, else
/// by its path (btrfs subvolumes have an st_dev of their own that no mount shows).
fn store_of_path(path: &Path, via: &str) -> Store {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return Store::Unknown { why: format!("stat {}: {e}", path.display()) },
    };
    let dev = (libc::major(meta.dev()), libc::minor(meta.dev()));
    let resolved = block::host_mounts().and_then(|host| {
        let stack = Stack::new(Path::new(block::SYS), &host).map_err(|e| format!("reading {}/block: {e}", block::SYS))?;
        match host.iter().rev().find(|m| (m.major, m.minor) == dev) {
            Some(m) => stack.of_mount(m),
            None => stack.of_path(path),
        }
    });
    store(resolved, via)
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

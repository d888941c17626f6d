//! The container's view of the system, mounted by its init inside the new mount namespace:
//! /proc, a minimal /dev, /sys read-only, then pivot_root and the old root detached.
//! Every path is built by the parent before the clone, so the init does no allocation here.

use std::ffi::CString;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};

#[derive(Debug, thiserror::Error)]
#[error("mounts: {what} {path}: {errno}")]
pub struct MountError {
    pub what: &'static str,
    pub path: String,
    pub errno: Errno,
}

/// (name, major, minor): the devices every container runtime provides (OCI runtime spec,
/// "Default Devices").
const DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];
const DEV_LINKS: [(&str, &str); 4] = [
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
];

pub struct Plan {
    root: CString,
    proc_dir: CString,
    dev_dir: CString,
    sys_dir: CString,
    /// (path in the new /dev, host device, device number)
    nodes: Vec<(CString, CString, u64)>,
    links: Vec<(CString, CString)>,
    /// In a user namespace mknod is refused (EPERM): host nodes are bind-mounted instead.
    bind_nodes: bool,
    /// sysfs may only be mounted by the owner of the current net namespace: a user namespace
    /// without its own net namespace bind-mounts the host's /sys instead.
    bind_sys: bool,
    /// Read-write /sys (privileged containers); read-only otherwise.
    sys_flags: MsFlags,
}

fn c(p: &Path) -> CString {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes()).expect("path without NUL")
}

fn err<'a>(what: &'static str, path: &'a CString) -> impl FnOnce(Errno) -> MountError + 'a {
    move |errno| MountError {
        what,
        path: path.to_string_lossy().into_owned(),
        errno,
    }
}

impl Plan {
    pub fn new(root: &Path, rootless: bool, own_net: bool, privileged: bool) -> Plan {
        let mut sys_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        if !privileged {
            sys_flags |= MsFlags::MS_RDONLY;
        }
        let dev = root.join("dev");
        Plan {
            root: c(root),
            proc_dir: c(&root.join("proc")),
            dev_dir: c(&dev),
            sys_dir: c(&root.join("sys")),
            nodes: DEVICES
                .iter()
                .map(|(n, maj, min)| {
                    (
                        c(&dev.join(n)),
                        c(&Path::new("/dev").join(n)),
                        makedev(*maj, *min),
                    )
                })
                .collect(),
            links: DEV_LINKS
                .iter()
                .map(|(target, name)| (c(Path::new(target)), c(&dev.join(name))))
                .collect(),
            bind_nodes: rootless,
            bind_sys: rootless && !own_net,
            sys_flags,
        }
    }

    /// Stops mounts from propagating back to the host: systemd makes / shared, and a
    /// private copy of a shared tree would otherwise still send our mounts to the host.
    pub fn make_private(&self) -> Result<(), MountError> {
        mount(
            None::<&str>,
            c"/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|errno| MountError {
            what: "make-rprivate",
            path: "/".into(),
            errno,
        })
    }

    fn ensure_dir(dir: &CString) -> Result<(), MountError> {
        match nix::unistd::mkdir(dir.as_c_str(), Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => Ok(()),
            Err(e) => Err(err("mkdir", dir)(e)),
        }
    }

    pub fn proc(&self) -> Result<(), MountError> {
        Self::ensure_dir(&self.proc_dir)?;
        let fl = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        mount(
            Some(c"proc"),
            self.proc_dir.as_c_str(),
            Some(c"proc"),
            fl,
            None::<&str>,
        )
        .map_err(err("mount proc on", &self.proc_dir))
    }

    pub fn dev(&self) -> Result<(), MountError> {
        Self::ensure_dir(&self.dev_dir)?;
        let fl = MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME;
        mount(
            Some(c"tmpfs"),
            self.dev_dir.as_c_str(),
            Some(c"tmpfs"),
            fl,
            Some(c"mode=755,size=64k"),
        )
        .map_err(err("mount tmpfs on", &self.dev_dir))?;
        for (path, host, devno) in &self.nodes {
            if self.bind_nodes {
                // SAFETY: plain open(2) of a path we just built; the fd is closed right away.
                let fd = unsafe {
                    libc::open(
                        path.as_ptr(),
                        libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                        0o666,
                    )
                };
                if fd < 0 {
                    return Err(err("create bind target", path)(Errno::last()));
                }
                // SAFETY: fd was just returned by open.
                unsafe { libc::close(fd) };
                mount(
                    Some(host.as_c_str()),
                    path.as_c_str(),
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(err("bind-mount device", path))?;
            } else {
                mknod(
                    path.as_c_str(),
                    SFlag::S_IFCHR,
                    Mode::from_bits_truncate(0o666),
                    *devno,
                )
                .map_err(err("mknod", path))?;
            }
        }
        for (target, link) in &self.links {
            nix::unistd::symlinkat(target.as_c_str(), None, link.as_c_str())
                .map_err(err("symlink", link))?;
        }
        Ok(())
    }

    pub fn sys(&self) -> Result<(), MountError> {
        Self::ensure_dir(&self.sys_dir)?;
        let fl = self.sys_flags;
        if self.bind_sys {
            let rbind = MsFlags::MS_BIND | MsFlags::MS_REC;
            mount(
                Some(c"/sys"),
                self.sys_dir.as_c_str(),
                None::<&str>,
                rbind,
                None::<&str>,
            )
            .map_err(err("bind-mount /sys on", &self.sys_dir))?;
            // Read-only takes a remount of the bind (mount(2)); flags locked by the user
            // namespace (nosuid, nodev, noexec of the host's /sys) must be kept.
            if !fl.contains(MsFlags::MS_RDONLY) {
                return Ok(());
            }
            return mount(
                None::<&str>,
                self.sys_dir.as_c_str(),
                None::<&str>,
                fl | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
                None::<&str>,
            )
            .map_err(err("remount read-only", &self.sys_dir));
        }
        mount(
            Some(c"sysfs"),
            self.sys_dir.as_c_str(),
            Some(c"sysfs"),
            fl,
            None::<&str>,
        )
        .map_err(err("mount sysfs on", &self.sys_dir))
    }

    /// pivot_root(".", ".") stacks the old root under the new one at "/", so no put_old
    /// directory is needed inside the image (pivot_root(2), "NOTES"); detaching "/" then
    /// drops the old root, lazily because the host's mounts below it may be busy.
    pub fn pivot(&self) -> Result<(), MountError> {
        nix::unistd::chdir(self.root.as_c_str()).map_err(err("chdir", &self.root))?;
        nix::unistd::pivot_root(c".", c".").map_err(err("pivot_root", &self.root))?;
        umount2(c".", MntFlags::MNT_DETACH).map_err(|errno| MountError {
            what: "umount old root",
            path: "/".into(),
            errno,
        })?;
        nix::unistd::chdir(c"/").map_err(|errno| MountError {
            what: "chdir",
            path: "/".into(),
            errno,
        })
    }
}

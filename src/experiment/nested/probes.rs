//! What the outer container lets a process inside it do, found by trying it: the worker
//! (`probe nested inside`) runs these checks in the outer container before it starts the
//! inner engine, so a failure can be traced to the syscall that the inner engine needs and
//! this container refuses, with the kernel's errno, instead of to a guess from a message.
//!
//! Each syscall check runs in a forked child: unshare() and mount() change the calling
//! process, and the worker must stay as it was to run the inner engine afterwards. The
//! worker is single-threaded when it forks, so the child may allocate and format freely.

use std::ffi::CString;
use std::fs;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use serde::{Deserialize, Serialize};

/// One thing tried: which syscall, and the errno it got (None = it worked).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Check {
    pub name: CheckName,
    pub syscall: String,
    pub errno: Option<String>,
}

impl Check {
    pub fn ok(&self) -> bool {
        self.errno.is_none()
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CheckName {
    /// A mount namespace: every runtime's first step.
    MountNs,
    /// A tmpfs in a new mount namespace: mount permission at all.
    MountTmpfs,
    /// A fresh procfs in new pid+mount namespaces, as runc does for a rootful container.
    MountProc,
    /// A user namespace: what an engine without CAP_SYS_ADMIN falls back to (rootless mode).
    UserNs,
    /// A fresh procfs inside new user+pid+mount namespaces, as runc does in rootless mode.
    MountProcUserns,
    /// Opening /dev/fuse, which fuse-overlayfs needs.
    DevFuse,
    /// An overlay mount on the inner engine's storage directory.
    Overlay,
    /// mkdir in the cgroup hierarchy, which runc does for every container.
    CgroupMkdir,
    /// connect() to the Docker socket.
    DockerSocket,
}

/// The outer container's confinement, read from procfs: the context every errno is read in.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Confinement {
    /// CapEff as hex, and how many of the kernel's capabilities that is.
    pub cap_eff: String,
    pub caps_held: u32,
    pub caps_known: u32,
    /// Capabilities an engine needs that the container lacks (CAP_SYS_ADMIN, ...).
    pub missing_caps: Vec<String>,
    /// 0 none, 1 strict, 2 filter (/proc/self/status Seccomp).
    pub seccomp: u8,
    pub no_new_privs: bool,
    /// AppArmor or SELinux label of this process, "unconfined" or "none" (no LSM).
    pub lsm_label: String,
    /// /proc paths covered by other mounts (masked or read-only): the kernel refuses a new
    /// procfs in a user namespace while any part of /proc is hidden (mount_too_revealing).
    pub proc_overmounts: Vec<String>,
    /// /proc/self/uid_map, one line per range: "0 0 4294967295" means no user namespace.
    pub uid_map: String,
    pub max_user_namespaces: Option<u64>,
    /// Device nodes under /dev: a privileged container sees all of the host's.
    pub devices: usize,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Probes {
    pub confinement: Confinement,
    pub checks: Vec<Check>,
}

impl Probes {
    pub fn get(&self, name: CheckName) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }
}

/// Capabilities a container engine uses, by bit: the ones worth naming when missing.
const ENGINE_CAPS: &[(u32, &str)] = &[
    (21, "CAP_SYS_ADMIN"),
    (12, "CAP_NET_ADMIN"),
    (27, "CAP_MKNOD"),
    (24, "CAP_SYS_RESOURCE"),
    (19, "CAP_SYS_PTRACE"),
    (7, "CAP_SETUID"),
    (6, "CAP_SETGID"),
    (18, "CAP_SYS_CHROOT"),
];

pub fn cap_name(bit: u32) -> String {
    ENGINE_CAPS
        .iter()
        .find(|(b, _)| *b == bit)
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|| format!("capability bit {bit}"))
}

fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|l| l.strip_prefix(key).map(str::trim))
}

/// Reads the confinement of the current process.
pub fn confinement() -> Confinement {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let cap_eff = status_field(&status, "CapEff:").unwrap_or("0").to_string();
    let eff = u64::from_str_radix(&cap_eff, 16).unwrap_or(0);
    let last_cap: u32 = fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    let missing_caps = ENGINE_CAPS
        .iter()
        .filter(|(bit, _)| eff & (1 << bit) == 0)
        .map(|(_, n)| n.to_string())
        .collect();
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    Confinement {
        cap_eff,
        caps_held: (0..=last_cap).filter(|b| eff & (1 << b) != 0).count() as u32,
        caps_known: last_cap + 1,
        missing_caps,
        seccomp: status_field(&status, "Seccomp:").and_then(|v| v.parse().ok()).unwrap_or(0),
        no_new_privs: status_field(&status, "NoNewPrivs:") == Some("1"),
        lsm_label: lsm_label(),
        proc_overmounts: overmounts(&mountinfo, "/proc"),
        uid_map: fs::read_to_string("/proc/self/uid_map").unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" "),
        max_user_namespaces: fs::read_to_string("/proc/sys/user/max_user_namespaces").ok().and_then(|s| s.trim().parse().ok()),
        devices: fs::read_dir("/dev")
            .map(|d| {
                d.flatten()
                    .filter(|e| {
                        use std::os::unix::fs::FileTypeExt;
                        e.file_type().map(|t| t.is_char_device() || t.is_block_device()).unwrap_or(false)
                    })
                    .count()
            })
            .unwrap_or(0),
    }
}

fn lsm_label() -> String {
    for p in ["/proc/self/attr/apparmor/current", "/proc/self/attr/current"] {
        if let Ok(s) = fs::read_to_string(p) {
            let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
            if !s.is_empty() {
                return s.to_string();
            }
        }
    }
    "none".into()
}

/// Mount points strictly below `dir`, from mountinfo text.
pub fn overmounts(mountinfo: &str, dir: &str) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|p| p.starts_with(&format!("{dir}/")))
        .map(str::to_string)
        .collect()
}

/// Exit status of a check's child whose own code panicked: above every errno (they end at
/// 133), so a real EIO is never taken for a panic or the other way round.
const PANICKED: i32 = 255;

/// How a check's child ended when the syscall did not succeed. Only `Errno` is the kernel's
/// answer; the others say the check could not judge, and are recorded as such.
#[derive(Debug, PartialEq)]
enum Failed {
    Errno(Errno),
    /// The child died of a signal before it could report an errno.
    Signal(nix::sys::signal::Signal),
    /// probe's own code panicked in the child.
    Panicked,
    /// fork or waitpid failed: the check did not run or was not seen to end.
    NotRun(String),
}

impl Failed {
    /// The `errno` field of a Check: the errno's name, or what happened instead
    /// (cause.rs reads these prefixes).
    fn describe(&self) -> String {
        match self {
            Failed::Errno(e) => format!("{e:?}"),
            Failed::Signal(s) => format!("{SIGNAL_DEATH}{s:?}"),
            Failed::Panicked => PANIC.into(),
            Failed::NotRun(why) => format!("{NOT_RUN}{why}"),
        }
    }
}

pub const SIGNAL_DEATH: &str = "killed by ";
pub const PANIC: &str = "probe panicked";
pub const NOT_RUN: &str = "check not run: ";

/// Runs `f` in a forked child and says how it failed (None = success), so namespace and
/// mount changes stay in the child.
fn in_child(f: impl FnOnce() -> Result<(), Errno>) -> Option<Failed> {
    // SAFETY: the worker is single-threaded when it probes (no threads were spawned), so the
    // child may run arbitrary code; it leaves through _exit only.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            // A panic must not unwind into the parent's code running on in the child.
            let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                Ok(Ok(())) => 0,
                Ok(Err(e)) => e as i32,
                Err(_) => PANICKED,
            };
            // SAFETY: _exit skips atexit handlers and buffers that belong to the parent.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, 0)) => None,
            Ok(WaitStatus::Exited(_, PANICKED)) => Some(Failed::Panicked),
            Ok(WaitStatus::Exited(_, code)) => Some(Failed::Errno(Errno::from_raw(code))),
            Ok(WaitStatus::Signaled(_, sig, _)) => Some(Failed::Signal(sig)),
            Ok(other) => Some(Failed::NotRun(format!("waitpid returned {other:?}"))),
            Err(e) => Some(Failed::NotRun(format!("waitpid: {e:?}"))),
        },
        Err(e) => Some(Failed::NotRun(format!("fork: {e:?}"))),
    }
}

/// Makes every mount in a fresh mount namespace private, so nothing leaks to the container.
fn private_root() -> Result<(), Errno> {
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
}

fn mount_fresh_proc() -> Result<(), Errno> {
    mount(Some("proc"), "/proc", Some("proc"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC, None::<&str>)
}

/// unshare(NEWPID) only affects children: fork once more so the mount happens as pid 1 of
/// the new namespace, as runc's init does.
fn as_pid1(f: impl FnOnce() -> Result<(), Errno>) -> Result<(), Errno> {
    match in_child(f) {
        None => Ok(()),
        Some(Failed::Errno(e)) => Err(e),
        // This runs in a check's child: end it the way its own child ended, so the check
        // reports the signal death, not an errno nobody returned.
        Some(Failed::Signal(sig)) => {
            // SAFETY: default disposition, then the signal to ourselves: a forked child ends.
            unsafe {
                libc::signal(sig as i32, libc::SIG_DFL);
                libc::raise(sig as i32);
            }
            unreachable!("{sig:?} with its default action ends the process")
        }
        Some(other) => panic!("pid 1 of the check: {}", other.describe()),
    }
}

/// Maps our uid and gid to 0 in a fresh user namespace, as a rootless engine does.
fn enter_userns() -> Result<(), Errno> {
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    unshare(CloneFlags::CLONE_NEWUSER)?;
    let write = |p: &str, s: String| fs::write(p, s).map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)));
    write("/proc/self/setgroups", "deny".into())?;
    write("/proc/self/uid_map", format!("0 {uid} 1"))?;
    write("/proc/self/gid_map", format!("0 {gid} 1"))
}

/// The writable cgroup directory runc would create a child in: the first v1 controller, or
/// the v2 root.
fn cgroup_dir() -> &'static str {
    ["/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup"]
        .into_iter()
        .find(|d| Path::new(d).is_dir())
        .unwrap_or("/sys/fs/cgroup")
}

fn check(name: CheckName, syscall: String, f: impl FnOnce() -> Result<(), Errno>) -> Check {
    Check {
        name,
        syscall,
        errno: in_child(f).map(|e| e.describe()),
    }
}

/// Runs every check. `storage` is where the inner engine keeps its layers (overlay is tried
/// there, on the filesystem it will really use).
pub fn run_all(storage: &Path) -> Probes {
    let cg = cgroup_dir();
    let scratch = storage.join(format!(".probe-check-{}", std::process::id()));
    let checks = vec![
        check(CheckName::MountNs, "unshare(CLONE_NEWNS)".into(), || unshare(CloneFlags::CLONE_NEWNS)),
        check(CheckName::MountTmpfs, "mount(\"tmpfs\", /tmp) in a new mount namespace".into(), || {
            unshare(CloneFlags::CLONE_NEWNS)?;
            private_root()?;
            mount(Some("tmpfs"), "/tmp", Some("tmpfs"), MsFlags::empty(), None::<&str>)
        }),
        check(CheckName::MountProc, "mount(\"proc\", /proc) in new pid+mount namespaces".into(), || {
            unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID)?;
            private_root()?;
            as_pid1(mount_fresh_proc)
        }),
        check(CheckName::UserNs, "unshare(CLONE_NEWUSER)".into(), || unshare(CloneFlags::CLONE_NEWUSER)),
        check(CheckName::MountProcUserns, "mount(\"proc\", /proc) in new user+pid+mount namespaces".into(), || {
            enter_userns()?;
            unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID)?;
            private_root()?;
            as_pid1(mount_fresh_proc)
        }),
        check(CheckName::DevFuse, "open(\"/dev/fuse\", O_RDWR)".into(), || {
            fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/fuse")
                .map(drop)
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
        }),
        check(CheckName::Overlay, format!("mount(\"overlay\") on {}", storage.display()), || overlay_in(&scratch)),
        check(CheckName::CgroupMkdir, format!("mkdir({cg}/probe-check)"), || {
            let dir = format!("{cg}/probe-check-{}", std::process::id());
            nix::unistd::mkdir(dir.as_str(), nix::sys::stat::Mode::from_bits_truncate(0o755))?;
            fs::remove_dir(&dir).map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
        }),
        check(CheckName::DockerSocket, "connect(\"/var/run/docker.sock\")".into(), || {
            std::os::unix::net::UnixStream::connect("/var/run/docker.sock")
                .map(drop)
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
        }),
    ];
    let _ = fs::remove_dir_all(&scratch);
    Probes {
        confinement: confinement(),
        checks,
    }
}

/// An overlay of lower/upper/work dirs under `scratch`, in a private mount namespace.
fn overlay_in(scratch: &Path) -> Result<(), Errno> {
    let io = |e: std::io::Error| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
    for d in ["lower", "upper", "work", "merged"] {
        fs::create_dir_all(scratch.join(d)).map_err(io)?;
    }
    unshare(CloneFlags::CLONE_NEWNS)?;
    private_root()?;
    let opts = format!(
        "lowerdir={0}/lower,upperdir={0}/upper,workdir={0}/work",
        scratch.display()
    );
    let target = CString::new(scratch.join("merged").as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    mount(Some("overlay"), target.as_c_str(), Some("overlay"), MsFlags::empty(), Some(opts.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "101 99 0:44 / /proc rw,nosuid - proc proc rw\n\
        73 101 0:44 /bus /proc/bus ro,nosuid - proc proc rw\n\
        78 101 0:45 /null /proc/keys rw,nosuid - tmpfs tmpfs rw\n\
        90 99 0:50 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs rw\n\
        91 90 0:51 / /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n";

    #[test]
    fn finds_overmounts() {
        assert_eq!(overmounts(MOUNTINFO, "/proc"), ["/proc/bus", "/proc/keys"]);
        assert!(overmounts("", "/proc").is_empty());
    }

    #[test]
    fn a_signal_death_and_a_panic_are_not_errnos() {
        let killed = in_child(|| {
            nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL)?;
            Ok(())
        });
        assert_eq!(killed, Some(Failed::Signal(nix::sys::signal::Signal::SIGKILL)));
        assert_eq!(killed.unwrap().describe(), "killed by SIGKILL");
        assert_eq!(in_child(|| panic!("probe bug")), Some(Failed::Panicked));
        assert_eq!(in_child(|| Err(Errno::EIO)), Some(Failed::Errno(Errno::EIO)));
        assert_eq!(in_child(|| Ok(())), None);
        // Through the pid-1 grandchild too: the signal reaches the check's own status.
        let nested = in_child(|| as_pid1(|| { nix::sys::signal::raise(nix::sys::signal::Signal::SIGTERM)?; Ok(()) }));
        assert_eq!(nested, Some(Failed::Signal(nix::sys::signal::Signal::SIGTERM)));
    }

    #[test]
    fn checks_round_trip_as_json() {
        let c = Check { name: CheckName::MountProcUserns, syscall: "mount".into(), errno: Some("EPERM".into()) };
        let back: Check = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        assert!(!back.ok());
    }
}

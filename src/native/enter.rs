//! Entering a running native container to run one more command in it, as `docker exec`
//! does through runc and `nsenter --all` does by hand: join its cgroups, then its namespaces,
//! then its root, then exec.
//!
//! Order matters:
//! - cgroups first: moving into a cgroup from inside another cgroup namespace needs the
//!   source and destination both visible from it, which they are only from the host's.
//! - user namespace first among namespaces, so the others are joined with the capabilities
//!   it grants; mnt last, so /proc/PID paths stay valid until then (all fds are opened in
//!   the parent anyway).
//! - pid: setns(CLONE_NEWPID) only places the caller's *children* in the namespace, so the
//!   joined process forks once more; the middle process waits and passes the exit status
//!   on, and wait4 on it still reports the whole tree's CPU time.
//!
//! Everything that allocates or can fail with a message happens in the parent; the child
//! between fork and exec only makes raw syscalls on prepared fds (async-signal-safe).
//!
//! Not replicated: the container's capability drop and no_new_privs (the entered command
//! keeps probe's root capabilities), and named v1 hierarchies such as name=systemd, which
//! carry no controller. Neither changes what a CPU loop costs, which is what this is for.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use crate::sys::procfs;

/// Joined in this order (nsenter's order too); see the module comment.
const NAMESPACES: [(&str, libc::c_int); 7] = [
    ("user", libc::CLONE_NEWUSER),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("net", libc::CLONE_NEWNET),
    ("pid", libc::CLONE_NEWPID),
    ("mnt", libc::CLONE_NEWNS),
];

/// What a process in a container sees instead of probe's environment.
const CONTAINER_ENV: [(&str, &str); 2] = [("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"), ("HOME", "/root")];

#[derive(Debug, thiserror::Error)]
pub enum EnterError {
    #[error("enter: cannot open {path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("enter: cannot read the cgroups of pid {pid}: {source}")]
    Cgroups { pid: u32, source: procfs::ProcError },
    #[error("enter: cannot detect the cgroup layout: {0}")]
    Layout(#[from] crate::sys::cgroup::CgroupError),
    #[error("enter: empty command")]
    NoCommand,
}

fn open(path: PathBuf, write: bool, extra: libc::c_int) -> Result<OwnedFd, EnterError> {
    File::options()
        .read(!write)
        .write(write)
        .custom_flags(libc::O_CLOEXEC | extra)
        .open(&path)
        .map(OwnedFd::from)
        .map_err(|source| EnterError::Open { path, source })
}

/// A namespace of `pid` differs from ours: compare the nsfs inodes.
fn differs(pid: u32, ns: &str) -> Result<bool, EnterError> {
    let ino = |p: PathBuf| std::fs::metadata(&p).map(|m| (m.dev(), m.ino())).map_err(|source| EnterError::Open { path: p, source });
    Ok(ino(PathBuf::from(format!("/proc/{pid}/ns/{ns}")))? != ino(PathBuf::from(format!("/proc/self/ns/{ns}")))?)
}

/// cgroup.procs of every hierarchy `pid` is in that this host's layout knows.
fn cgroup_procs(pid: u32) -> Result<Vec<OwnedFd>, EnterError> {
    let layout = crate::sys::cgroup::detect()?;
    let lines = procfs::cgroups_of(pid).map_err(|source| EnterError::Cgroups { pid, source })?;
    let mut fds = Vec::new();
    for l in &lines {
        let mount = if l.id == 0 {
            layout.unified.as_ref()
        } else {
            // Named hierarchies (name=systemd) carry no controller and are not in the layout.
            l.controllers.iter().find_map(|c| layout.v1.get(c))
        };
        if let Some(m) = mount {
            fds.push(open(m.join(l.path.trim_start_matches('/')).join("cgroup.procs"), true, 0)?);
        }
    }
    Ok(fds)
}

/// A command that runs `argv` inside the running container whose init is `pid`: in its
/// cgroups, namespaces and root, with a container's PATH. Spawn it (and time it) like any
/// Command; its wait status is the command's.
pub fn command(pid: u32, argv: &[String]) -> Result<Command, EnterError> {
    let (program, args) = argv.split_first().ok_or(EnterError::NoCommand)?;
    let cgroups = cgroup_procs(pid)?;
    let mut namespaces = Vec::new();
    for (name, flag) in NAMESPACES {
        if differs(pid, name)? {
            namespaces.push((open(PathBuf::from(format!("/proc/{pid}/ns/{name}")), false, 0)?, flag));
        }
    }
    let fork_for_pid = namespaces.iter().any(|(_, f)| *f == libc::CLONE_NEWPID);
    let root = open(PathBuf::from(format!("/proc/{pid}/root")), false, libc::O_DIRECTORY)?;

    let mut cmd = Command::new(program);
    cmd.args(args).env_clear().envs(CONTAINER_ENV);
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe syscalls on fds prepared above; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            let check = |r: libc::c_int| if r < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) };
            for fd in &cgroups {
                if libc::write(fd.as_raw_fd(), b"0".as_ptr().cast(), 1) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (fd, flag) in &namespaces {
                check(libc::setns(fd.as_raw_fd(), *flag))?;
            }
            check(libc::fchdir(root.as_raw_fd()))?;
            check(libc::chroot(c".".as_ptr()))?;
            check(libc::chdir(c"/".as_ptr()))?;
            if fork_for_pid {
                match libc::fork() {
                    -1 => return Err(std::io::Error::last_os_error()),
                    0 => {}
                    child => pass_status_on(child),
                }
            }
            Ok(())
        });
    }
    Ok(cmd)
}

/// The middle process: wait for the command and exit as it did. It first closes every
/// inherited fd so that it holds nothing open — in particular not the pipe through which
/// the spawning parent learns that exec succeeded, or spawn would block until the end.
unsafe fn pass_status_on(child: libc::pid_t) -> ! {
    libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
    let mut status = 0;
    loop {
        let r = libc::waitpid(child, &mut status, 0);
        if r == child {
            break;
        }
        if r < 0 && *libc::__errno_location() != libc::EINTR {
            libc::_exit(127);
        }
    }
    if libc::WIFEXITED(status) {
        libc::_exit(libc::WEXITSTATUS(status));
    }
    libc::_exit(128 + libc::WTERMSIG(status));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_namespaces_do_not_differ() {
        for (name, _) in NAMESPACES {
            assert!(!differs(std::process::id(), name).unwrap(), "{name}");
        }
    }

    #[test]
    fn entering_ourselves_runs_the_command() {
        // With nothing to join but our own cgroups (root only: cgroup.procs is root's), the
        // command still runs through the whole path and its status comes back.
        if !crate::ground::testing::require_root() {
            return;
        }
        let status = command(std::process::id(), &["/bin/sh".into(), "-c".into(), "exit 7".into()]).unwrap().status().unwrap();
        assert_eq!(status.code(), Some(7));
        assert!(matches!(command(1, &[]), Err(EnterError::NoCommand)));
    }
}

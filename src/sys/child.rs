//! Waiting for one child process exactly: wait4(2) for its own rusage, pidfd_open(2) to poll
//! for its exit, and `wait_exit`, the one poll-until-exit loop (measure's timer, probe trace).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Waits for `pid` with wait4(2), retrying on EINTR, and returns (exit code, rusage).
pub fn wait4_pid(pid: libc::pid_t) -> io::Result<(i32, libc::rusage)> {
    let mut status = 0;
    // SAFETY: rusage is plain old data; zeroed is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; pid is our own child.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        -1
    };
    Ok((code, ru))
}

/// A pidfd for `pid`: pollable, readable once the process has exited.
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// How long `wait_exit` may sleep before it looks again, and what else ends the sleep.
pub struct Sleep {
    pub period_ms: i32,
    pub fds: Vec<RawFd>,
}

/// What `wait_exit` does besides waiting.
pub struct Waiting<'a> {
    /// Called before each sleep: does what a wake calls for (drains the tracer's rings) and
    /// says how long to sleep at most (the longest gap between two looks at the Ctrl-C flag)
    /// and which more fds wake the wait (those rings).
    pub tick: &'a mut dyn FnMut() -> Sleep,
    /// Called once with the pid on Ctrl-C; the wait then goes on until the child is gone.
    pub stop: &'a mut dyn FnMut(u32),
}

/// Returns once child `pid` has exited, without reaping it (wait4 after still gets its
/// status and rusage). Polls its pidfd, so the exit is seen the moment it happens and a
/// timed window ends there, not up to a poll period later; without pidfds (Linux < 5.3, a
/// seccomp filter) it looks every 5 ms instead.
pub fn wait_exit(pid: u32, w: Waiting) -> io::Result<()> {
    let pidfd = pidfd_open(pid).ok();
    let mut stopped = false;
    loop {
        let Sleep { period_ms, mut fds } = (w.tick)();
        let timeout_ms = if pidfd.is_some() { period_ms } else { 5 };
        fds.extend(pidfd.as_ref().map(|p| p.as_raw_fd()));
        let mut pfds: Vec<libc::pollfd> = fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
        // SAFETY: pfds is a valid array of pollfd for its length. A signal ends it early, so
        // a Ctrl-C gets looked at promptly.
        let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
        if r < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return Err(io::Error::last_os_error());
        }
        if exited(pid)? {
            return Ok(());
        }
        if crate::sys::signals::interrupted() && !stopped {
            stopped = true;
            (w.stop)(pid);
        }
    }
}

/// Whether child `pid` has exited, leaving it to be reaped (waitid WNOWAIT).
fn exited(pid: u32) -> io::Result<bool> {
    // SAFETY: siginfo_t is plain old data; zeroed is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a local; pid is our own child.
    let r = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT) };
    if r < 0 {
        let err = io::Error::last_os_error();
        return if err.kind() == io::ErrorKind::Interrupted { Ok(false) } else { Err(err) };
    }
    // SAFETY: waitid filled info (si_pid stays 0 while the child runs).
    Ok(unsafe { info.si_pid() } != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_the_exit_and_leaves_the_child_to_be_reaped() {
        let child = std::process::Command::new("/bin/sh").args(["-c", "sleep 0.3; exit 4"]).spawn().unwrap();
        let mut asked = 0;
        let start = std::time::Instant::now();
        let w = Waiting { tick: &mut || { asked += 1; Sleep { period_ms: 50, fds: Vec::new() } }, stop: &mut |_| panic!("not interrupted") };
        wait_exit(child.id(), w).unwrap();
        assert!(start.elapsed().as_millis() >= 300, "returned before the exit");
        assert!(asked >= 2, "asked before each sleep: {asked}");
        assert_eq!(wait4_pid(child.id() as libc::pid_t).unwrap().0, 4, "not reaped by wait_exit");
    }
}

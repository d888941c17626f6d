//! SIGINT/SIGTERM while containers run. The handler only touches atomics and sends signals
//! (async-signal-safe); the parent notices at its next phase edge and unwinds normally, so
//! teardown always runs in the parent.
//!
//! - Interactive runs (stdio inherited): the first SIGINT is forwarded to the container's
//!   init, which decides (a pid-namespace init ignores signals it has no handler for, see
//!   pid_namespaces(7)); a second SIGINT, or any SIGTERM, kills the container and stops.
//! - Non-interactive runs (benchmarks): any SIGINT/SIGTERM kills the container and stops
//!   every later run.
//!
//! A handler installed before ours (e.g. crate::sys::signals, used by `probe startup`) is chained
//! so its own flag is still set.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Once;

static STOP: AtomicBool = AtomicBool::new(false);
/// CLOCK_MONOTONIC ns of the signal that requested the stop (0: none yet): an error can then
/// name the phase the container was in when it came, not the edge where it was noticed.
static STOP_AT_NS: AtomicU64 = AtomicU64::new(0);
/// pidfd of the running container's init (-1: none). A pidfd cannot hit a recycled pid.
static CHILD_PIDFD: AtomicI32 = AtomicI32::new(-1);
static FORWARD_FIRST: AtomicBool = AtomicBool::new(false);
static FORWARDED: AtomicU32 = AtomicU32::new(0);
/// The handlers for SIGINT and SIGTERM that were installed before ours (0: none to chain).
static PREVIOUS: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];
const SIGNALS: [libc::c_int; 2] = [libc::SIGINT, libc::SIGTERM];

fn pidfd_send(pidfd: i32, sig: i32) {
    // SAFETY: pidfd_send_signal(2) with a NULL info; harmless if the process already exited.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd,
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
}

extern "C" fn on_signal(sig: libc::c_int) {
    let prev = PREVIOUS[(sig == libc::SIGTERM) as usize].load(Ordering::SeqCst);
    if prev != 0 {
        // SAFETY: `prev` was read from sigaction as a plain handler (not SIG_DFL/SIG_IGN).
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(prev) };
        f(sig);
    }
    let pidfd = CHILD_PIDFD.load(Ordering::SeqCst);
    if pidfd >= 0
        && sig == libc::SIGINT
        && FORWARD_FIRST.load(Ordering::SeqCst)
        && FORWARDED.fetch_add(1, Ordering::SeqCst) == 0
    {
        pidfd_send(pidfd, sig);
        return;
    }
    // clock_gettime(2) is async-signal-safe (signal-safety(7)).
    let _ = STOP_AT_NS.compare_exchange(0, crate::sys::clock::monotonic_ns(), Ordering::SeqCst, Ordering::SeqCst);
    STOP.store(true, Ordering::SeqCst);
    if pidfd >= 0 {
        pidfd_send(pidfd, libc::SIGKILL);
    }
}

/// Installs the handlers once per process, without SA_RESTART like crate::sys::signals: blocking
/// calls elsewhere in probe rely on EINTR to notice a stop (ours retry on EINTR).
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (slot, sig) in PREVIOUS.iter().zip(SIGNALS) {
            // SAFETY: a zeroed sigaction with a valid handler and empty mask is well-formed;
            // `old` receives the previous disposition.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                let mut old: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(sig, &sa, &mut old);
                let chainable = old.sa_flags & libc::SA_SIGINFO == 0
                    && old.sa_sigaction != libc::SIG_DFL
                    && old.sa_sigaction != libc::SIG_IGN;
                if chainable {
                    slot.store(old.sa_sigaction, Ordering::SeqCst);
                }
            }
        }
    });
}

/// True once a stop was requested; stays true for the rest of the process.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// When the stop was requested (CLOCK_MONOTONIC ns), if it was.
pub fn stop_time_ns() -> Option<u64> {
    Some(STOP_AT_NS.load(Ordering::SeqCst)).filter(|&t| t != 0)
}

/// Registers the container's init; kills it at once if a stop came in meanwhile.
pub fn set_child(pidfd: i32, interactive: bool) {
    FORWARDED.store(0, Ordering::SeqCst);
    FORWARD_FIRST.store(interactive, Ordering::SeqCst);
    CHILD_PIDFD.store(pidfd, Ordering::SeqCst);
    if stop_requested() {
        pidfd_send(pidfd, libc::SIGKILL);
    }
}

/// Unregisters the init before its pidfd is closed.
pub fn clear_child() {
    CHILD_PIDFD.store(-1, Ordering::SeqCst);
}

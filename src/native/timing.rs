//! Phase-edge instrumentation: CLOCK_MONOTONIC stamps and perf software counters, read
//! without allocating so the same code runs in the cloned child before execve.

use std::os::fd::{AsRawFd, RawFd};

use perf_event::events::Software;
use perf_event::{Builder, Group, ReadFormat};

use crate::ground::phase::Counters;

/// CLOCK_MONOTONIC is system-wide, so stamps taken by the parent and by the container's
/// init line up on one time axis.
pub use crate::sys::clock::monotonic_ns as now_ns;

/// Number of counters in a group, in this order: task-clock, context switches, page
/// faults, cpu migrations. Hardware cycles/instructions are not opened: on hosts without a
/// PMU (VMs) they fail, and where they work they would double the per-edge read cost.
pub const NCOUNTERS: usize = 4;

/// A raw snapshot of one counter group. `valid` is false when the group could not be opened
/// or had not been enabled yet (time_enabled == 0), so the values must be read as "n/a".
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub valid: bool,
    pub values: [u64; NCOUNTERS],
}

impl Snapshot {
    /// Counter deltas from `self` to `later`; all "n/a" unless both ends are valid.
    pub fn delta(&self, later: &Snapshot) -> Counters {
        if !(self.valid && later.valid) {
            return Counters::default();
        }
        let d = |i: usize| Some(later.values[i].saturating_sub(self.values[i]));
        Counters {
            task_clock_ns: d(0),
            context_switches: d(1),
            page_faults: d(2),
            cpu_migrations: d(3),
            cycles: None,
            instructions: None,
        }
    }
}

/// One perf group (task-clock leader plus three software counters) on one task.
pub struct CounterGroup {
    leader: Group,
    // Members are only held open: the group read goes through the leader's fd.
    _members: Vec<perf_event::Counter>,
}

/// Who a counter group watches.
pub enum Target {
    /// The calling task, counting from now.
    SelfNow,
    /// Another task, counting only from its next execve (the user command): the exec and
    /// workload phases then start from zero instead of including probe's own setup.
    PidFromExec(libc::pid_t),
}

impl CounterGroup {
    /// Opens the group, or None when perf is unavailable (paranoid setting, seccomp): counters
    /// are then reported as "n/a" and the run goes on.
    pub fn open(target: Target) -> Option<Self> {
        let configure = |b: &mut Builder<'_>| {
            match target {
                Target::SelfNow => {
                    b.observe_self().enabled(true);
                }
                Target::PidFromExec(pid) => {
                    b.observe_pid(pid).enabled(false).enable_on_exec(true);
                }
            }
            b.any_cpu().exclude_hv(true);
        };
        let mut lb = Builder::new(Software::TASK_CLOCK);
        configure(&mut lb);
        lb.read_format(ReadFormat::GROUP | ReadFormat::TOTAL_TIME_ENABLED);
        let mut leader = lb.build_group().ok()?;
        let mut members = Vec::with_capacity(NCOUNTERS - 1);
        for ev in [
            Software::CONTEXT_SWITCHES,
            Software::PAGE_FAULTS,
            Software::CPU_MIGRATIONS,
        ] {
            let mut mb = Builder::new(ev);
            configure(&mut mb);
            // Members follow the leader's enable state; enable_on_exec belongs on the leader.
            mb.enabled(true).enable_on_exec(false);
            members.push(leader.add(&mb).ok()?);
        }
        Some(CounterGroup {
            leader,
            _members: members,
        })
    }

    pub fn fd(&self) -> RawFd {
        self.leader.as_counter().as_raw_fd()
    }

    /// One read(2) of the whole group into a stack buffer (no allocation: safe in the child).
    pub fn snapshot(&self) -> Snapshot {
        read_group(self.fd())
    }
}

/// Reads a group laid out as GROUP|ID|TOTAL_TIME_ENABLED (the crate adds ID to any group):
/// nr, time_enabled, then nr × (value, id).
pub fn read_group(fd: RawFd) -> Snapshot {
    let mut buf = [0u64; 2 + 2 * NCOUNTERS];
    let want = std::mem::size_of_val(&buf);
    // SAFETY: buf is a valid writable buffer of `want` bytes.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), want) };
    if n != want as isize || buf[0] != NCOUNTERS as u64 || buf[1] == 0 {
        return Snapshot::default();
    }
    let values = std::array::from_fn(|i| buf[2 + 2 * i]);
    Snapshot {
        valid: true,
        values,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_is_na_unless_both_ends_valid() {
        let a = Snapshot {
            valid: true,
            values: [10, 1, 2, 0],
        };
        let b = Snapshot {
            valid: true,
            values: [25, 3, 2, 1],
        };
        let c = b.delta(&a);
        assert_eq!(c.task_clock_ns, Some(0)); // saturating, never negative
        let d = a.delta(&b);
        assert_eq!(d.task_clock_ns, Some(15));
        assert_eq!(d.page_faults, Some(0));
        assert_eq!(d.cycles, None);
        assert_eq!(Snapshot::default().delta(&b), Counters::default());
    }
}

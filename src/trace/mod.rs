//! The tracer (tracepoints through perf_event_open rings, their formats and records) and its
//! analysis (the processes of a run, its phases, time on CPU). It draws nothing and knows no
//! experiment.

/// The tracepoints probe's tracer uses (`system/name` under tracefs events/).
pub const TRACEPOINTS: &[&str] = &[
    "sched/sched_process_fork",
    "sched/sched_process_exec",
    "sched/sched_process_exit",
    "syscalls/sys_enter_clone",
    "syscalls/sys_enter_clone3",
    "syscalls/sys_enter_unshare",
    "syscalls/sys_enter_setns",
    "syscalls/sys_enter_mount",
    "syscalls/sys_enter_umount",
    "syscalls/sys_enter_pivot_root",
    "syscalls/sys_enter_execve",
    "syscalls/sys_enter_exit_group",
    "syscalls/sys_enter_fsync",
    "syscalls/sys_enter_fdatasync",
    "cgroup/cgroup_mkdir",
    "cgroup/cgroup_attach_task",
    "cgroup/cgroup_rmdir",
    "block/block_rq_issue",
    "block/block_rq_complete",
    "fuse/fuse_request_send",
    "fuse/fuse_request_end",
    "ext4/ext4_sync_file_enter",
    "ext4/ext4_sync_file_exit",
];

/// Where tracefs is mounted: the first of its two usual places whose `events/` can be
/// listed. Mounted but unreadable (it is root-only by default) is told apart from absent.
pub fn tracefs_dir() -> Result<std::path::PathBuf, session::TraceError> {
    for dir in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"].map(std::path::PathBuf::from) {
        match std::fs::read_dir(dir.join("events")) {
            Ok(_) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Err(session::TraceError::NotPermitted(dir)),
            Err(_) => {}
        }
    }
    Err(session::TraceError::NoTracefs)
}
pub mod attribution;
pub mod command;
pub mod critical;
mod cut;
pub mod event;
pub mod format;
mod oncpu;
pub mod procs;
pub mod record;
pub mod reduce;
pub mod session;
pub mod summary;
pub mod waitsite;

/// Exits of the syscalls whose duration matters (a phase boundary sits at their return),
/// and `sched_switch` for time off-CPU. Not in TRACEPOINTS because they are optional extras.
pub const DURATION_TRACEPOINTS: &[&str] = &[
    "syscalls/sys_exit_clone",
    "syscalls/sys_exit_clone3",
    "syscalls/sys_exit_unshare",
    "syscalls/sys_exit_setns",
    "syscalls/sys_exit_mount",
    "syscalls/sys_exit_umount",
    "syscalls/sys_exit_pivot_root",
    "syscalls/sys_exit_execve",
    "syscalls/sys_exit_fsync",
    "syscalls/sys_exit_fdatasync",
    "sched/sched_switch",
];

/// What the critical path (critical.rs) needs beyond sched_switch: who woke whom, and who
/// sent a stop signal. Optional like the above: without them the path is named as missing.
pub const CRITICAL_TRACEPOINTS: &[&str] = &["sched/sched_waking", "signal/signal_generate"];

/// Page faults are sampled one in this many. Each sample costs ~0.65 µs in the faulting
/// task (measured on a 2-vCPU VM, kernel 6.18) and a `docker run` takes ~21k faults, so
/// sampling every fault added ~14 ms (6%) to it; one in 16 adds under 1 ms, and a count
/// that matters to an outlier (thousands) is still right to a few percent.
pub const PAGE_FAULT_PERIOD: u64 = 16;

/// What `probe startup --breakdown` and `probe trace` record unless told otherwise.
pub fn default_options() -> session::Options {
    session::Options {
        tracepoints: TRACEPOINTS.iter().chain(DURATION_TRACEPOINTS).map(|s| s.to_string()).collect(),
        page_fault_period: Some(PAGE_FAULT_PERIOD),
        switch_stacks: false,
    }
}

/// The defaults and what the critical path needs: `startup --breakdown` (its outlier lines
/// name the wait) and `probe trace --critical-path`. Not in `probe trace`'s defaults, whose
/// cost is held to 1.05× a plain `docker run` (bench/trace_overhead.sh): `sched_waking`
/// fires for every wakeup on the machine.
pub fn critical_options() -> session::Options {
    let mut o = default_options();
    o.tracepoints.extend(CRITICAL_TRACEPOINTS.iter().map(|s| s.to_string()));
    o
}

/// Opens a session, or says in one line why tracing is impossible here.
pub fn open(opts: &session::Options) -> Result<session::Session, session::TraceError> {
    let dir = tracefs_dir()?;
    session::Session::open(&dir, opts)
}

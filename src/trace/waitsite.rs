//! Where a task blocked, in words: the kernel call chain recorded at its switch-out
//! (`sched_switch` with `--kernel-stacks`), symbolized from /proc/kallsyms, named by the
//! innermost frame that says what the task waits for.

use crate::sys::kallsyms::Kallsyms;

/// perf marks where kernel, user and guest frames begin with values from -4095 up
/// (PERF_CONTEXT_KERNEL is -128): not addresses.
const PERF_CONTEXT_MIN: u64 = (-4095i64) as u64;

/// (function-name fragment, the wait in words), most specific first within a frame.
const WAITS: &[(&str, &str)] = &[
    ("do_signal_stop", "signal stop"),
    ("ptrace_stop", "ptrace stop"),
    ("__refrigerator", "freezer"),
    ("jbd2_log_wait_commit", "journal commit (fsync)"),
    ("futex", "futex"),
    ("ep_poll", "epoll"),
    ("do_epoll_wait", "epoll"),
    ("pipe_read", "pipe read"),
    ("pipe_write", "pipe write"),
    ("unix_stream_data_wait", "socket read"),
    ("sk_wait_data", "socket read"),
    ("unix_wait_for_peer", "socket write"),
    ("io_schedule", "disk I/O (io_schedule)"),
    ("folio_wait", "disk I/O (page)"),
    ("blk_mq_get_tag", "disk queue full"),
    ("submit_bio_wait", "disk I/O (bio)"),
    ("shrink_", "memory reclaim"),
    ("try_to_free_pages", "memory reclaim"),
    ("__alloc_pages_slowpath", "memory reclaim"),
    ("locks_lock_inode_wait", "file lock"),
    ("flock_lock", "file lock"),
    ("posix_lock", "file lock"),
    ("do_wait", "wait for a child"),
    ("kernel_wait4", "wait for a child"),
    ("do_nanosleep", "sleep (timer)"),
    ("do_sys_poll", "poll/select"),
    ("do_select", "poll/select"),
    ("rwsem_down", "kernel lock (rwsem)"),
    ("__mutex_lock", "kernel lock (mutex)"),
    ("synchronize_rcu", "RCU grace period"),
    ("wait_rcu_gp", "RCU grace period"),
    ("wait_for_completion", "kernel completion"),
];

/// The scheduler's own frames, above any wait.
fn scheduler(name: &str) -> bool {
    ["__schedule", "schedule", "preempt_schedule", "__traceiter", "__bpf_trace", "perf_"].iter().any(|p| name.starts_with(p))
}

/// The wait a kernel call chain (innermost first) stopped in: a known wait in words, else
/// "in FUNCTION" (the innermost frame outside the scheduler); None when no frame resolves.
pub fn site(chain: &[u64], syms: &Kallsyms) -> Option<String> {
    let names: Vec<&str> = chain.iter().filter(|&&ip| ip < PERF_CONTEXT_MIN).filter_map(|&ip| syms.name(ip)).collect();
    for n in &names {
        if let Some((_, words)) = WAITS.iter().find(|(frag, _)| n.contains(frag)) {
            return Some(words.to_string());
        }
    }
    names.iter().find(|n| !scheduler(n)).map(|n| format!("in {n}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KERNEL: u64 = 0xffff_ffff_ffff_ff80;

    fn syms() -> Kallsyms {
        Kallsyms::parse(
            "ffffffff81000000 T __schedule\nffffffff81001000 T schedule\nffffffff81002000 t futex_wait_queue\n\
             ffffffff81003000 T do_syscall_64\nffffffff81004000 t jbd2_log_wait_commit\nffffffff81005000 T io_schedule\n\
             ffffffff81006000 t ext4_sync_file\nffffffff81007000 t some_driver_wait\n",
        )
        .unwrap()
    }

    #[test]
    fn names_the_wait_from_the_innermost_telling_frame() {
        let k = syms();
        assert_eq!(site(&[KERNEL, 0xffffffff81000010, 0xffffffff81001010, 0xffffffff81002010, 0xffffffff81003010], &k).as_deref(), Some("futex"));
        // An fsync waiting on the journal is named for the journal, not the disk under it.
        assert_eq!(site(&[KERNEL, 0xffffffff81001010, 0xffffffff81004010, 0xffffffff81006010], &k).as_deref(), Some("journal commit (fsync)"));
        assert_eq!(site(&[KERNEL, 0xffffffff81001010, 0xffffffff81005010, 0xffffffff81006010], &k).as_deref(), Some("disk I/O (io_schedule)"));
        assert_eq!(site(&[KERNEL, 0xffffffff81001010, 0xffffffff81007010, 0xffffffff81003010], &k).as_deref(), Some("in some_driver_wait"));
        assert_eq!(site(&[KERNEL], &k), None);
    }
}

//! Readers of what the kernel exposes: procfs, mountinfo, cgroupfs and its layout, diskstats,
//! the monotonic clock, child processes and the interrupt flag. No measurement policy here.

pub mod cgroup;
pub mod block;
pub mod child;
pub mod clock;
pub mod diskstats;
pub mod kallsyms;
pub mod memfd;
pub mod mountinfo;
pub mod procfs;
pub mod signals;

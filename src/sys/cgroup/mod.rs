//! cgroupfs as the kernel exposes it: which layout this host has (v1, v2 or hybrid, decided at
//! run time) and which cgroup a process is in, with what it has used.
//!
//! cgroupfs is read by hand, not through cgroups-rs (0.5), which was removed from Cargo.toml
//! because it cannot serve these reads correctly:
//! - its readers turn any failure into 0 (`memory_stat().usage_in_bytes`,
//!   `cpuacct().usage`, `cpu().stat` all `unwrap_or(0)`/default): a container that exited or a
//!   missing file would be recorded as zero use, where probe must name the figure missing;
//! - its v2 hierarchy is fixed at /sys/fs/cgroup and `hierarchies::auto()` calls a hybrid host
//!   v1, so a controller on a hybrid host's unified tree (/sys/fs/cgroup/unified here) cannot
//!   be addressed;
//! - v2's memory.stat keys (anon, file, kernel, sock) are only in its raw key map, i.e. parsed
//!   here anyway, and one `memory_stat()` reads 8 (v2) or 11 (v1) files where 2 or 3 are needed;
//! - it pulls zbus and its async stack into the build for none of the above.

mod layout;
pub mod process;

pub use layout::{detect, CgroupLayout, LayoutKind};

use std::path::PathBuf;

/// A cgroup operation that failed; every message names the phase, the path and the errno.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup: cannot read {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "cgroup: no cgroup filesystem found in {path} (neither v1 controllers nor a cgroup2 mount)"
    )]
    NoCgroupFs { path: PathBuf },
    #[error("cgroup: mkdir {path}: {error}")]
    Mkdir {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cgroup: write {value:?} to {path}: {error}")]
    Write {
        path: PathBuf,
        value: String,
        error: std::io::Error,
    },
    #[error("cgroup: open {path}: {error}")]
    Open {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cgroup: rmdir {path}: {error}")]
    Rmdir {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cgroup: limit {what} needs the {controller} controller, which this host's cgroup layout does not offer")]
    NoController {
        what: &'static str,
        controller: &'static str,
    },
}

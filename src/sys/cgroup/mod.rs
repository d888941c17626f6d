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

/// A container's scope that systemd (pid 1, or a user's `systemd --user` for rootless podman)
/// creates when the OCI runtime uses the systemd cgroup driver: runc and crun ask systemd over
/// D-Bus (StartTransientUnit) for `docker-<id>.scope` (docker with
/// `native.cgroupdriver=systemd`, its default on pure cgroup v2 since 20.10) or
/// `libpod-<id>.scope` (podman 4/5 with `cgroup_manager = "systemd"`), under system.slice,
/// machine.slice or a user's user.slice. conmon's `libpod-conmon-<id>.scope` is not one.
/// Checked with docker 26.1 / containerd 1.7 / runc 1.1 and podman 5.4 / crun 1.21 on
/// systemd 257 (Debian 13).
pub fn is_container_scope(path: &str) -> bool {
    let base = path.rsplit('/').next().unwrap_or(path);
    let Some(id) = base.strip_suffix(".scope").and_then(|b| b.strip_prefix("docker-").or_else(|| b.strip_prefix("libpod-"))) else {
        return false;
    };
    let under_slice = ["system.slice", "machine.slice", "user.slice"].iter().any(|s| path.contains(s));
    under_slice && id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit())
}

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

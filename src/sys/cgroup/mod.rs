//! cgroupfs as the kernel exposes it: which layout this host has (v1, v2 or hybrid, decided at
//! run time) and which cgroup a process is in, with what it has used.

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

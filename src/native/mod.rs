//! The native runtime: an engine-less container built from raw syscalls (clone3, unshare,
//! cgroupfs, mount, pivot_root, execve) with every lifecycle phase timed.
//! docs/native.md walks through it phase by phase.

pub mod cgroup;
pub mod enter;
mod exec;
mod fault;
mod mounts;
pub mod namespaces;
mod pipe;
pub mod rootfs;
mod security;
mod interrupt;
mod spawn;
mod edges;
mod timing;
mod volumes;

use std::path::PathBuf;

pub use cgroup::Limits;
pub use namespaces::{NsKind, NsSet};
pub use rootfs::Storage;
pub use spawn::run;
pub use volumes::Volume;

use crate::ground::phase::{Phase, PhaseRecord};

/// What the container's standard streams are connected to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StdioMode {
    /// The caller's stdin/stdout/stderr (interactive `probe run`).
    Inherit,
    /// /dev/null for all three (benchmarks: output must not cost terminal time).
    Null,
}

#[derive(Clone, Debug)]
pub struct ContainerSpec {
    /// The image's root filesystem (lower layer, or the bind source).
    pub rootfs: PathBuf,
    pub storage: Storage,
    /// Where the disk-backed storages make the container's upper and work directories
    /// (None: `rootfs::containers_base`).
    pub storage_dir: Option<PathBuf>,
    /// Namespaces to create; rootless mode adds `user` by itself.
    pub namespaces: NsSet,
    pub limits: Limits,
    pub argv: Vec<String>,
    pub stdio: StdioMode,
    /// User namespace with the caller's uid/gid mapped to 0, no cgroup.
    pub rootless: bool,
    /// Open perf counters per phase (timestamps are always taken).
    pub timing: bool,
    /// Where under each cgroup hierarchy the container's cgroup goes ("" = the root).
    pub cgroup_parent: PathBuf,
    /// Host paths bind-mounted into the container (`--volume`).
    pub volumes: Vec<Volume>,
    /// Keep every capability, no no_new_privs, /sys read-write and the cgroup hierarchies
    /// mounted read-write: enough for a runtime inside (nested `probe run`).
    pub privileged: bool,
}

impl ContainerSpec {
    /// The test image rootfs, kernel overlay, every namespace, no limits, stdio inherited;
    /// rootless when not run as root.
    pub fn default_for(argv: Vec<String>) -> Self {
        ContainerSpec {
            rootfs: crate::ground::rootfs_dir(),
            storage: Storage::Overlay,
            storage_dir: None,
            namespaces: NsSet::all(),
            limits: Limits::default(),
            argv,
            stdio: StdioMode::Inherit,
            rootless: !nix::unistd::Uid::effective().is_root(),
            timing: false,
            cgroup_parent: PathBuf::new(),
            volumes: Vec::new(),
            privileged: false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Outcome {
    /// The command's exit code, or 128+signal if a signal ended it.
    pub exit_code: i32,
    pub user_ns: u64,
    pub sys_ns: u64,
    /// Contiguous phases from the start of `run` to its end.
    pub phases: Vec<PhaseRecord>,
}

/// Why a container could not run. Each variant names the phase; the messages add the path
/// and the errno. Whatever was created had been removed by the time this is returned.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Rootfs(#[from] rootfs::RootfsError),
    #[error(transparent)]
    Cgroup(#[from] crate::sys::cgroup::CgroupError),
    #[error(transparent)]
    Exec(#[from] exec::ExecError),
    #[error(transparent)]
    Volume(#[from] volumes::VolumeError),
    #[error(transparent)]
    CgroupMount(#[from] cgroup::inside::CgroupMountError),
    #[error("namespaces: clone3({flags}): {errno}")]
    Clone {
        flags: String,
        errno: nix::errno::Errno,
    },
    #[error("namespaces: write {path}: {error}")]
    IdMap {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{phase}: {what}: {error}")]
    Io {
        phase: Phase,
        what: String,
        error: std::io::Error,
    },
    #[error("namespaces: {0}")]
    Spec(String),
    /// A step inside the container's init failed; `message` is that module's error text.
    #[error("{message}")]
    InContainer { phase: Phase, message: String },
    #[error("exec: the container's init died before execve (status {status})")]
    InitDied { status: i32 },
    #[error("workload: wait4 for the container's init: {0}")]
    Wait(std::io::Error),
    #[error("rootless mode cannot apply {0}: cgroup limits need a delegated cgroup, which probe does not set up (run as root)")]
    RootlessLimits(&'static str),
    #[error("interrupted by a signal during {during}; the container and everything made for it were removed")]
    Interrupted { during: String },
}

/// Whether an unprivileged user could create a user namespace here (Debian's
/// kernel.unprivileged_userns_clone, or user.max_user_namespaces = 0 forbid it).
pub fn rootless_possible() -> bool {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    read("/proc/sys/kernel/unprivileged_userns_clone").map_or(true, |v| v != "0")
        && read("/proc/sys/user/max_user_namespaces").map_or(true, |v| v != "0")
}

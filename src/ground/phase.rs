//! The one phase vocabulary shared by every runtime: the native runtime times these phases
//! in-process, the tracer reconstructs them for engines from kernel events, so tables for
//! native, docker and podman can be read side by side.

use serde::{Deserialize, Serialize};

/// A named slice of a container's lifecycle (docs/phases.md has the glossary).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// CLI start until the request reaches the daemon/engine.
    Client,
    /// Image lookup, container config, storage preparation.
    Engine,
    /// Overlay / fuse-overlayfs / bind mount of the container root.
    Rootfs,
    /// OCI runtime exec and init.
    Runtime,
    /// cgroup create, configure, attach.
    Cgroup,
    /// clone/unshare/setns of namespaces.
    Namespaces,
    /// /proc, /dev, /sys, pivot_root, detaching the old root.
    Mounts,
    /// Capability drop, no_new_privs.
    Security,
    /// execve of the user command.
    Exec,
    /// The user command runs.
    Workload,
    /// Exit → unmount → cgroup removal → CLI exit.
    Teardown,
    /// Time no named phase accounts for.
    Unattributed,
}

impl Phase {
    pub const ALL: [Phase; 12] = [
        Phase::Client,
        Phase::Engine,
        Phase::Rootfs,
        Phase::Runtime,
        Phase::Cgroup,
        Phase::Namespaces,
        Phase::Mounts,
        Phase::Security,
        Phase::Exec,
        Phase::Workload,
        Phase::Teardown,
        Phase::Unattributed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Client => "client",
            Phase::Engine => "engine",
            Phase::Rootfs => "rootfs",
            Phase::Runtime => "runtime",
            Phase::Cgroup => "cgroup",
            Phase::Namespaces => "namespaces",
            Phase::Mounts => "mounts",
            Phase::Security => "security",
            Phase::Exec => "exec",
            Phase::Workload => "workload",
            Phase::Teardown => "teardown",
            Phase::Unattributed => "unattributed",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// perf software/hardware counter deltas over one phase. `None` means the counter could not
/// be read on this host (e.g. no PMU in a VM): reported as "n/a", never as zero.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Counters {
    pub task_clock_ns: Option<u64>,
    pub context_switches: Option<u64>,
    pub page_faults: Option<u64>,
    pub cpu_migrations: Option<u64>,
    pub cycles: Option<u64>,
    pub instructions: Option<u64>,
}

/// One phase of one container start. Times are CLOCK_MONOTONIC nanoseconds; `start_ns` is
/// relative to the start of the rep so records from different reps line up.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PhaseRecord {
    pub phase: Phase,
    /// Finer label inside the phase, e.g. the namespace type or the mount target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub start_ns: u64,
    pub dur_ns: u64,
    #[serde(default)]
    pub counters: Counters,
    /// Time spent by probe's own instrumentation inside this phase (clock reads, counter
    /// reads, pipe writes), measured so that readers can see it does not distort the phase.
    #[serde(default)]
    pub overhead_ns: u64,
}

//! The names every layer uses: which runtime, and what probe calls the things it creates.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The tag every runtime's copy of the test image carries.
pub const IMAGE_TAG: &str = "probe-test:latest";
/// Label put on every engine container probe starts, so `probe cleanup` can find them.
pub const OWNER_LABEL: &str = "io.github.probe.owner=probe";
/// Name prefix of every container, cgroup and temp dir probe creates.
pub const NAME_PREFIX: &str = "probe-";

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeKind {
    Bare,
    Native,
    Runc,
    Crun,
    Docker,
    Podman,
    PodmanRootless,
}

impl RuntimeKind {
    pub const ALL: [RuntimeKind; 7] = [
        RuntimeKind::Bare,
        RuntimeKind::Native,
        RuntimeKind::Runc,
        RuntimeKind::Crun,
        RuntimeKind::Docker,
        RuntimeKind::Podman,
        RuntimeKind::PodmanRootless,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RuntimeKind::Bare => "bare",
            RuntimeKind::Native => "native",
            RuntimeKind::Runc => "runc",
            RuntimeKind::Crun => "crun",
            RuntimeKind::Docker => "docker",
            RuntimeKind::Podman => "podman",
            RuntimeKind::PodmanRootless => "podman-rootless",
        }
    }

    /// True for runtimes whose starts `--breakdown` cuts into phases: native times its own,
    /// the others but bare are traced. bare (no container) only has a total.
    pub fn has_phases(self) -> bool {
        self == RuntimeKind::Native || self.is_traced()
    }

    /// True for runtimes whose `--breakdown` phases come from the kernel tracer: the engines
    /// and the OCI runtimes run alone (their init pivot_roots and execs like under an engine).
    pub fn is_traced(self) -> bool {
        self.is_engine() || matches!(self, RuntimeKind::Runc | RuntimeKind::Crun)
    }

    /// True for runtimes that run a full engine (daemon or CLI engine) around an OCI runtime.
    pub fn is_engine(self) -> bool {
        matches!(
            self,
            RuntimeKind::Docker | RuntimeKind::Podman | RuntimeKind::PodmanRootless
        )
    }
}

impl fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for RuntimeKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RuntimeKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = RuntimeKind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown runtime '{s}': choose from {}", names.join(", "))
            })
    }
}

/// Where the test image's rootfs is kept for the native and OCI runtimes (root-owned, 0755).
pub fn rootfs_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("PROBE_IMAGE_DIR").unwrap_or_else(|| "/var/lib/probe/image".into()))
        .join("rootfs")
}

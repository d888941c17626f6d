//! Privilege drop in the container's init, just before execve.

use caps::{CapSet, Capability, CapsHashSet};

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("security: drop {cap} from the {set} set: {error}")]
    Caps {
        cap: String,
        set: &'static str,
        error: caps::errors::CapsError,
    },
    #[error("security: prctl(PR_SET_NO_NEW_PRIVS): {0}")]
    NoNewPrivs(nix::errno::Errno),
}

/// The capabilities a container keeps: Docker's default set (moby's
/// oci/caps/defaults.go), so native and engine containers can be compared like for like.
pub const KEEP: [Capability; 14] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

/// Built by the parent so the init only issues the syscalls.
pub struct Plan {
    keep: CapsHashSet,
    drop: Vec<Capability>,
}

impl Plan {
    pub fn new() -> Plan {
        let keep: CapsHashSet = KEEP.into_iter().collect();
        let drop = caps::all()
            .into_iter()
            .filter(|c| !keep.contains(c))
            .collect();
        Plan { keep, drop }
    }

    /// Bounding set first (it needs CAP_SETPCAP, which is kept), then the process sets.
    /// Ambient is cleared so nothing survives execve beyond what a root exec grants.
    pub fn apply(&self) -> Result<(), SecurityError> {
        for &cap in &self.drop {
            caps::drop(None, CapSet::Bounding, cap).map_err(|error| SecurityError::Caps {
                cap: cap.to_string(),
                set: "bounding",
                error,
            })?;
        }
        let none = CapsHashSet::new();
        for (set, name, keep) in [
            (CapSet::Inheritable, "inheritable", &none),
            (CapSet::Effective, "effective", &self.keep),
            (CapSet::Permitted, "permitted", &self.keep),
        ] {
            caps::set(None, set, keep).map_err(|error| SecurityError::Caps {
                cap: "all but the default set".into(),
                set: name,
                error,
            })?;
        }
        caps::clear(None, CapSet::Ambient).map_err(|error| SecurityError::Caps {
            cap: "all".into(),
            set: "ambient",
            error,
        })?;
        nix::sys::prctl::set_no_new_privs().map_err(SecurityError::NoNewPrivs)
    }
}

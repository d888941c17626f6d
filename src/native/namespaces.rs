//! Which namespaces a container gets, and in which order they are created.
//!
//! Order (and why):
//! 1. `user` (rootless only) — on clone3: every later namespace is owned by it, which is what
//!    lets an unprivileged user create them.
//! 2. `pid`  — on clone3: only a new process can be a pid namespace's init; unshare(2) would
//!    need one more fork.
//!    (then the init attaches itself to the v1 cgroups, see cgroup::attach_self)
//! 3. `mnt`  — first of the unshares: everything the rootfs and mounts phases do must happen
//!    in a private mount table.
//! 4. `uts`, `ipc` — cheap and independent.
//! 5. `net`  — the costly one (a loopback device, per-netns sysctls); created after the cheap
//!    ones so a failure there has the least to unwind.
//! 6. `cgroup` — last, after the cgroup attach, so the namespace root is the container's own
//!    cgroup rather than the host's (cgroup_namespaces(7)).
//!
//! Each unshare is one timed phase edge, so the table shows the cost of each type.

use std::fmt;
use std::str::FromStr;

use nix::sched::CloneFlags;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum NsKind {
    User,
    Pid,
    Mnt,
    Uts,
    Ipc,
    Net,
    Cgroup,
}

impl NsKind {
    /// Creation order, see the module comment.
    pub const ORDER: [NsKind; 7] = [
        NsKind::User,
        NsKind::Pid,
        NsKind::Mnt,
        NsKind::Uts,
        NsKind::Ipc,
        NsKind::Net,
        NsKind::Cgroup,
    ];

    pub fn name(self) -> &'static str {
        match self {
            NsKind::User => "user",
            NsKind::Pid => "pid",
            NsKind::Mnt => "mnt",
            NsKind::Uts => "uts",
            NsKind::Ipc => "ipc",
            NsKind::Net => "net",
            NsKind::Cgroup => "cgroup",
        }
    }

    pub fn flag(self) -> CloneFlags {
        match self {
            NsKind::User => CloneFlags::CLONE_NEWUSER,
            NsKind::Pid => CloneFlags::CLONE_NEWPID,
            NsKind::Mnt => CloneFlags::CLONE_NEWNS,
            NsKind::Uts => CloneFlags::CLONE_NEWUTS,
            NsKind::Ipc => CloneFlags::CLONE_NEWIPC,
            NsKind::Net => CloneFlags::CLONE_NEWNET,
            NsKind::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        }
    }

    /// True for the types created by clone3 itself rather than by unshare in the child.
    pub fn on_clone(self) -> bool {
        matches!(self, NsKind::User | NsKind::Pid)
    }
}

impl fmt::Display for NsKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of namespace types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NsSet(u8);

impl NsSet {
    /// Every type but `user`, which rootless mode adds by itself.
    pub fn all() -> NsSet {
        NsKind::ORDER
            .into_iter()
            .filter(|k| *k != NsKind::User)
            .fold(NsSet(0), NsSet::with)
    }

    pub fn with(self, k: NsKind) -> NsSet {
        NsSet(self.0 | 1 << k as u8)
    }

    pub fn contains(self, k: NsKind) -> bool {
        self.0 & (1 << k as u8) != 0
    }

    /// The members in creation order.
    pub fn ordered(self) -> impl Iterator<Item = NsKind> {
        NsKind::ORDER.into_iter().filter(move |k| self.contains(*k))
    }

    pub fn clone_flags(self) -> CloneFlags {
        self.ordered()
            .filter(|k| k.on_clone())
            .fold(CloneFlags::empty(), |f, k| f | k.flag())
    }
}

impl fmt::Display for NsSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.ordered().map(NsKind::name).collect();
        f.write_str(&names.join(","))
    }
}

impl FromStr for NsKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let alias = if s == "mount" { "mnt" } else { s };
        NsKind::ORDER
            .into_iter()
            .find(|k| k.name() == alias)
            .ok_or_else(|| {
                format!(
                    "unknown namespace '{s}': choose from user, pid, mnt, uts, ipc, net, cgroup"
                )
            })
    }
}

impl FromStr for NsSet {
    type Err = String;
    /// A comma-separated list (`mnt,pid,net`) or `all`. `mnt` is always required: the
    /// rootfs and pivot_root need a private mount table.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let set = if s.trim() == "all" {
            NsSet::all()
        } else {
            s.split(',')
                .map(str::parse::<NsKind>)
                .try_fold(NsSet(0), |set, k| k.map(|k| set.with(k)))?
        };
        if !set.contains(NsKind::Mnt) {
            return Err(format!("namespace list '{s}' lacks mnt: the rootfs and pivot_root need a private mount namespace"));
        }
        Ok(set)
    }
}

/// An unshare that failed in the container's init.
#[derive(Debug, thiserror::Error)]
#[error("namespaces: unshare({flag}) for the {kind} namespace: {errno} ({desc})", flag = flag_name(*kind), desc = errno.desc())]
pub struct NsError {
    pub kind: NsKind,
    pub errno: nix::errno::Errno,
}

fn flag_name(k: NsKind) -> &'static str {
    match k {
        NsKind::User => "CLONE_NEWUSER",
        NsKind::Pid => "CLONE_NEWPID",
        NsKind::Mnt => "CLONE_NEWNS",
        NsKind::Uts => "CLONE_NEWUTS",
        NsKind::Ipc => "CLONE_NEWIPC",
        NsKind::Net => "CLONE_NEWNET",
        NsKind::Cgroup => "CLONE_NEWCGROUP",
    }
}

/// unshare(2) of one type; runs in the container's init.
pub fn unshare(kind: NsKind) -> Result<(), NsError> {
    nix::sched::unshare(kind.flag()).map_err(|errno| NsError { kind, errno })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_lists_in_creation_order() {
        let s: NsSet = "net,mnt,pid".parse().unwrap();
        assert_eq!(s.to_string(), "pid,mnt,net");
        assert_eq!(s.clone_flags(), CloneFlags::CLONE_NEWPID);
        assert_eq!("all".parse::<NsSet>().unwrap(), NsSet::all());
        assert_eq!(NsSet::all().to_string(), "pid,mnt,uts,ipc,net,cgroup");
        assert_eq!("mount,uts".parse::<NsSet>().unwrap().to_string(), "mnt,uts");
    }

    #[test]
    fn parse_rejects_unknown_and_missing_mnt() {
        assert!("mnt,bogus"
            .parse::<NsSet>()
            .unwrap_err()
            .contains("unknown namespace 'bogus'"));
        assert!("pid,net"
            .parse::<NsSet>()
            .unwrap_err()
            .contains("lacks mnt"));
    }

    #[test]
    fn user_goes_on_clone() {
        let s = NsSet::all().with(NsKind::User);
        assert_eq!(
            s.clone_flags(),
            CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWPID
        );
        assert_eq!(s.ordered().next(), Some(NsKind::User));
    }
}

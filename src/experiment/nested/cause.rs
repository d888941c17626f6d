//! Why an approach failed: the failing step, then the first precondition on that step's path
//! that the probes found missing, read with the confinement it was found in. The engine's
//! own message is kept as evidence only; the classification comes from the probes' errnos.

use serde::{Deserialize, Serialize};

use super::inner::{Inner, StepName};
use super::probes::{Check, CheckName, Confinement, Probes};

/// The kinds of missing precondition a student can act on.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Precondition {
    Capability,
    Seccomp,
    /// AppArmor or SELinux.
    Lsm,
    UserNamespaces,
    DevFuse,
    MountPermission,
    DaemonUnreachable,
    /// The step failed but every probe on its path passed: the evidence says what happened.
    Unexplained,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Cause {
    /// What the inner engine was doing, e.g. "run `echo ok` in an inner container".
    pub step: String,
    /// The syscall the probe found refused, e.g. `unshare(CLONE_NEWNS)`.
    pub syscall: String,
    pub errno: String,
    pub missing: Precondition,
    /// One line for a student: what is missing and why it matters here.
    pub reason: String,
    /// What would make it work, in the engine's own flags.
    pub fix: String,
    /// The engine's last error line, as it printed it.
    pub evidence: String,
}

/// The probes on the path a step walks, in the order the inner engine needs them.
fn path(step: StepName, inner: Inner, c: &Confinement) -> Vec<CheckName> {
    use CheckName::*;
    // Podman without CAP_SYS_ADMIN treats itself as rootless even as uid 0: it creates a user
    // namespace and mounts /proc in it, like an unprivileged user's podman would.
    let podman_rootless = c.missing_caps.iter().any(|m| m == "CAP_SYS_ADMIN");
    match (step, inner) {
        (_, Inner::DockerHostSocket) => vec![DockerSocket],
        (StepName::Daemon, _) => vec![MountNs, MountTmpfs],
        (StepName::Import, Inner::DockerDaemon) => vec![Overlay],
        (StepName::Import, Inner::Podman) if podman_rootless => vec![DevFuse, UserNs],
        (StepName::Import, Inner::Podman) => vec![DevFuse],
        (StepName::Import, _) => vec![],
        (StepName::Run, Inner::DockerDaemon) => vec![MountNs, MountTmpfs, Overlay, MountProc, CgroupMkdir],
        (StepName::Run, Inner::Native) => vec![MountNs, MountTmpfs, MountProc, CgroupMkdir],
        (StepName::Run, _) if podman_rootless => {
            let mut p = vec![UserNs, MountProcUserns];
            if inner.uses_fuse() {
                p.insert(0, DevFuse);
            }
            p
        }
        (StepName::Run, _) => {
            let mut p = vec![MountNs, MountTmpfs, MountProc, CgroupMkdir];
            if inner.uses_fuse() {
                p.insert(0, DevFuse);
            }
            p
        }
    }
}

/// The cause of a failed step, from the probes taken in the same outer container.
pub fn classify(step: StepName, inner: Inner, probes: &Probes, evidence: &str) -> Cause {
    let c = &probes.confinement;
    let failed = path(step, inner, c).into_iter().filter_map(|n| probes.get(n)).find(|k| !k.ok());
    let (syscall, errno, missing, reason, fix) = match failed {
        Some(check) => {
            let (missing, reason, fix) = explain(check, c);
            (check.syscall.clone(), check.errno.clone().unwrap_or_default(), missing, reason, fix)
        }
        None => (
            "-".into(),
            "-".into(),
            Precondition::Unexplained,
            "every probe on this step's path passed inside the outer container; see the evidence".into(),
            "read the evidence (the inner engine's own error)".into(),
        ),
    };
    Cause {
        step: step.describe(inner).into(),
        syscall,
        errno,
        missing,
        reason,
        fix,
        evidence: evidence.into(),
    }
}

fn has(c: &Confinement, cap: &str) -> bool {
    !c.missing_caps.iter().any(|m| m == cap)
}

/// What a refused check means, given the confinement: EPERM from mount() is a missing
/// capability when CAP_SYS_ADMIN is absent, the seccomp filter when it is present, and the
/// masked-/proc rule inside a user namespace; EACCES is an LSM; EROFS a read-only mount.
fn explain(check: &Check, c: &Confinement) -> (Precondition, String, String) {
    use CheckName::*;
    let errno = check.errno.as_deref().unwrap_or("");
    let lsm_confined = !matches!(c.lsm_label.as_str(), "unconfined" | "none" | "");
    match (check.name, errno) {
        (_, "EACCES") if lsm_confined => (
            Precondition::Lsm,
            format!("the LSM profile `{}` denies {}", c.lsm_label, check.syscall),
            "docker: --security-opt apparmor=unconfined; podman: --security-opt label=disable".into(),
        ),
        (MountProcUserns, "EPERM") if !c.proc_overmounts.is_empty() => (
            Precondition::MountPermission,
            format!(
                "the kernel refuses a new /proc inside a user namespace while parts of /proc are masked ({} masked paths, e.g. {})",
                c.proc_overmounts.len(),
                c.proc_overmounts.iter().take(2).cloned().collect::<Vec<_>>().join(", ")
            ),
            "podman: --security-opt unmask=ALL (or --privileged); docker: --security-opt systempaths=unconfined".into(),
        ),
        (MountNs | MountTmpfs | MountProc | Overlay | UserNs, "EPERM") if !has(c, "CAP_SYS_ADMIN") => (
            Precondition::Capability,
            format!("CAP_SYS_ADMIN is not among the container's {} capabilities, and {} needs it", c.caps_held, check.syscall),
            "--cap-add SYS_ADMIN (with seccomp and AppArmor unconfined) or --privileged".into(),
        ),
        (_, "EPERM") if c.seccomp == 2 => (
            Precondition::Seccomp,
            format!("{} is refused although CAP_SYS_ADMIN is held: the seccomp filter blocks it", check.syscall),
            "--security-opt seccomp=unconfined".into(),
        ),
        (UserNs, "ENOSPC") => (
            Precondition::UserNamespaces,
            format!("the user-namespace limit is reached (user.max_user_namespaces = {:?})", c.max_user_namespaces),
            "raise user.max_user_namespaces on the host (sysctl)".into(),
        ),
        (UserNs | MountProcUserns, _) => (
            Precondition::UserNamespaces,
            format!("{} fails with {errno}: user namespaces are not available here", check.syscall),
            "enable user namespaces on the host, or give the container CAP_SYS_ADMIN".into(),
        ),
        (DevFuse, "ENOENT") => (
            Precondition::DevFuse,
            "there is no /dev/fuse in the container, and the inner storage mounts through fuse-overlayfs".into(),
            "--device /dev/fuse (or use the vfs storage driver)".into(),
        ),
        (DevFuse, _) => (
            Precondition::DevFuse,
            format!("/dev/fuse exists but cannot be opened ({errno}): the devices cgroup or its mode denies it"),
            "--device /dev/fuse".into(),
        ),
        (CgroupMkdir, "EROFS") => (
            Precondition::MountPermission,
            "the cgroup filesystem is mounted read-only in the container, and the inner runc must create a cgroup for every container".into(),
            "--privileged, or a writable cgroup mount (-v /sys/fs/cgroup:/sys/fs/cgroup:rw, which hands over the host's cgroups)".into(),
        ),
        (CgroupMkdir, "ENOENT") => (
            Precondition::MountPermission,
            "no cgroup filesystem is mounted in the container, and the inner runtime must create a cgroup".into(),
            "mount cgroupfs into the container (read-write)".into(),
        ),
        (DockerSocket, _) => (
            Precondition::DaemonUnreachable,
            format!("no daemon answers on /var/run/docker.sock ({errno})"),
            "mount the host's socket (-v /var/run/docker.sock:/var/run/docker.sock) or start dockerd inside".into(),
        ),
        (Overlay, "EINVAL") => (
            Precondition::MountPermission,
            "overlayfs refuses the storage directory as an upper layer (overlay on overlay)".into(),
            "put the inner storage on a volume or tmpfs, or use the vfs driver".into(),
        ),
        (_, _) => (
            Precondition::MountPermission,
            format!("{} fails with {errno}", check.syscall),
            "--privileged".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probes(caps_missing: &[&str], seccomp: u8, checks: &[(CheckName, Option<&str>)]) -> Probes {
        Probes {
            confinement: Confinement {
                missing_caps: caps_missing.iter().map(|s| s.to_string()).collect(),
                seccomp,
                lsm_label: "none".into(),
                proc_overmounts: vec!["/proc/kcore".into(), "/proc/keys".into()],
                ..Default::default()
            },
            checks: checks
                .iter()
                .map(|(n, e)| Check { name: *n, syscall: format!("{n:?}"), errno: e.map(str::to_string) })
                .collect(),
        }
    }

    #[test]
    fn podman_without_sys_admin_fails_on_masked_proc() {
        let p = probes(&["CAP_SYS_ADMIN"], 2, &[(CheckName::DevFuse, None), (CheckName::UserNs, None), (CheckName::MountProcUserns, Some("EPERM")), (CheckName::MountNs, Some("EPERM"))]);
        let c = classify(StepName::Run, Inner::Podman, &p, "mount proc: operation not permitted");
        assert_eq!(c.missing, Precondition::MountPermission);
        assert!(c.reason.contains("masked"), "{}", c.reason);
        assert!(c.fix.contains("unmask"));
    }

    #[test]
    fn missing_fuse_comes_first_for_fuse_overlayfs() {
        let p = probes(&["CAP_SYS_ADMIN"], 2, &[(CheckName::DevFuse, Some("ENOENT")), (CheckName::UserNs, None)]);
        assert_eq!(classify(StepName::Import, Inner::Podman, &p, "").missing, Precondition::DevFuse);
        // vfs never opens /dev/fuse.
        assert_eq!(classify(StepName::Import, Inner::PodmanVfs, &p, "").missing, Precondition::Unexplained);
    }

    #[test]
    fn read_only_cgroups_stop_dind() {
        let p = probes(&[], 0, &[(CheckName::MountNs, None), (CheckName::MountTmpfs, None), (CheckName::Overlay, None), (CheckName::MountProc, None), (CheckName::CgroupMkdir, Some("EROFS"))]);
        let c = classify(StepName::Run, Inner::DockerDaemon, &p, "");
        assert_eq!((c.missing, c.errno.as_str()), (Precondition::MountPermission, "EROFS"));
    }

    #[test]
    fn eperm_is_capability_without_sys_admin_and_seccomp_with_it() {
        let checks = [(CheckName::MountNs, Some("EPERM"))];
        assert_eq!(classify(StepName::Daemon, Inner::DockerDaemon, &probes(&["CAP_SYS_ADMIN"], 2, &checks), "").missing, Precondition::Capability);
        assert_eq!(classify(StepName::Daemon, Inner::DockerDaemon, &probes(&[], 2, &checks), "").missing, Precondition::Seccomp);
    }

    #[test]
    fn socket_path_is_the_socket() {
        let p = probes(&[], 2, &[(CheckName::DockerSocket, Some("ENOENT"))]);
        assert_eq!(classify(StepName::Daemon, Inner::DockerHostSocket, &p, "").missing, Precondition::DaemonUnreachable);
    }
}

//! Why an approach failed: the failing step, then the first precondition on that step's path
//! that the probes found missing, read with the confinement it was found in. The engine's
//! own message is kept as evidence only; the classification comes from the probes' errnos.

use serde::{Deserialize, Serialize};

use super::inner::{Inner, StepName};
use super::probes::{Check, CheckName, Confinement, Probes, NOT_RUN, PANIC, SIGNAL_DEATH};

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
    /// Where the reason comes from: what was measured, and the documentation that reads it.
    pub source: String,
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
    let (syscall, errno, e) = match failed {
        Some(check) => (check.syscall.clone(), check.errno.clone().unwrap_or_default(), explain(check, c)),
        None => (
            "-".into(),
            "-".into(),
            Explained {
                missing: Precondition::Unexplained,
                reason: "every probe on this step's path passed inside the outer container; see the evidence".into(),
                fix: "read the evidence (the inner engine's own error)".into(),
                source: "measured: the probes' checks, all successful".into(),
            },
        ),
    };
    Cause {
        step: step.describe(inner).into(),
        syscall,
        errno,
        missing: e.missing,
        reason: e.reason,
        fix: e.fix,
        source: e.source,
        evidence: evidence.into(),
    }
}

struct Explained {
    missing: Precondition,
    reason: String,
    fix: String,
    source: String,
}

fn explained(missing: Precondition, reason: impl Into<String>, fix: impl Into<String>, source: impl Into<String>) -> Explained {
    Explained { missing, reason: reason.into(), fix: fix.into(), source: source.into() }
}

fn has(c: &Confinement, cap: &str) -> bool {
    !c.missing_caps.iter().any(|m| m == cap)
}

/// What a refused check means, given the confinement: EPERM from mount() is a missing
/// capability when CAP_SYS_ADMIN is absent, the seccomp filter when it is present, and the
/// masked-/proc rule inside a user namespace; EACCES is an LSM; EROFS a read-only mount. An
/// errno no rule knows, a signal death or a probe panic stays unexplained, with the evidence.
fn explain(check: &Check, c: &Confinement) -> Explained {
    use CheckName::*;
    use Precondition as P;
    let errno = check.errno.as_deref().unwrap_or("");
    let call = &check.syscall;
    let measured = format!("measured: {call} → {errno} inside the outer container");
    let lsm_confined = !matches!(c.lsm_label.as_str(), "unconfined" | "none" | "");
    if let Some(sig) = errno.strip_prefix(SIGNAL_DEATH) {
        return explained(
            P::Unexplained,
            format!("the probe's child trying {call} was killed by {sig} before it returned: a signal death, not a refusal, so this check says nothing about the container"),
            "read the evidence; rerun to see whether the signal recurs",
            format!("measured: waitpid(2) status of the probe's child: killed by {sig}"),
        );
    }
    if errno == PANIC || errno.starts_with(NOT_RUN) {
        return explained(
            P::Unexplained,
            format!("the probe could not judge {call} ({errno}): a failure of probe's own, not of the container"),
            "read the evidence (the inner engine's own error)",
            format!("measured: {errno}"),
        );
    }
    match (check.name, errno) {
        (_, "EACCES") if lsm_confined => explained(
            P::Lsm,
            format!("the LSM profile `{}` denies {call}", c.lsm_label),
            "docker: --security-opt apparmor=unconfined; podman: --security-opt label=disable",
            format!("{measured}, under the label `{}` (/proc/self/attr); an LSM denial is EACCES (apparmor(7), selinux(8))", c.lsm_label),
        ),
        (MountProcUserns, "EPERM") if !c.proc_overmounts.is_empty() => explained(
            P::MountPermission,
            format!(
                "the kernel refuses a new /proc inside a user namespace while parts of /proc are masked ({} masked paths, e.g. {})",
                c.proc_overmounts.len(),
                c.proc_overmounts.iter().take(2).cloned().collect::<Vec<_>>().join(", ")
            ),
            "podman: --security-opt unmask=ALL (or --privileged); docker: --security-opt systempaths=unconfined",
            format!("{measured}, with {} mounts over /proc in /proc/self/mountinfo; the rule is mount_too_revealing() in the kernel's fs/namespace.c", c.proc_overmounts.len()),
        ),
        // The kernel lets anyone create a user namespace (user_namespaces(7)); what refuses it
        // in a container is the engine's seccomp profile, which allows it only with
        // CAP_SYS_ADMIN held.
        (UserNs, "EPERM") if c.seccomp == 2 => explained(
            P::Seccomp,
            if has(c, "CAP_SYS_ADMIN") {
                format!("{call} is refused by the container's seccomp filter (the kernel needs no capability for it)")
            } else {
                format!("{call} is refused by the container's seccomp filter: the engines' default profiles allow it only to a container holding CAP_SYS_ADMIN, which this one lacks (the kernel itself needs no capability for it)")
            },
            "--security-opt seccomp=unconfined (or --cap-add SYS_ADMIN, which the default profile keys on)",
            format!("{measured}, with Seccomp: 2 in /proc/self/status; user_namespaces(7): no privilege is needed since Linux 3.8; moby profiles/seccomp/default.json and containers/common seccomp.json allow unshare/clone namespace flags only with CAP_SYS_ADMIN"),
        ),
        (MountNs | MountTmpfs | MountProc | Overlay, "EPERM") if !has(c, "CAP_SYS_ADMIN") => explained(
            P::Capability,
            format!("CAP_SYS_ADMIN is not among the container's {} capabilities, and {call} needs it", c.caps_held),
            "--cap-add SYS_ADMIN (with seccomp and AppArmor unconfined) or --privileged",
            format!("{measured}, CapEff {} in /proc/self/status lacks CAP_SYS_ADMIN; unshare(2) and mount(2) require it", c.cap_eff),
        ),
        (_, "EPERM") if c.seccomp == 2 && has(c, "CAP_SYS_ADMIN") => explained(
            P::Seccomp,
            format!("{call} is refused although CAP_SYS_ADMIN is held: the seccomp filter blocks it"),
            "--security-opt seccomp=unconfined",
            format!("{measured}, with CAP_SYS_ADMIN in CapEff and Seccomp: 2 in /proc/self/status: the capability check passes, the filter is what is left to say EPERM"),
        ),
        (UserNs, "ENOSPC") => explained(
            P::UserNamespaces,
            format!("the user-namespace limit is reached (user.max_user_namespaces = {:?})", c.max_user_namespaces),
            "raise user.max_user_namespaces on the host (sysctl)",
            format!("{measured}; user_namespaces(7): ENOSPC when the count would pass /proc/sys/user/max_user_namespaces"),
        ),
        (UserNs | MountProcUserns, "EINVAL") => explained(
            P::UserNamespaces,
            format!("{call} fails with EINVAL: this kernel has no user namespaces"),
            "a kernel built with CONFIG_USER_NS, or give the container CAP_SYS_ADMIN so the engine needs none",
            format!("{measured}; unshare(2): EINVAL for CLONE_NEWUSER when the kernel lacks CONFIG_USER_NS"),
        ),
        (DevFuse, "ENOENT") => explained(
            P::DevFuse,
            "there is no /dev/fuse in the container, and the inner storage mounts through fuse-overlayfs",
            "--device /dev/fuse (or use the vfs storage driver)",
            format!("{measured}; fuse-overlayfs(1) mounts through /dev/fuse"),
        ),
        (DevFuse, "EPERM") => explained(
            P::DevFuse,
            "/dev/fuse exists but the devices cgroup does not allow it to this container",
            "--device /dev/fuse",
            format!("{measured}; the devices controller answers EPERM for a device not allowed (kernel Documentation/admin-guide/cgroup-v1/devices.rst)"),
        ),
        (DevFuse, "EACCES") => explained(
            P::DevFuse,
            "/dev/fuse exists but its mode does not let this user open it",
            "--device /dev/fuse with a mode of 0666 (rw for all), or run as root",
            format!("{measured}, with no confining LSM label; open(2): EACCES when the file's mode denies it"),
        ),
        (CgroupMkdir, "EROFS") => explained(
            P::MountPermission,
            "the cgroup filesystem is mounted read-only in the container, and the inner runc must create a cgroup for every container",
            "--privileged, or a writable cgroup mount (-v /sys/fs/cgroup:/sys/fs/cgroup:rw, which hands over the host's cgroups)",
            format!("{measured}; mkdir(2): EROFS on a read-only filesystem"),
        ),
        (CgroupMkdir, "ENOENT") => explained(
            P::MountPermission,
            "no cgroup filesystem is mounted in the container, and the inner runtime must create a cgroup",
            "mount cgroupfs into the container (read-write)",
            format!("{measured}: the hierarchy directory is missing"),
        ),
        (DockerSocket, "ENOENT" | "ECONNREFUSED") => explained(
            P::DaemonUnreachable,
            format!("no daemon answers on /var/run/docker.sock ({errno})"),
            "mount the host's socket (-v /var/run/docker.sock:/var/run/docker.sock) or start dockerd inside",
            format!("{measured}; connect(2): ENOENT no socket file, ECONNREFUSED nobody listening"),
        ),
        (Overlay, "EINVAL") => explained(
            P::MountPermission,
            "overlayfs refuses the storage directory as an upper layer (overlay on overlay)",
            "put the inner storage on a volume or tmpfs, or use the vfs driver",
            format!("{measured}; overlayfs refuses an upper directory on a filesystem it cannot use as one, such as overlayfs (kernel Documentation/filesystems/overlayfs.rst)"),
        ),
        (_, _) => explained(
            P::Unexplained,
            format!("{call} fails with {errno}, which no rule here explains"),
            "read the evidence (the inner engine's own error)",
            measured,
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
    fn unknown_errnos_signal_deaths_and_panics_stay_unexplained() {
        let run = |errno: &str| {
            let p = probes(&[], 0, &[(CheckName::MountNs, None), (CheckName::MountTmpfs, Some(errno))]);
            classify(StepName::Daemon, Inner::DockerDaemon, &p, "dockerd: failed to start")
        };
        let c = run("EBUSY");
        assert_eq!(c.missing, Precondition::Unexplained);
        assert!(c.reason.contains("EBUSY") && !c.fix.contains("--privileged"), "{c:?}");
        assert_eq!(c.evidence, "dockerd: failed to start");
        let c = run("killed by SIGKILL");
        assert_eq!(c.missing, Precondition::Unexplained);
        assert!(c.reason.contains("killed by SIGKILL") && c.reason.contains("signal death"), "{}", c.reason);
        let c = run("probe panicked");
        assert_eq!(c.missing, Precondition::Unexplained);
        assert!(c.reason.contains("probe panicked"), "{}", c.reason);
        // A real EIO is the kernel's answer, not a panic: still unexplained, named as EIO.
        assert!(run("EIO").reason.contains("fails with EIO"));
    }

    #[test]
    fn a_refused_user_namespace_is_the_seccomp_profile_not_a_capability() {
        let checks = [(CheckName::DevFuse, None), (CheckName::UserNs, Some("EPERM"))];
        let c = classify(StepName::Run, Inner::Podman, &probes(&["CAP_SYS_ADMIN"], 2, &checks), "");
        assert_eq!(c.missing, Precondition::Seccomp);
        assert!(c.reason.contains("seccomp") && c.reason.contains("the kernel itself needs no capability"), "{}", c.reason);
        assert!(c.source.contains("user_namespaces(7)"), "{}", c.source);
        // Without a seccomp filter no rule here knows why.
        let c = classify(StepName::Run, Inner::Podman, &probes(&["CAP_SYS_ADMIN"], 0, &checks), "");
        assert_eq!(c.missing, Precondition::Unexplained);
    }

    #[test]
    fn every_cause_says_where_it_comes_from() {
        let cases = [
            (CheckName::MountNs, "EPERM"),
            (CheckName::DevFuse, "ENOENT"),
            (CheckName::CgroupMkdir, "EROFS"),
            (CheckName::MountTmpfs, "EXDEV"),
        ];
        for (name, errno) in cases {
            let c = classify(StepName::Run, Inner::DockerDaemon, &probes(&["CAP_SYS_ADMIN"], 2, &[(name, Some(errno))]), "");
            assert!(c.source.starts_with("measured: "), "{name:?} {errno}: {}", c.source);
        }
    }

    #[test]
    fn socket_path_is_the_socket() {
        let p = probes(&[], 2, &[(CheckName::DockerSocket, Some("ENOENT"))]);
        assert_eq!(classify(StepName::Daemon, Inner::DockerHostSocket, &p, "").missing, Precondition::DaemonUnreachable);
    }
}

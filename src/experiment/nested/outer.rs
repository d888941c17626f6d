//! Why the outer container itself did not start. Nothing runs inside it then, so the probes
//! run on the host: the engine's capability bounding set (what --privileged can grant), the
//! devices the flags name, and a confirmation pair of tiny containers that differ only in
//! the suspected capability.

use std::fs;
use std::time::Duration;

use super::cause::{Cause, Precondition};
use super::probes::cap_name;
use crate::runtimes::cli_engine::{output_with_timeout, CliEngine};
use crate::ground::RuntimeKind;

const STEP: &str = "start the outer container";

/// Capabilities the kernel has that `pid`'s bounding set lacks.
fn missing_from_bounding_set(pid: &str) -> Vec<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let bnd = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(u64::MAX);
    let last: u32 = fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    (0..=last).filter(|b| bnd & (1 << b) == 0).collect()
}

/// The process that asks runc for the container's capabilities: dockerd (its children
/// inherit its bounding set), or podman, which is our own child.
fn engine_pid(kind: RuntimeKind) -> String {
    match kind {
        RuntimeKind::Docker => fs::read_to_string("/var/run/docker.pid").map(|s| s.trim().to_string()).unwrap_or_else(|_| "self".into()),
        _ => "self".into(),
    }
}

/// True when `run --rm --network none [flags] TEST_IMAGE true` succeeds.
fn starts(engine: &CliEngine, flags: &[String]) -> bool {
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let args = engine.run_args(&flags, &["true".to_string()]);
    output_with_timeout(&mut engine.command(&args), Duration::from_secs(60))
        .map(|o| o.status.success())
        .unwrap_or(false)
}

pub fn classify(engine: &CliEngine, flags: &[String], evidence: &str) -> Cause {
    let cause = |syscall: &str, errno: &str, missing, reason: String, fix: String, source: String| Cause {
        step: STEP.into(),
        syscall: syscall.into(),
        errno: errno.into(),
        missing,
        reason,
        fix,
        source,
        evidence: evidence.into(),
    };
    for dev in flags.windows(2).filter(|w| w[0] == "--device").map(|w| &w[1]) {
        let host_path = dev.split(':').next().unwrap_or(dev);
        if let Err(e) = fs::metadata(host_path) {
            let (missing, reason, fix, source) = device_missing(host_path, &e);
            return cause(&format!("stat(\"{host_path}\")"), &errno_name(&e), missing, reason, fix, source);
        }
    }
    let missing = missing_from_bounding_set(&engine_pid(engine.kind()));
    if flags.iter().any(|f| f == "--privileged") && !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|b| cap_name(*b)).collect();
        let all = vec!["--cap-add".to_string(), "ALL".to_string()];
        let mut all_but = all.clone();
        for n in &names {
            all_but.extend(["--cap-drop".to_string(), n.trim_start_matches("CAP_").to_string()]);
        }
        // Same request with and without the missing capabilities: if only the first fails,
        // those capabilities are the cause, not anything else --privileged changes.
        if !starts(engine, &all) && starts(engine, &all_but) {
            return cause(
                "capset(2) in runc init",
                "EPERM",
                Precondition::Capability,
                format!(
                    "--privileged asks for every capability, but the host's bounding set lacks {}: no process here can grant it (confirmed: --cap-add ALL fails, --cap-add ALL {} starts)",
                    names.join(", "),
                    all_but[2..].join(" ")
                ),
                format!("run on a host whose engine holds every capability, or replace --privileged by --cap-add ALL {} plus the other relaxations you need", all_but[2..].join(" ")),
                format!("measured: CapBnd of {} (/proc/PID/status) and two test containers that differ only in those capabilities", engine.kind()),
            );
        }
    }
    cause(
        "-",
        "-",
        Precondition::Unexplained,
        "the engine refused to create the outer container and no host probe explains it".into(),
        "read the evidence (the engine's own error)".into(),
        "measured: the host's device paths and the engine's bounding set, neither at fault".into(),
    )
}

/// The errno's name (ENOENT), or the error as text when it carries none.
fn errno_name(e: &std::io::Error) -> String {
    e.raw_os_error().map_or_else(|| e.to_string(), |n| format!("{:?}", nix::errno::Errno::from_raw(n)))
}

/// Why a device named by --device cannot be handed over: only a missing /dev/fuse has a known
/// remedy here; any other device or errno is reported as found.
fn device_missing(host_path: &str, e: &std::io::Error) -> (Precondition, String, String, String) {
    let errno = errno_name(e);
    let source = format!("measured: stat(\"{host_path}\") → {errno} on the host");
    match (host_path, e.kind()) {
        ("/dev/fuse", std::io::ErrorKind::NotFound) => (
            Precondition::DevFuse,
            "/dev/fuse does not exist on the host, so the engine cannot hand it to the container".into(),
            "load the fuse module on the host (modprobe fuse) or drop --device /dev/fuse".into(),
            source,
        ),
        _ => (
            Precondition::Unexplained,
            format!("{host_path}, named by --device, cannot be read on the host ({errno})"),
            format!("check {host_path} on the host, or drop --device {host_path}"),
            source,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_device_stat_says_what_failed() {
        let gone = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(device_missing("/dev/fuse", &gone).0, Precondition::DevFuse);
        let (m, reason, _, source) = device_missing("/dev/kvm", &gone);
        assert_eq!(m, Precondition::Unexplained);
        assert!(reason.contains("/dev/kvm") && !reason.contains("fuse") && source.contains("ENOENT"), "{reason} / {source}");
        let denied = std::io::Error::from_raw_os_error(libc::EACCES);
        let (m, reason, ..) = device_missing("/dev/fuse", &denied);
        assert_eq!(m, Precondition::Unexplained);
        assert!(reason.contains("EACCES"), "{reason}");
    }
}

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
    let cause = |syscall: &str, errno: &str, missing, reason: String, fix: String| Cause {
        step: STEP.into(),
        syscall: syscall.into(),
        errno: errno.into(),
        missing,
        reason,
        fix,
        evidence: evidence.into(),
    };
    if let Some(dev) = flags.windows(2).find(|w| w[0] == "--device").map(|w| w[1].clone()) {
        let host_path = dev.split(':').next().unwrap_or(&dev).to_string();
        if fs::metadata(&host_path).is_err() {
            return cause("stat", "ENOENT", Precondition::DevFuse, format!("{host_path} does not exist on the host"), "load the module (modprobe fuse) or drop --device".into());
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
            );
        }
    }
    cause(
        "-",
        "-",
        Precondition::Unexplained,
        "the engine refused to create the outer container and no host probe explains it".into(),
        "read the evidence (the engine's own error)".into(),
    )
}

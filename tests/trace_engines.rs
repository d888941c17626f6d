//! Traces real engine runs and checks the phases the kernel events must land in.

mod common;

use std::process::Command;

use serde_json::Value;

fn trace_json(argv: &[&str]) -> Value {
    let out = Command::new(common::probe_bin())
        .args(["trace", "--json", "--"])
        .args(argv)
        .output()
        .expect("spawn probe trace");
    assert!(out.status.success(), "probe trace failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

fn slice_at<'a>(v: &'a Value, t: u64) -> &'a Value {
    v["attribution"]["slices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["start"].as_u64().unwrap() <= t && t < s["end"].as_u64().unwrap())
        .unwrap_or_else(|| panic!("no slice holds t={t}"))
}

/// Coverage, the container cgroup's mkdir inside `cgroup`, the command's exec inside `exec`.
fn check(v: &Value, expect_cgroup: bool) {
    assert_eq!(v["lost"], 0, "trace records lost");
    let coverage = v["coverage"].as_f64().unwrap();
    assert!(coverage >= 0.95, "only {:.1}% attributed", coverage * 100.0);
    let events = v["events"].as_array().unwrap();
    let init = v["attribution"]["init_pid"].as_u64().expect("container init found (pivot_root)");
    let exec = events
        .iter()
        .find(|e| e["name"] == "sched/sched_process_exec" && e["pid"].as_u64() == Some(init) && e["fields"]["filename"] == "/bin/true")
        .expect("exec of /bin/true by the container init");
    assert_eq!(slice_at(v, exec["time_ns"].as_u64().unwrap())["phase"], "exec");
    if expect_cgroup {
        let cg = v["attribution"]["container_cgroup"].as_str().expect("container cgroup found");
        let mkdir = events
            .iter()
            .find(|e| e["name"] == "cgroup/cgroup_mkdir" && e["fields"]["path"] == cg)
            .expect("cgroup_mkdir of the container cgroup");
        assert_eq!(slice_at(v, mkdir["time_ns"].as_u64().unwrap())["phase"], "cgroup");
    }
    let phases: Vec<&str> = v["attribution"]["slices"].as_array().unwrap().iter().map(|s| s["phase"].as_str().unwrap()).collect();
    for p in ["client", "engine", "runtime", "namespaces", "mounts", "exec", "workload", "teardown"] {
        assert!(phases.contains(&p), "no {p} phase in {phases:?}");
    }
}

const RUN: &[&str] = &["run", "--rm", "--network", "none", "probe-test:latest", "true"];

#[test]
fn docker_run_phases() {
    if !common::require_engine("docker") {
        return;
    }
    let argv: Vec<&str> = ["docker"].iter().chain(RUN).copied().collect();
    check(&trace_json(&argv), true);
}

#[test]
fn podman_run_phases() {
    if !common::require_engine("podman") {
        return;
    }
    let argv: Vec<&str> = ["podman"].iter().chain(RUN).copied().collect();
    check(&trace_json(&argv), true);
}

#[test]
fn podman_rootless_run_phases() {
    if !common::require_engine("podman") || !common::require(common::succeeds("id", &["probe-rootless"]), "no probe-rootless user") {
        return;
    }
    let mut argv = vec![
        "setpriv", "--reuid=probe-rootless", "--regid=probe-rootless", "--init-groups", "env", "-i",
        "HOME=/home/probe-rootless", "PATH=/usr/local/bin:/usr/bin:/bin",
    ];
    let uid = String::from_utf8(Command::new("id").args(["-u", "probe-rootless"]).output().unwrap().stdout).unwrap();
    let xdg = format!("XDG_RUNTIME_DIR=/run/user/{}", uid.trim());
    argv.push(&xdg);
    argv.push("podman");
    argv.extend(RUN);
    // v1 cgroups cannot be delegated to an unprivileged user: no container cgroup there.
    check(&trace_json(&argv), false);
}

#[test]
fn trace_reports_exit_status_and_counts() {
    if !common::require_root() {
        return;
    }
    let out = Command::new(common::probe_bin()).args(["trace", "--", "sh", "-c", "exit 3"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("sched_process_exec"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("lost 0"));
}

//! `probe doctor` and `probe image build` against this host.

mod common;

use common::*;

#[test]
fn doctor_reports_every_area_and_runtime() {
    let o = probe(&["doctor", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let checks: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    for area in ["kernel", "cgroup", "privileges", "tracing", "perf", "runtime"] {
        assert!(checks.iter().any(|c| c["area"] == area), "area {area} missing");
    }
    for rt in ["bare", "native", "runc", "crun", "docker", "podman", "podman-rootless"] {
        assert!(checks.iter().any(|c| c["area"] == "runtime" && c["name"] == rt), "runtime {rt} missing");
    }
    // Every failed check says how to fix it.
    for c in checks.iter().filter(|c| c["ok"] == false) {
        assert!(c["fix"].is_string(), "no fix for {c}");
    }
    let layout = checks.iter().find(|c| c["name"] == "layout").unwrap();
    let kind = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "v2"
    } else if std::path::Path::new("/sys/fs/cgroup/unified").exists() {
        "hybrid"
    } else {
        "v1"
    };
    assert!(layout["detail"].as_str().unwrap().starts_with(kind), "{layout}");
}

#[test]
fn image_build_is_idempotent_and_present_everywhere() {
    if !require_engine("docker") || !require_engine("podman") {
        return;
    }
    let first = probe(&["image", "build", "--json"]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let again = probe(&["image", "build", "--json"]);
    assert!(again.status.success());
    let a: serde_json::Value = serde_json::from_slice::<serde_json::Value>(&first.stdout).unwrap()["test"].take();
    let b: serde_json::Value = serde_json::from_slice::<serde_json::Value>(&again.stdout).unwrap()["test"].take();
    assert_eq!(a["digest"], b["digest"]);
    assert_eq!(b["rootfs_rebuilt"], false, "nothing changed, nothing rebuilt: {b}");
    for e in b["engines"].as_array().unwrap() {
        assert_eq!(e["outcome"], "up to date", "{e}");
    }
    let rootfs = std::path::PathBuf::from(b["rootfs"].as_str().unwrap());
    assert!(rootfs.join("bin/busybox").exists() && rootfs.join("usr/local/bin/probe").exists());
    // The in-image probe runs inside a real engine with only the libraries the image holds.
    let out = std::process::Command::new("docker")
        .args(["run", "--rm", "--network", "none", "probe-test:latest", "/usr/local/bin/probe", "--version"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("probe "));
}

//! Experiment 1 end to end against the real engines, and its refusal of bad input.

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};

use common::*;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A refused run: non-zero exit, exactly one line on stderr that contains `needle`, and no
/// run folder written.
fn assert_refused(o: &Output, needle: &str, results: &Path) {
    let err = stderr(o);
    assert!(!o.status.success(), "should fail: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line of error, got: {err}");
    assert!(err.contains(needle), "error should mention '{needle}': {err}");
    let entries = std::fs::read_dir(results).map(|d| d.count()).unwrap_or(0);
    assert_eq!(entries, 0, "nothing may be written on refusal");
}

#[test]
fn unknown_runtime_is_refused() {
    let t = TempDir::new("unknown");
    let o = probe(&["startup", "--runtimes", "bare,lxc", "--results", t.0.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("unknown runtime 'lxc'") && err.contains("podman-rootless"), "{err}");
}

#[test]
fn zero_reps_is_refused() {
    let o = probe(&["startup", "--reps", "0"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--reps"), "{}", stderr(&o));
}

#[test]
fn unwritable_results_dir_is_refused_before_measuring() {
    let t = TempDir::new("unwritable");
    let file = t.0.join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let results = file.join("sub");
    let o = probe(&["startup", "--runtimes", "bare", "--reps", "1", "--results", results.to_str().unwrap()]);
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(results.to_str().unwrap()), "error names the path: {err}");
}

#[test]
fn missing_engine_is_refused_with_a_fix() {
    let t = TempDir::new("noengine");
    let o = Command::new(probe_bin())
        .args(["startup", "--runtimes", "bare,docker", "--reps", "1", "--results", t.0.to_str().unwrap()])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_refused(&o, "setup-engines.sh", &t.0);
}

#[test]
fn missing_image_is_refused_with_a_fix() {
    if !require_root() {
        return;
    }
    let t = TempDir::new("noimage");
    let empty = TempDir::new("noimage-dir");
    let o = Command::new(probe_bin())
        .args(["startup", "--runtimes", "runc", "--reps", "1", "--results", t.0.to_str().unwrap()])
        .env("PROBE_IMAGE_DIR", &empty.0)
        .output()
        .unwrap();
    assert_refused(&o, "probe image build", &t.0);
}

#[test]
fn engine_runtime_needs_root() {
    if !require_root() {
        return;
    }
    let t = TempDir::new("notroot");
    std::fs::set_permissions(&t.0, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let o = Command::new(probe_bin())
        .args(["startup", "--runtimes", "docker", "--reps", "1", "--results", t.0.to_str().unwrap()])
        .current_dir("/")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert_refused(&o, "needs root", &t.0);
}

fn containers_left(engine: &str) -> String {
    let out = Command::new(engine)
        .args(["ps", "-aq", "--filter", "label=io.github.probe.owner=probe"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn startup_runs_every_engine_and_writes_the_chapter_schema() {
    if !require_engine("docker") || !require_engine("podman") {
        return;
    }
    let t = TempDir::new("engines");
    let o = probe(&[
        "startup",
        "--runtimes",
        "bare,runc,docker,podman,podman-rootless",
        "--reps",
        "2",
        "--warmup",
        "0",
        "--quiet",
        "--results",
        t.0.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    for rt in ["bare", "runc", "docker", "podman", "podman-rootless"] {
        assert!(table.lines().any(|l| l.starts_with(rt)), "{rt} row in table:\n{table}");
    }
    let run = std::fs::read_link(t.0.join("latest")).expect("latest link");
    let dir = t.0.join(run);
    let csv = std::fs::read_to_string(dir.join("startup.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("runtime,metric,value"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 10, "2 reps × 5 runtimes:\n{csv}");
    for r in &rows {
        assert_eq!(r[1], "startup_ms");
        let v: f64 = r[2].parse().unwrap();
        assert!(v > 0.0 && v < 60_000.0, "{r:?}");
    }
    // Engines take far longer than fork+exec: a measurement that says otherwise is broken.
    let median = |rt: &str| {
        let mut v: Vec<f64> = rows.iter().filter(|r| r[0] == rt).map(|r| r[2].parse().unwrap()).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    assert!(median("docker") > 5.0 * median("bare"));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("startup.json")).unwrap()).unwrap();
    let host = &json["report"]["host"];
    assert!(host["kernel"].as_str().unwrap().len() > 2);
    assert!(host["cgroup_layout"]["kind"].is_string(), "{host}");
    let docker = host["runtimes"].as_array().unwrap().iter().find(|r| r["runtime"] == "docker").unwrap();
    assert!(docker["version"].is_string() && docker["storage"].is_string(), "{docker}");
    assert_eq!(containers_left("docker"), "", "docker containers left behind");
    assert_eq!(containers_left("podman"), "", "podman containers left behind");
}

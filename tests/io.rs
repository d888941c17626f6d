//! Experiment 4 end to end: verdicts on the real disk, the chapter's CSV schema, clear errors
//! for full and read-only targets, and nothing left behind.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

/// A scratch folder, with any mount on it undone and everything removed on drop.
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(true)
}

fn io(args: &[&str]) -> (Output, u32) {
    let child = Command::new(probe_bin())
        .arg("io")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn probe");
    let pid = child.id();
    (child.wait_with_output().unwrap(), pid)
}

#[test]
fn unknown_mode_and_zero_size_are_refused() {
    let o = probe(&["io", "--modes", "bare,zfs"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("unknown storage mode 'zfs'") && stderr(&o).contains("docker-volume"), "{}", stderr(&o));
    let o = probe(&["io", "--size", "0"]);
    assert!(!o.status.success() && stderr(&o).contains("--size"), "{}", stderr(&o));
}

#[test]
fn bare_and_docker_volume_are_durable_in_the_chapter_schema() {
    if !require_engine("docker") {
        return;
    }
    let t = TempDir::new("durable");
    let (results, work) = (t.sub("results"), t.sub("work"));
    let (o, pid) = io(&[
        "--modes", "bare,docker-volume", "--size", "8", "--reps", "2", "--idle-ms", "300", "--quiet",
        "--format", "json", "--dir", work.to_str().unwrap(), "--results", results.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    for r in report["results"].as_array().unwrap() {
        assert_eq!(r["outcome"], "durable", "{}: {}", r["mode"], r["reps"][0]["verdict"]);
        for rep in r["reps"].as_array().unwrap() {
            let on_disk = rep["disk"]["before_return_bytes"].as_u64().unwrap();
            assert!(on_disk as f64 >= 0.95 * (8 << 20) as f64, "{}: {on_disk} bytes", r["mode"]);
        }
    }
    let csv = std::fs::read_to_string(results.join("latest/io.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("runtime,metric,value"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.iter().filter(|l| l.starts_with("bare,io_write,")).count(), 2, "{csv}");
    assert_eq!(rows.iter().filter(|l| l.starts_with("docker,io_volume,")).count(), 2, "{csv}");
    assert!(rows.iter().all(|l| l.split(',').count() == 3 && l.rsplit(',').next().unwrap().parse::<f64>().is_ok()), "{csv}");
    assert!(results.join("latest/io.json").exists());
    // Nothing left: no file or volume dir, no container of this run.
    assert!(is_empty(&work), "leftovers in {}", work.display());
    let names = Command::new("docker").args(["ps", "-a", "--format", "{{.Names}}"]).output().unwrap();
    let prefix = format!("probe-{pid}-");
    assert!(!String::from_utf8_lossy(&names.stdout).lines().any(|n| n.starts_with(&prefix)), "container left behind");
}

#[test]
fn full_target_gives_a_clear_error() {
    if !require_root() {
        return;
    }
    let t = TempDir::new("full");
    let tiny = t.sub("tiny");
    assert!(succeeds("mount", &["-t", "tmpfs", "-o", "size=1m", "tmpfs", tiny.to_str().unwrap()]));
    let results = t.0.join("results");
    let (o, _) = io(&["--modes", "bare", "--size", "4", "--reps", "1", "--idle-ms", "0", "--dir", tiny.to_str().unwrap(), "--results", results.to_str().unwrap()]);
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains("os error 28") && err.contains("filesystem is full"), "{err}");
    assert!(is_empty(&tiny), "the partial file and its dir are removed");
    assert!(is_empty(&results), "no run folder for a failed run");
}

#[test]
fn read_only_target_is_refused_with_its_path() {
    if !require_root() {
        return;
    }
    let t = TempDir::new("ro");
    let ro = t.sub("ro");
    assert!(succeeds("mount", &["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", ro.to_str().unwrap()]));
    let (o, _) = io(&["--modes", "bare", "--size", "1", "--reps", "1", "--dir", ro.to_str().unwrap(), "--results", t.0.join("r").to_str().unwrap()]);
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("os error 30") && err.contains(ro.to_str().unwrap()), "{err}");
}

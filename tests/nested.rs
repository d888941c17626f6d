//! `probe nested` against the real engines: every approach reports an outcome, every failure
//! a probed cause, two runs agree, and nothing is left behind.

mod common;

use common::TempDir;

use std::process::Command;

use serde_json::Value;

/// A results folder removed at the end, even when an assertion fails.
fn run_nested(results: &std::path::Path) -> Value {
    let out = Command::new(common::probe_bin())
        .args(["nested", "--quiet", "--depth", "2", "--native-reps", "2", "--format", "json", "--results"])
        .arg(results)
        .output()
        .expect("spawn probe nested");
    assert!(out.status.success(), "probe nested failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("probe nested --format json prints JSON")
}

/// (id, success, missing precondition) per approach.
fn outcomes(report: &Value) -> Vec<(String, bool, String)> {
    report["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["success"].as_bool().unwrap(),
                r["cause"]["missing"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn every_approach_reports_an_outcome_and_every_failure_a_cause() {
    if !(common::require_engine("docker") && common::require_engine("podman")) {
        return;
    }
    // Cached after the first build (seconds); a cold build debootstraps for about a minute.
    let build = common::probe(&["image", "build", "--nested"]);
    assert!(build.status.success(), "image build --nested: {}", String::from_utf8_lossy(&build.stderr));

    let scratch = TempDir(std::env::temp_dir().join(format!("probe-nested-test-{}", std::process::id())));
    let first = run_nested(&scratch.0);
    let results = first["results"].as_array().unwrap();
    assert_eq!(results.len(), 8, "the chapter's 2 + 6 approaches");
    for r in results {
        let id = r["id"].as_str().unwrap();
        assert!(r["total_ms"].as_f64().unwrap() > 0.0, "{id} has no time");
        if r["success"].as_bool().unwrap() {
            assert!(r["first_echo_ms"].as_f64().is_some(), "{id} worked but has no time to echo ok");
            assert!(r["security"].as_str().is_some_and(|s| !s.is_empty()), "{id} worked but has no security cost");
        } else {
            let cause = &r["cause"];
            assert_ne!(cause["missing"], "unexplained", "{id}: failure without a probed cause: {cause}");
            assert!(cause["errno"].as_str().is_some_and(|e| e.starts_with('E')), "{id}: no errno: {cause}");
            assert!(!cause["fix"].as_str().unwrap_or("").is_empty(), "{id}: no fix");
        }
    }
    let native = first["native"].as_array().unwrap();
    assert!(native.len() >= 2 && native[1]["success"] == true, "native depth 1 must work: {native:?}");
    for level in native.iter().filter(|l| l["success"] == false) {
        assert_ne!(level["cause"]["missing"], "unexplained", "native failure without a cause: {level}");
    }
    assert_eq!(first["leftovers"], Value::Array(vec![]), "left behind");

    let csv = std::fs::read_to_string(scratch.0.join("latest/nested.csv")).unwrap();
    assert!(csv.starts_with("runtime,metric,value\n"));
    for r in results {
        assert!(csv.contains(&format!("{}_success", r["id"].as_str().unwrap())), "{csv}");
    }
    assert_eq!(csv.matches(",nested_seconds,").count(), 2, "Experiment 5's rows in the chapter's metric");

    let second = run_nested(&scratch.0);
    assert_eq!(outcomes(&first), outcomes(&second), "two runs disagree");
    assert_eq!(second["leftovers"], Value::Array(vec![]), "left behind");
    // Containers are named probe-PID-<approach id>-N: none may remain, whatever the pid.
    let ids: Vec<String> = results.iter().map(|r| r["id"].as_str().unwrap().replace('_', "-")).collect();
    for engine in ["docker", "podman"] {
        let out = Command::new(engine).args(["ps", "-a", "--format", "{{.Names}}"]).output().unwrap();
        let names = String::from_utf8_lossy(&out.stdout);
        for name in names.lines() {
            assert!(!ids.iter().any(|id| name.contains(&format!("-{id}-"))), "{engine} container {name} left behind");
        }
    }
}

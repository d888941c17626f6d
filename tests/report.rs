//! `probe report` on a fixture `probe all` run folder built in a temp dir: both languages,
//! every experiment present, charts drawn as PNG and inline SVG, nothing external in the
//! HTML, and no English left in the Spanish prose. No root, no engines: fast.

mod common;

use common::TempDir;

use std::fs;
use std::path::Path;

use serde_json::{json, Value};

/// A temp folder removed on drop, even when an assertion fails.
fn host() -> Value {
    json!({"date": "2026-01-01T00:00:00Z", "kernel": "6.18.0", "cpu_model": "Test CPU", "cpus": 2, "memory_total_mb": 24000,
           "runtimes": [{"runtime": "docker", "version": "20.10.24"}, {"runtime": "podman", "version": "4.3.1"}]})
}

const MACHINE: &str = "the chapter's test machine: Docker 28.4.0, Podman 4.6.2, Linux 6.12";

fn sample(wall_ms: f64, phases: Value) -> Value {
    json!({"start_mono_ns": 1, "pid": 2, "wall_ns": (wall_ms * 1e6) as u64, "user_ns": 0, "sys_ns": 0, "exit_code": 0, "phases": phases})
}

fn write(dir: &Path, name: &str, v: &Value) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(name), serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

/// Every experiment's files with the fields the report reads, at plausible values.
fn fixture(run: &Path) {
    fs::write(run.join("all.json"), br#"{"quick": true}"#).unwrap();
    let steps = [
        "startup",
        "memory",
        "memory-cgroup",
        "cpu",
        "cpu-exec",
        "io",
        "scale",
        "nested",
    ];
    let journal: String = steps
        .iter()
        .map(|s| {
            format!("{{\"step\":\"{s}\",\"status\":\"done\",\"seconds\":1.0,\"note\":\"\"}}\n")
        })
        .collect();
    fs::write(run.join("all.state"), journal).unwrap();

    let native_phases = json!([
        {"phase": "rootfs", "detail": "prepare", "start_ns": 0, "dur_ns": 900_000},
        {"phase": "cgroup", "detail": "attach", "start_ns": 900_000, "dur_ns": 7_000_000},
        {"phase": "namespaces", "detail": "net", "start_ns": 7_900_000, "dur_ns": 500_000},
        {"phase": "exec", "detail": "execve", "start_ns": 8_400_000, "dur_ns": 300_000},
        {"phase": "teardown", "detail": "rootfs cleanup", "start_ns": 8_700_000, "dur_ns": 900_000}
    ]);
    let reps = |ms: &[f64], phases: &Value| -> Vec<Value> {
        ms.iter().map(|&m| sample(m, phases.clone())).collect()
    };
    write(
        &run.join("startup"),
        "startup.json",
        &json!({
            "report": {
                "host": host(),
                "plan": {"argv": ["echo", "ok"], "reps": 3, "warmup": 1},
                "results": [
                    {"runtime": "bare", "samples": reps(&[1.0, 1.1, 1.2], &json!([]))},
                    {"runtime": "native", "samples": reps(&[9.5, 9.6, 9.8], &native_phases)},
                    {"runtime": "docker", "samples": reps(&[240.0, 250.0, 260.0], &json!([]))},
                    {"runtime": "podman", "samples": reps(&[160.0, 165.0, 170.0], &json!([]))}
                ],
                "skipped": [{"runtime": "podman-rootless", "reason": "not configured"}],
                "reference": {"machine": MACHINE, "metric": "startup_ms", "unit": "ms", "reps": {},
                              "mean_ms": {"bare": 1.3, "docker": 307.8, "podman": 178.0}, "times_bare": {"docker": 237, "podman": 137}}
            },
            "breakdown": [{"runtime": "native", "total_median_ms": 9.6, "min_coverage": 0.99,
                           "rows": [{"phase": "rootfs", "median_ms": 0.9}, {"phase": "cgroup", "median_ms": 7.0}, {"phase": "exec", "median_ms": 0.3}, {"phase": "teardown", "median_ms": 0.9}]}]
        }),
    );
    write(
        &run.join("memory"),
        "memory.json",
        &json!({
            "host": host(), "command": ["sleep", "3600"],
            "noise": {"reads_kb": [1, 2, 3, 4], "summary_mb": {"sd": 2.0, "min": 100.0, "max": 105.0}},
            "results": [{"runtime": "docker", "batches": [{"count": 1, "delta_mb": -3, "below_noise": true}, {"count": 5, "delta_mb": 40, "below_noise": false}]},
                        {"runtime": "podman", "batches": [{"count": 1, "delta_mb": 2, "below_noise": true}, {"count": 5, "delta_mb": 12, "below_noise": false}]}],
            "reference": {"machine": MACHINE, "overhead_mb": {"docker": {"1": -41, "5": 71}, "podman": {"1": 39, "5": -143}}}
        }),
    );
    let fit =
        |slope: f64, intercept: f64| json!({"slope": slope, "intercept": intercept, "r2": 0.99});
    write(
        &run.join("memory-cgroup"),
        "memory_cgroup.json",
        &json!({
            "host": host(), "counts": [0, 1, 3],
            "results": [{"runtime": "docker", "cgroup_na": null, "fits": {"cgroup": fit(430.0, 0.0), "container_pss": null, "engine_pss": fit(1500.0, 120_000.0)}},
                        {"runtime": "podman-rootless", "cgroup_na": "no cgroup of its own", "fits": {"cgroup": null, "container_pss": fit(300.0, 0.0), "engine_pss": fit(1800.0, 0.0)}},
                        {"runtime": "podman", "cgroup_na": null, "fits": {"cgroup": fit(97.0, 0.0), "container_pss": null, "engine_pss": fit(1800.0, 0.0)}}],
            "reference": {"machine": MACHINE, "kb_per_container": {"docker": {"1": 432}, "podman": {"1": 94}}}
        }),
    );
    let cpu = |name: &str, file: &str, count: u64, secs: [f64; 3], reference: Value| {
        let results: Vec<Value> = ["bare", "docker", "podman"]
            .iter()
            .zip(secs)
            .map(|(rt, s)| json!({"runtime": rt, "reps": [{"wall_ms": s * 1000.0}, {"wall_ms": s * 1010.0}]}))
            .collect();
        write(
            &run.join(name),
            file,
            &json!({"host": host(), "count": count, "reps": 2, "results": results, "reference": {"machine": MACHINE, "overhead_pct": reference}}),
        );
    };
    cpu(
        "cpu",
        "cpu.json",
        1_000_000,
        [4.0, 4.5, 4.8],
        json!({"docker": 12.3, "podman": 20.2}),
    );
    cpu(
        "cpu-exec",
        "cpu_exec.json",
        1_000_000,
        [4.0, 4.0, 4.4],
        json!({"docker": -1.1, "podman": 11.4}),
    );
    let io_dir = run.join("io");
    let mode = |mode: &str, runtime: &str, metric: &str, outcome: &str| {
        json!({"mode": mode, "runtime": runtime, "metric": metric, "outcome": outcome,
               "reps": [{"verdict": {"decided_by": "98% of the file reached the device before fdatasync returned", "mechanism": null}}]})
    };
    write(
        &io_dir,
        "io.json",
        &json!({
            "host": host(),
            "results": [mode("bare", "bare", "io_write", "durable"), mode("docker-overlay", "docker", "io_overlay", "durable"),
                        mode("rootless-fuse-overlayfs", "podman-rootless", "io_fuse", "not-durable")],
            "reference": {"machine": MACHINE, "mean": {"bare": 470, "docker-overlay": 377}}
        }),
    );
    fs::write(
        io_dir.join("io.csv"),
        "runtime,metric,value\nbare,io_write,450\nbare,io_write_write_mbps,900\nbare,io_write_sync_ms,110\nbare,io_write_device_pct,99\n\
         docker,io_overlay,380\ndocker,io_overlay_write_mbps,800\ndocker,io_overlay_sync_ms,140\ndocker,io_overlay_device_pct,98\n\
         podman-rootless,io_fuse,1700\npodman-rootless,io_fuse_write_mbps,1800\npodman-rootless,io_fuse_sync_ms,2\npodman-rootless,io_fuse_device_pct,3\n",
    )
    .unwrap();
    let steps = |t: [f64; 2], m: [f64; 2]| json!([{"count": 5, "total_s": t[0], "memory_mb": m[0]}, {"count": 10, "total_s": t[1], "memory_mb": m[1]}]);
    write(
        &run.join("scale"),
        "scale.json",
        &json!({
            "host": host(),
            "results": [{"runtime": "docker", "steps": steps([1.2, 2.5], [10.0, 20.0]), "growth": {"time_ratio": 1.04, "memory_ratio": 1.0, "time_nonlinear": false, "memory_nonlinear": false}},
                        {"runtime": "podman", "steps": steps([0.8, 1.6], [2.0, 4.1]), "growth": {"time_ratio": 2.0, "memory_ratio": 1.0, "time_nonlinear": true, "memory_nonlinear": false}}],
            "reference": {"machine": MACHINE, "time_s": {"docker": {"10": 2.0}, "podman": {"10": 1.04}}, "memory_mb": {"docker": {"10": 50}, "podman": {"10": 35}}}
        }),
    );
    write(
        &run.join("nested"),
        "nested.json",
        &json!({
            "host": host(),
            "results": [
                {"id": "socket_mount", "experiment": 9, "engine": "docker", "approach": "socket_mount", "success": true, "total_ms": 2900.0, "first_echo_ms": 2500.0, "cause": null,
                 "security": "the host daemon's socket: full control of every container on the host"},
                {"id": "pinp_basic", "experiment": 9, "engine": "podman", "approach": "pinp_basic", "success": false, "total_ms": 2400.0, "first_echo_ms": null,
                 "cause": {"syscall": "mount(proc)", "errno": "EPERM", "missing": "mount-permission", "reason": "the outer container may not mount proc", "fix": "add --privileged"}, "security": null}
            ],
            "native": [{"depth": 1, "success": true, "median_ms": 10.0, "level_cost_ms": 10.0}, {"depth": 2, "success": true, "median_ms": 21.0, "level_cost_ms": 11.0}],
            "reference": {"machine": MACHINE, "rows": [{"id": "socket_mount", "result": "Success"}, {"id": "pinp_basic", "result": "Error"}]}
        }),
    );
}

fn report(run: &Path, lang: &str) -> (String, String) {
    let out = common::probe(&["report", run.to_str().unwrap(), "--lang", lang]);
    assert!(
        out.status.success(),
        "probe report --lang {lang}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = fs::read_to_string(run.join(format!("report.{lang}.md"))).unwrap();
    let html = fs::read_to_string(run.join(format!("report.{lang}.html"))).unwrap();
    (md, html)
}

#[test]
fn report_of_a_fixture_run_has_every_experiment_chart_and_verdict() {
    let s = TempDir::new("en");
    fixture(&s.0);
    let (md, html) = report(&s.0, "en");
    for heading in [
        "Experiment 1",
        "Experiment 2",
        "Experiment 8",
        "Experiment 3",
        "Experiment 7",
        "Experiment 4",
        "Experiment 6",
        "Experiments 5 and 9",
    ] {
        assert!(md.contains(&format!("## {heading}")), "{heading} missing");
    }
    assert!(
        md.contains("## Summary")
            && md.contains("**Startup**")
            && md.contains("**I/O overlay**")
            && md.contains("**Nested v2 (Exp 9)**")
    );
    // The chapter's proportions beside this run's: docker ÷ bare was 237 there.
    assert!(md.contains("startup docker ÷ bare") && md.contains("237×"));
    assert!(md.contains("fsync, `rootless-fuse-overlayfs`: **NOT durable**"));
    assert!(md.contains("nesting, podman `pinp_basic`: **fails**"));
    let charts = [
        "startup",
        "phases",
        "timeline-native",
        "memory",
        "memory-cgroup",
        "cpu",
        "cpu-exec",
        "cpu-run-vs-exec",
        "io",
        "scale",
        "nested",
    ];
    for c in charts {
        let png = s.0.join(format!("charts/{c}.en.png"));
        let bytes = fs::read(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{c} is not a PNG");
        assert!(
            md.contains(&format!("(charts/{c}.en.png)")),
            "{c} not linked"
        );
    }
    assert_eq!(
        html.matches("<svg").count(),
        charts.len(),
        "every chart inline in the HTML"
    );
    for external in ["src=", "href=", "@import", "url("] {
        assert!(
            !html.contains(external),
            "the HTML must be self-contained: found {external}"
        );
    }
    let leftovers: Vec<_> = fs::read_dir(s.0.join("charts"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

/// Common English prose words that are not also Spanish words.
const ENGLISH: &[&str] = &[
    "the",
    "and",
    "of",
    "with",
    "is",
    "are",
    "was",
    "were",
    "this",
    "that",
    "which",
    "from",
    "when",
    "where",
    "not",
    "each",
    "every",
    "only",
    "than",
    "into",
    "its",
    "it",
    "has",
    "have",
    "been",
    "by",
    "for",
    "on",
    "at",
    "to",
    "in",
    "or",
    "as",
    "be",
    "faster",
    "slower",
    "less",
    "more",
    "here",
    "chapter",
    "seconds",
    "median",
    "works",
    "fails",
    "failed",
    "below",
    "noise",
    "memory",
    "time",
    "startup",
    "phase",
    "phases",
    "reps",
    "rep",
    "mean",
    "range",
    "verdict",
    "summary",
    "figure",
    "machine",
    "engines",
    "date",
    "containers",
    "container",
    "per",
    "write",
    "disk",
    "reached",
    "outcome",
    "approach",
    "why",
    "see",
    "what",
    "how",
    "over",
    "under",
    "after",
    "before",
    "then",
    "there",
    "their",
    "they",
    "would",
    "could",
    "should",
    "does",
    "did",
    "so",
    "all",
    "any",
];

/// The prose of a Markdown report: code spans, file names and hyphenated identifiers
/// (runtime and mode names) are not prose.
fn prose_words(md: &str) -> Vec<String> {
    let mut text = String::new();
    for (i, part) in md.split('`').enumerate() {
        if i % 2 == 0 {
            text.push_str(part);
            text.push(' ');
        }
    }
    text.split_whitespace()
        .filter(|t| !t.contains('/') && !t.contains('.') && !t.contains('-') && !t.contains('_'))
        .flat_map(|t| {
            t.split(|c: char| !c.is_alphabetic())
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

#[test]
fn spanish_report_has_no_english_prose() {
    let s = TempDir::new("es");
    fixture(&s.0);
    let (md, html) = report(&s.0, "es");
    assert!(
        md.contains("## Tabla resumen") && md.contains("## Experimento 1: latencia de arranque")
    );
    assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"es\">"));
    let english: Vec<String> = prose_words(&md)
        .into_iter()
        .filter(|w| ENGLISH.contains(&w.as_str()))
        .collect();
    assert!(
        english.is_empty(),
        "English words in the Spanish report: {english:?}\n\n{md}"
    );
    // The check itself must bite: the English report is full of them.
    let (en, _) = report(&s.0, "en");
    assert!(
        prose_words(&en)
            .iter()
            .filter(|w| ENGLISH.contains(&w.as_str()))
            .count()
            > 50
    );
}

#[test]
fn failed_and_unavailable_experiments_are_reported_and_the_rest_still_are() {
    let s = TempDir::new("partial");
    fixture(&s.0);
    fs::remove_dir_all(s.0.join("cpu")).unwrap();
    fs::remove_dir_all(s.0.join("scale")).unwrap();
    let mut journal = fs::OpenOptions::new()
        .append(true)
        .open(s.0.join("all.state"))
        .unwrap();
    std::io::Write::write_all(
        &mut journal,
        b"{\"step\":\"cpu\",\"status\":\"failed\",\"seconds\":2.0,\"note\":\"docker rep 1: exit status 125\"}\n\
          {\"step\":\"scale\",\"status\":\"unavailable\",\"seconds\":0.0,\"note\":\"this build has no `probe scale`\"}\n",
    )
    .unwrap();
    let (md, _) = report(&s.0, "en");
    assert!(
        md.contains("Failed: `docker rep 1: exit status 125`. The log is in logs/cpu.log."),
        "{md}"
    );
    assert!(
        md.contains("Not available in this build of probe: it has no `probe scale` yet."),
        "{md}"
    );
    assert!(
        md.contains("## Experiment 4") && md.contains("charts/io.en.png"),
        "the others are still reported"
    );
    let (es, _) = report(&s.0, "es");
    assert!(
        es.contains("Falló: `docker rep 1: exit status 125`")
            && es.contains("todavía no tiene `probe scale`")
    );
}

#[test]
fn a_folder_without_results_is_refused_with_advice() {
    let s = TempDir::new("empty");
    let out = common::probe(&["report", s.0.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("holds no experiment results") && err.contains("startup.json"),
        "{err}"
    );
}

#[test]
fn faster_is_said_only_when_the_reps_resolve_it() {
    let s = TempDir::new("noisy");
    fixture(&s.0);
    let (md, _) = report(&s.0, "en");
    assert!(md.contains("podman 1.52× faster than docker"), "{md}");
    // Docker's medians still 35 ms above podman's, but its reps spread over 100 ms.
    let path = s.0.join("startup/startup.json");
    let mut v: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let docker = v["report"]["results"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r["runtime"] == "docker")
        .unwrap();
    for (rep, ms) in docker["samples"].as_array_mut().unwrap().iter_mut().zip([150.0, 200.0, 250.0]) {
        rep["wall_ns"] = json!((ms * 1e6) as u64);
    }
    fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    let (md, _) = report(&s.0, "en");
    assert!(!md.contains("faster than"), "{md}");
    assert!(md.contains("docker and podman: no clear difference"), "{md}");
}

//! `probe report` on real runs: each experiment run at quick sizes (as root), its run folder
//! put where `probe all` puts it, and the report read back from their own JSON and CSV files —
//! both languages, every experiment's figures, charts drawn as PNG and inline SVG, nothing
//! external in the HTML, and no English left in the Spanish prose.

mod common;

use common::TempDir;

use std::fs;
use std::path::Path;

use serde_json::{json, Value};

/// Each experiment `probe all` runs, at the smallest sizes and cheapest runtimes that still
/// give every figure the report draws (docker in startup for the chapter's × bare ratio).
const RUNS: &[(&str, &[&str])] = &[
    ("startup", &["startup", "--runtimes", "bare,native,docker", "--reps", "3", "--breakdown", "--quiet"]),
    ("memory", &["memory", "--runtimes", "native", "--counts", "1,2", "--noise-reads", "2", "--settle", "100", "--quiet"]),
    ("memory-cgroup", &["memory", "--cgroup", "--runtimes", "native", "--counts", "0,1", "--warmup", "0", "--settle-timeout", "1000", "--quiet"]),
    ("cpu", &["cpu", "--runtimes", "bare,native", "--count", "1000", "--reps", "2", "--quiet"]),
    ("cpu-exec", &["cpu", "--exec", "--runtimes", "bare,native", "--count", "1000", "--reps", "2", "--warmup", "0", "--quiet"]),
    ("io", &["io", "--modes", "bare,tmpfs", "--size", "1", "--reps", "1", "--idle-ms", "100", "--quiet"]),
    ("scale", &["scale", "--runtimes", "native", "--counts", "1,2", "--quiet"]),
];

/// Runs one experiment into its own results folder and moves the run folder it made to
/// `<run>/<step>`, where `probe all` puts it; returns its JSON.
fn run_step(run: &Path, step: &str, args: &[&str]) -> Value {
    let results = run.join(format!(".results-{step}"));
    let mut argv = args.to_vec();
    argv.extend(["--results", results.to_str().unwrap()]);
    let out = common::probe(&argv);
    assert!(out.status.success(), "probe {}: {}", argv.join(" "), String::from_utf8_lossy(&out.stderr));
    let made = results.join("latest").canonicalize().unwrap();
    fs::rename(&made, run.join(step)).unwrap();
    fs::remove_dir_all(&results).unwrap();
    let json = fs::read(run.join(step).join(format!("{}.json", step.replace('-', "_")))).unwrap();
    serde_json::from_slice(&json).unwrap()
}

/// The run folder `probe all --quick` would leave: its options file and journal (what
/// `probe all` itself writes, not an experiment's results) around the experiments' own folders.
fn all_folder(run: &Path, steps: &[(&str, &str, &str)]) {
    fs::write(run.join("all.json"), br#"{"quick": true}"#).unwrap();
    let journal: String = steps
        .iter()
        .map(|(step, status, note)| json!({"step": step, "status": status, "seconds": 1.0, "note": note}).to_string() + "\n")
        .collect();
    fs::write(run.join("all.state"), journal).unwrap();
}

const MACHINE: &str = "the chapter's test machine: Docker 28.4.0, Podman 4.6.2, Linux 6.12";

fn write(dir: &Path, name: &str, v: &Value) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(name), serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

/// nested.json stays a fixture: a real run needs the probe-nested image and an inner engine
/// started per approach (minutes), and the failing approach's cause depends on the host's
/// confinement, so no quick run is sure to show both a working and a failing approach.
fn nested_fixture(run: &Path, host: &Value) {
    write(
        &run.join("nested"),
        "nested.json",
        &json!({
            "experiment": "nested",
            "host": host,
            "results": [
                {"id": "socket_mount", "experiment": 9, "engine": "docker", "approach": "socket_mount", "outer_flags": ["-v", "/var/run/docker.sock:/var/run/docker.sock"],
                 "success": true, "total_ms": 2900.0, "first_echo_ms": 2500.0, "steps": [], "cause": null,
                 "security": "the host daemon's socket: full control of every container on the host"},
                {"id": "pinp_basic", "experiment": 9, "engine": "podman", "approach": "pinp_basic", "outer_flags": [], "success": false, "total_ms": 2400.0, "first_echo_ms": null, "steps": [],
                 "cause": {"step": "run `echo ok` in an inner container", "syscall": "mount(proc)", "errno": "EPERM", "missing": "mount-permission",
                           "reason": "the outer container may not mount proc", "fix": "add --privileged", "evidence": "Error: mount proc",
                           "source": "measured: mount(2) of proc in the outer container"}, "security": null}
            ],
            "native": [{"depth": 1, "success": true, "samples_ms": [10.0], "median_ms": 10.0, "level_cost_ms": 10.0},
                       {"depth": 2, "success": true, "samples_ms": [21.0], "median_ms": 21.0, "level_cost_ms": 11.0}],
            "leftovers": [],
            "reference": {"machine": MACHINE, "rows": [{"id": "socket_mount", "result": "Success", "seconds": 2.1, "reason": ""},
                                                       {"id": "pinp_basic", "result": "Error", "seconds": null, "reason": "mount proc"}]}
        }),
    );
}

/// Every experiment run for real (nested aside, see `nested_fixture`); the runs' JSON by step.
fn real_run(run: &Path) -> Vec<(&'static str, Value)> {
    let runs: Vec<(&str, Value)> = RUNS.iter().map(|(step, args)| (*step, run_step(run, step, args))).collect();
    nested_fixture(run, &runs[0].1["report"]["host"]);
    let mut journal: Vec<(&str, &str, &str)> = RUNS.iter().map(|(s, _)| (*s, "done", "")).collect();
    journal.push(("nested", "done", ""));
    all_folder(run, &journal);
    runs
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn name(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a name: {v}"))
}

/// The report's part under `## <heading>`.
fn section<'a>(md: &'a str, heading: &str) -> &'a str {
    let start = md.find(&format!("\n## {heading}")).unwrap_or_else(|| panic!("{heading} missing:\n{md}")) + 1;
    let rest = &md[start..];
    &rest[..rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3)]
}

/// Asserts the table row that starts with `row` shows `measured` in its next cell, as printed
/// with about three significant digits.
fn shows(section: &str, row: &str, measured: f64) {
    let line = section
        .lines()
        .find(|l| l.starts_with(row))
        .unwrap_or_else(|| panic!("no row `{row}` in:\n{section}"));
    let cell = line[row.len()..].split(" |").next().unwrap().trim();
    let shown: f64 = cell
        .trim_end_matches(" (PSS)")
        .parse()
        .unwrap_or_else(|e| panic!("`{cell}` in `{line}`: {e}"));
    let rounding = (measured.abs() * 0.005).max(0.0005) * 1.01;
    assert!((shown - measured).abs() <= rounding, "`{line}` shows {shown}, the run measured {measured}");
}

/// Each experiment's figures, from its own JSON, where the report shows them.
fn check_figures(md: &str, step: &str, v: &Value) {
    let at = |heading: &str| section(md, heading);
    let mut checked = 0;
    match step {
        "startup" => {
            for r in v["report"]["results"].as_array().unwrap() {
                let ms = r["samples"].as_array().unwrap().iter().map(|s| num(&s["wall_ns"]) / 1e6).collect();
                shows(at("Experiment 1"), &format!("| {} | ", name(&r["runtime"])), median(ms));
                checked += 1;
            }
        }
        "memory" => {
            for r in v["results"].as_array().unwrap() {
                for b in r["batches"].as_array().unwrap() {
                    let row = format!("| {} | {} | {:+} |", b["count"], name(&r["runtime"]), b["delta_mb"].as_i64().unwrap());
                    assert!(at("Experiment 2").contains(&row), "`{row}` missing:\n{md}");
                    checked += 1;
                }
            }
        }
        "memory-cgroup" => {
            for r in v["results"].as_array().unwrap() {
                let fit = if r["fits"]["cgroup"].is_null() { &r["fits"]["container_pss"] } else { &r["fits"]["cgroup"] };
                shows(at("Experiment 8"), &format!("| {} | ", name(&r["runtime"])), num(&fit["slope"]));
                checked += 1;
            }
        }
        "cpu" | "cpu-exec" => {
            let heading = if step == "cpu" { "Experiment 3" } else { "Experiment 7" };
            for r in v["results"].as_array().unwrap() {
                let s = r["reps"].as_array().unwrap().iter().map(|x| num(&x["wall_ms"]) / 1000.0).collect();
                shows(at(heading), &format!("| {} | ", name(&r["runtime"])), median(s));
                checked += 1;
            }
        }
        "io" => {
            for m in v["results"].as_array().unwrap() {
                let word = match m["outcome"].as_str() {
                    Some("durable") => "durable",
                    Some("not-durable") => "NOT durable",
                    Some("undecided") => "undecided",
                    _ => "reps disagree",
                };
                let verdict = format!("fsync, `{}`: **{word}**", name(&m["mode"]));
                assert!(md.contains(&verdict), "`{verdict}` missing:\n{md}");
                checked += 1;
            }
        }
        "scale" => {
            for r in v["results"].as_array().unwrap() {
                for s in r["steps"].as_array().unwrap() {
                    shows(at("Experiment 6"), &format!("| {} | {} | ", name(&r["runtime"]), s["count"]), num(&s["total_s"]));
                    checked += 1;
                }
            }
        }
        other => panic!("no figures to check for {other}"),
    }
    assert!(checked > 0, "{step} has results");
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
fn report_of_real_runs_has_every_experiment_with_their_figures_in_both_languages() {
    if !common::require_engine("docker") {
        return;
    }
    let s = TempDir::new("real");
    let runs = real_run(&s.0);
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
    for (step, v) in &runs {
        check_figures(&md, step, v);
    }
    assert!(
        md.contains("## Summary")
            && md.contains("**Startup**")
            && md.contains("**I/O overlay**")
            && md.contains("**Nested v2 (Exp 9)**"),
        "{md}"
    );
    // The chapter's proportions beside this run's: docker ÷ bare was 237 there.
    assert!(md.contains("startup docker ÷ bare") && md.contains("237×"), "{md}");
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
        md.matches("](charts/").count(),
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
    spanish_has_no_english_prose(&s.0, &md);
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

/// The Spanish report of the same run: no English word left in its prose.
fn spanish_has_no_english_prose(run: &Path, en: &str) {
    let (md, html) = report(run, "es");
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
    assert!(
        prose_words(en)
            .iter()
            .filter(|w| ENGLISH.contains(&w.as_str()))
            .count()
            > 50
    );
}

#[test]
fn failed_and_unavailable_experiments_are_reported_and_the_rest_still_are() {
    if !common::require_root() {
        return;
    }
    let s = TempDir::new("partial");
    let io = RUNS.iter().find(|(step, _)| *step == "io").unwrap();
    run_step(&s.0, io.0, io.1);
    // A failed step and one this build lacks: what `probe all` journals for them (a real build
    // without `probe scale` cannot be made from this one).
    all_folder(
        &s.0,
        &[
            ("io", "done", ""),
            ("cpu", "failed", "docker rep 1: exit status 125"),
            ("scale", "unavailable", "this build has no `probe scale`"),
        ],
    );
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
fn a_file_missing_a_field_is_named_in_the_report_instead_of_failing_it() {
    let s = TempDir::new("old");
    // A file from another probe version, made by hand: a real run of this build writes every
    // field.
    write(&s.0, "startup.json", &json!({"report": {"experiment": "startup"}, "breakdown": []}));
    let (md, _) = report(&s.0, "en");
    assert!(
        md.contains("This experiment's results could not be read")
            && md.contains("startup.json does not have the fields this probe reads")
            && md.contains("missing field"),
        "{md}"
    );
}

#[test]
fn faster_is_said_only_when_the_reps_resolve_it() {
    if !(common::require_engine("docker") && common::require_engine("podman")) {
        return;
    }
    let s = TempDir::new("noisy");
    run_step(&s.0, "startup", &["startup", "--runtimes", "docker,podman", "--reps", "3", "--warmup", "0", "--quiet"]);
    all_folder(&s.0, &[("startup", "done", "")]);
    // The reps' times are set by hand so the verdict is known in advance: the same real file,
    // first with tight reps 100 ms apart, then with docker's spread over 100 ms.
    let path = s.0.join("startup/startup.json");
    let set = |docker: [f64; 3], podman: [f64; 3]| {
        let mut v: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        for r in v["report"]["results"].as_array_mut().unwrap() {
            let ms = if r["runtime"] == "docker" { docker } else { podman };
            for (rep, ms) in r["samples"].as_array_mut().unwrap().iter_mut().zip(ms) {
                rep["wall_ns"] = json!((ms * 1e6) as u64);
            }
        }
        fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
        report(&s.0, "en").0
    };
    let md = set([300.0, 301.0, 302.0], [200.0, 201.0, 202.0]);
    assert!(md.contains("podman 1.50× faster than docker"), "{md}");
    let md = set([150.0, 200.0, 250.0], [160.0, 165.0, 170.0]);
    assert!(!md.contains("faster than"), "{md}");
    assert!(md.contains("docker and podman: no clear difference"), "{md}");
}

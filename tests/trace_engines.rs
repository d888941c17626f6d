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

fn slice_at<'a>(att: &'a Value, t: u64) -> &'a Value {
    att["slices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["start"].as_u64().unwrap() <= t && t < s["end"].as_u64().unwrap())
        .unwrap_or_else(|| panic!("no slice holds t={t}"))
}

/// The command's own container start, with nothing lost.
fn check(v: &Value, expect_cgroup: bool) {
    assert_eq!(v["lost"], 0, "trace records lost");
    check_start(&v["attribution"], v["events"].as_array().unwrap(), expect_cgroup);
}

/// Coverage, the container cgroup's mkdir inside `cgroup`, the command's exec inside `exec`.
fn check_start(att: &Value, events: &[Value], expect_cgroup: bool) {
    let coverage = att["slices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["phase"] != "unattributed")
        .map(|s| s["end"].as_u64().unwrap() - s["start"].as_u64().unwrap())
        .sum::<u64>() as f64
        / (att["window"]["end"].as_u64().unwrap() - att["window"]["start"].as_u64().unwrap()) as f64;
    assert!(coverage >= 0.95, "only {:.1}% attributed", coverage * 100.0);
    let init = att["init_pid"].as_u64().expect("container init found (pivot_root)");
    let exec = events
        .iter()
        .find(|e| e["name"] == "sched/sched_process_exec" && e["pid"].as_u64() == Some(init) && e["fields"]["filename"] == "/bin/true")
        .expect("exec of /bin/true by the container init");
    assert_eq!(slice_at(att, exec["time_ns"].as_u64().unwrap())["phase"], "exec");
    if expect_cgroup {
        let cg = att["container_cgroup"].as_str().expect("container cgroup found");
        let mkdir = events
            .iter()
            .find(|e| e["name"] == "cgroup/cgroup_mkdir" && e["fields"]["path"] == cg)
            .expect("cgroup_mkdir of the container cgroup");
        assert_eq!(slice_at(att, mkdir["time_ns"].as_u64().unwrap())["phase"], "cgroup");
    }
    let phases: Vec<&str> = att["slices"].as_array().unwrap().iter().map(|s| s["phase"].as_str().unwrap()).collect();
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
    // Killed by a signal: 128 + that signal, as a shell reports it.
    let killed = Command::new(common::probe_bin()).args(["trace", "--", "sh", "-c", "kill -9 $$"]).output().unwrap();
    assert_eq!(killed.status.code(), Some(128 + 9));
}

#[test]
fn startup_breakdown_puts_engines_beside_native() {
    if !common::require_engine("docker") || !common::require_engine("podman") {
        return;
    }
    let dir = common::TempDir::new("breakdown");
    let png = dir.0.join("timeline.png");
    let results = dir.0.join("results");
    let out = common::probe(&[
        "startup", "--breakdown", "--runtimes", "native,docker,podman", "--reps", "3", "--quiet",
        "--results", results.to_str().unwrap(), "--timeline", png.to_str().unwrap(), "--", "true",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    for rt in ["native", "docker", "podman"] {
        assert!(text.contains(&format!("Phases of {rt} (median total")), "no phase table for {rt}:\n{text}");
    }
    let stacked = text.split("Where the time goes").nth(1).expect("stacked comparison");
    assert!(["native ", "docker ", "podman "].iter().all(|r| stacked.contains(r)), "{stacked}");

    let json: Value = serde_json::from_slice(&std::fs::read(results.join("latest/startup.json")).unwrap()).unwrap();
    let breakdowns = json["breakdown"].as_array().unwrap();
    for b in breakdowns.iter().filter(|b| b["runtime"] != "native") {
        assert!(b["min_coverage"].as_f64().unwrap() >= 0.95, "{b}");
        let phases: Vec<&str> = b["rows"].as_array().unwrap().iter().map(|r| r["phase"].as_str().unwrap()).collect();
        for p in ["engine", "runtime", "cgroup", "namespaces", "mounts", "exec", "teardown"] {
            assert!(phases.contains(&p), "{}: no {p} in {phases:?}", b["runtime"]);
        }
    }
    // Page faults are sampled 1 in 16: every engine rep's count is a multiple of 16, and a
    // docker run faults thousands of times.
    for r in json["report"]["results"].as_array().unwrap().iter().filter(|r| r["runtime"] != "native") {
        for s in r["samples"].as_array().unwrap() {
            let faults: u64 = s["phases"].as_array().unwrap().iter().filter_map(|p| p["counters"]["page_faults"].as_u64()).sum();
            assert!(faults >= 1000 && faults % 16 == 0, "{}: {faults} page faults", r["runtime"]);
        }
    }
    let head = std::fs::read(&png).expect("timeline written");
    assert!(head.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    // An existing file is refused before anything runs.
    let again = common::probe(&["startup", "--breakdown", "--runtimes", "native", "--timeline", png.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[test]
fn trace_timeline_is_svg() {
    if !common::require_root() {
        return;
    }
    let dir = common::TempDir::new("timeline");
    let svg = dir.0.join("t.svg");
    let out = common::probe(&["trace", "--timeline", svg.to_str().unwrap(), "--", "sh", "-c", "true"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let body = std::fs::read_to_string(&svg).unwrap();
    assert!(body.starts_with("<svg") && body.contains("phases"), "{}", &body[..body.len().min(200)]);
    let hidden: Vec<_> = std::fs::read_dir(&dir.0).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with('.')).collect();
    assert!(hidden.is_empty(), "temporary file left: {hidden:?}");
}

#[test]
fn trace_without_root_runs_the_command_untraced() {
    if !common::require_root() {
        return;
    }
    // nobody: no capability, and tracefs is root-only.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"])
        .args([common::probe_bin(), "trace", "--", "sh", "-c", "exit 4"])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(4), "the command's own status: {stderr}");
    assert!(stdout.contains("ran in") && stdout.contains("not traced"), "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "one line says why: {stderr}");
    assert!(stderr.contains("needs root"), "{stderr}");
}

#[test]
fn breakdown_without_tracefs_falls_back_to_totals() {
    if !common::require_engine("docker") {
        return;
    }
    let dir = common::TempDir::new("no-tracefs");
    // tracefs unmounted in a private mount namespace only: the rest of the machine keeps it.
    let script = format!(
        "umount -l /sys/kernel/tracing 2>/dev/null; umount -l /sys/kernel/debug 2>/dev/null; \
         exec {} startup --breakdown --runtimes docker --reps 2 --quiet --results {} -- true",
        common::probe_bin(),
        dir.0.join("results").display()
    );
    let out = Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", &script]).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    let notes: Vec<&str> = stderr.lines().filter(|l| l.contains("tracing unavailable")).collect();
    assert_eq!(notes.len(), 1, "{stderr}");
    assert!(notes[0].contains("tracefs is not mounted") && notes[0].contains("totals only"), "{}", notes[0]);
    assert!(stdout.lines().any(|l| l.starts_with("docker ")), "docker's total is still measured: {stdout}");
    assert!(!stdout.contains("Phases of docker"), "no docker phases without tracing: {stdout}");
}

#[test]
fn trace_window_ends_when_the_command_exits() {
    if !common::require_root() {
        return;
    }
    // The tracer wakes every 250 ms to copy its rings; the window must still end at the
    // command's exit, not at the next wake-up.
    let v = trace_json(&["sleep", "0.05"]);
    let w = &v["window"];
    let ms = (w["end"].as_u64().unwrap() - w["start"].as_u64().unwrap()) as f64 / 1e6;
    assert!((50.0..200.0).contains(&ms), "window of `sleep 0.05`: {ms:.1} ms");
}

#[test]
fn trace_script_gets_one_breakdown_per_container_start() {
    if !common::require_engine("docker") {
        return;
    }
    let run = format!("docker {}", RUN.join(" "));
    let script = format!("{run}; sleep 0.2; docker ps -q >/dev/null; {run}");
    let v = trace_json(&["sh", "-c", &script]);
    assert_eq!(v["lost"], 0, "trace records lost");
    assert!(v["attribution"].is_null(), "the script itself is no container start");
    let starts = v["containers"].as_array().unwrap();
    // `docker ps` talks to the daemon too, but starts nothing: no breakdown of its own.
    assert_eq!(starts.len(), 2, "{:?}", starts.iter().map(|a| &a["window"]).collect::<Vec<_>>());
    let events = v["events"].as_array().unwrap();
    for a in starts {
        check_start(a, events, true);
    }
    assert_ne!(starts[0]["container_cgroup"], starts[1]["container_cgroup"]);
    assert!(starts[0]["window"]["end"].as_u64() < starts[1]["window"]["start"].as_u64(), "one after the other");
    let procs = v["summary"]["procs"].as_array().unwrap();
    assert!(procs.iter().filter(|p| p["exe"] == "docker").count() == 3, "the script's three docker CLIs");
}

#[test]
fn trace_plain_command_gets_a_process_summary() {
    if !common::require_root() {
        return;
    }
    let v = trace_json(&["sh", "-c", "sleep 2; true"]);
    assert!(v["containers"].as_array().unwrap().is_empty());
    let procs = v["summary"]["procs"].as_array().unwrap();
    let sh = &procs[0];
    assert_eq!(sh["tgid"], v["window"]["root"]);
    assert_eq!(sh["children"], 1, "sh forks sleep and execs true in place: {procs:?}");
    let sleep = procs.iter().find(|p| p["exe"] == "sleep").expect("sleep in the tree");
    assert_eq!(sleep["parent"], sh["tgid"]);
    let ns = |p: &Value, k: &str| p["off_cpu"][k].as_u64().unwrap() as f64 / 1e9;
    assert!((1.9..2.5).contains(&ns(sleep, "sleep_ns")), "sleep slept {:.3} s", ns(sleep, "sleep_ns"));
    let on = sleep["on_cpu_ns"].as_u64().unwrap() as f64 / 1e9;
    assert!(on > 0.0 && on < 0.1, "sleep on CPU {on:.3} s");
    // The same on the terminal: a process table, no phase table of `unattributed`.
    let out = Command::new(common::probe_bin()).args(["trace", "--", "sleep", "0.5"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Processes of pid") && text.contains("sleep"), "{text}");
    assert!(!text.contains("unattributed") && !text.contains("Phases of"), "{text}");
}

//! Experiments 2, 3, 6, 7 and 8 end to end, in small versions, against the real kernel and
//! engines: schema of what they write, sane values, and nothing left behind.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;

/// Runs probe with `--results DIR -q` appended, checks it succeeded and left nothing
/// behind, and returns its output.
fn run_ok(args: &[&str], results: &Path) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--results", results.to_str().unwrap(), "-q"]);
    let child = Command::new(probe_bin()).args(&all).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "probe {} failed: {}", all.join(" "), String::from_utf8_lossy(&o.stderr));
    assert_nothing_left(pid);
    o
}

/// The one run folder `latest` points at, and a file in it.
fn result_file(results: &Path, name: &str) -> String {
    std::fs::read_to_string(results.join("latest").join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn json(results: &Path, name: &str) -> serde_json::Value {
    serde_json::from_str(&result_file(results, name)).unwrap()
}

fn engines() -> Vec<&'static str> {
    let mut v = Vec::new();
    if require_engine("docker") {
        v.push("docker");
    }
    if require_engine("podman") {
        v.push("podman");
    }
    v
}

fn rootless_podman(args: &[&str]) -> String {
    let user = std::fs::read_to_string("/etc/probe/rootless-user").map(|s| s.trim().to_string()).unwrap_or_else(|_| "probe-rootless".into());
    let out = Command::new("su")
        .args([&user, "-s", "/bin/sh", "-c", &format!("cd / && XDG_RUNTIME_DIR=/run/user/$(id -u) podman {}", args.join(" "))])
        .output()
        .expect("su");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Nothing the probe process `pid` started is left: no container named `probe-<pid>-…` in
/// any engine (other runs on the same host have other pids), no orphaned `probe run` of an
/// idle container, no `probe-<pid>-cpu` cgroup.
fn assert_nothing_left(pid: u32) {
    let prefix = format!("probe-{pid}-");
    let filter = ["ps", "-aq", "--filter", "label=io.github.probe.owner=probe", "--filter"];
    let name = format!("name={prefix}");
    for engine in ["docker", "podman"] {
        if succeeds(engine, &["info"]) {
            let out = Command::new(engine).args(filter).arg(&name).output().unwrap();
            assert!(String::from_utf8_lossy(&out.stdout).trim().is_empty(), "{engine} containers left: {}", String::from_utf8_lossy(&out.stdout));
        }
    }
    if succeeds("podman", &["info"]) {
        let mut args = filter.to_vec();
        args.push(&name);
        let left = rootless_podman(&args);
        assert!(left.trim().is_empty(), "rootless podman containers left: {left}");
    }
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmd) = std::fs::read(p.path().join("cmdline")) else { continue };
        let stat = std::fs::read_to_string(p.path().join("stat")).unwrap_or_default();
        let ppid = stat.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1)).unwrap_or("");
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        assert!(!(cmd.starts_with(probe_bin()) && cmd.contains(" run -- sleep 3600") && ppid == "1"), "orphaned `{cmd}` left");
    }
    for root in ["/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
        assert!(!Path::new(root).join(format!("{prefix}cpu")).exists(), "cgroup {root}/{prefix}cpu left");
    }
}

fn runtimes_with_native(extra: &[&str]) -> String {
    let mut v = vec!["native"];
    v.extend_from_slice(extra);
    v.join(",")
}

#[test]
fn memory_cgroup_per_container_is_exact_and_sane() {
    if !require_root() {
        return;
    }
    let mut rts = engines();
    if succeeds("podman", &["info"]) {
        rts.push("podman-rootless");
    }
    let t = TempDir::new("memcg");
    run_ok(&["memory", "--cgroup", "--counts", "0,1,2", "--runtimes", &runtimes_with_native(&rts)], &t.0);
    let csv = result_file(&t.0, "memory_cgroup.csv");
    assert!(csv.starts_with("runtime,metric,value\n"), "{csv}");
    let j = json(&t.0, "memory_cgroup.json");
    assert!(j["host"]["kernel"].is_string());
    for r in j["results"].as_array().unwrap() {
        let rt = r["runtime"].as_str().unwrap();
        assert_eq!(r["points"].as_array().unwrap().len(), 3, "{rt}");
        let fits = &r["fits"];
        // Exact per-container bytes from the cgroup, or PSS where there is none (rootless on v1).
        let per = if r["cgroup_na"].is_null() { &fits["cgroup"]["slope"] } else { &fits["container_pss"]["slope"] };
        let kb = per.as_f64().unwrap_or_else(|| panic!("{rt}: no slope in {fits}"));
        assert!(kb > 0.0 && kb < 64.0 * 1024.0, "{rt}: {kb} KB per container");
        assert!(csv.contains(&format!("{rt},kb_per_container,")), "{rt} row missing");
    }
}

#[test]
fn memory_free_rows_carry_the_noise() {
    if !require_root() {
        return;
    }
    let t = TempDir::new("mem");
    run_ok(&["memory", "--counts", "1,2", "--runtimes", "native", "--settle", "200", "--noise-reads", "3"], &t.0);
    let csv = result_file(&t.0, "memory.csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "runtime,metric,value");
    assert!(lines[1].starts_with("baseline,used_mb,"), "{csv}");
    for needle in ["noise,sd_mb,", "native,1_containers_mb,", "native,2_overhead_mb,", "native,2_below_noise,"] {
        assert!(csv.contains(needle), "{needle} missing: {csv}");
    }
}

#[test]
fn cpu_run_separates_wall_and_cpu() {
    if !require_root() {
        return;
    }
    let rts = runtimes_with_native(&engines());
    let t = TempDir::new("cpu");
    run_ok(&["cpu", "--count", "10000", "--reps", "2", "--runtimes", &format!("bare,{rts}")], &t.0);
    let csv = result_file(&t.0, "cpu.csv");
    assert!(csv.starts_with("runtime,metric,value\nbare,cpu_seconds,"), "{csv}");
    let j = json(&t.0, "cpu.json");
    for r in j["results"].as_array().unwrap() {
        let rt = r["runtime"].as_str().unwrap();
        for rep in r["reps"].as_array().unwrap() {
            let wall = rep["wall_ms"].as_f64().unwrap();
            let cpu = rep["cpu_ms"].as_f64().unwrap_or_else(|| panic!("{rt}: no cpu_ms: {r}"));
            assert!(cpu > 0.0 && cpu <= wall * 2.0 + 5.0, "{rt}: cpu {cpu} ms for wall {wall} ms");
        }
    }
}

#[test]
fn cpu_exec_enters_running_containers() {
    if !require_root() {
        return;
    }
    let rts = runtimes_with_native(&engines());
    let t = TempDir::new("cpuexec");
    let o = run_ok(&["cpu", "--exec", "--count", "10000", "--reps", "2", "--warmup", "0", "--runtimes", &format!("bare,{rts}")], &t.0);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("noise band") && table.contains("Wall time:"), "{table}");
    let j = json(&t.0, "cpu_exec.json");
    let results = j["results"].as_array().unwrap();
    assert_eq!(results.len(), rts.split(',').count() + 1);
    for r in results {
        assert_eq!(r["reps"].as_array().unwrap().len(), 2);
        assert!(r["cpu_source"].is_string(), "{r}");
    }
}

#[test]
fn scale_writes_the_chapter_schema_and_cleans_up() {
    if !require_root() {
        return;
    }
    let t = TempDir::new("scale");
    let rts = runtimes_with_native(&engines());
    run_ok(&["scale", "--counts", "2,3", "--runtimes", &rts], &t.0);
    let csv = result_file(&t.0, "scale.csv");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("runtime,count,time_seconds,memory_mb"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 2 * rts.split(',').count(), "{csv}");
    for r in rows {
        let (count, secs, mb): (f64, f64, f64) = (r[1].parse().unwrap(), r[2].parse().unwrap(), r[3].parse().unwrap());
        assert!(secs > 0.0, "{r:?}");
        assert!(mb / count > 0.0 && mb / count < 64.0, "{r:?}: MB per container");
    }
}

#[test]
fn scale_refuses_counts_above_the_limit() {
    let o = probe(&["scale", "--runtimes", "docker", "--counts", "501"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("500") && err.contains("native"), "{err}");
}

#[test]
fn ctrl_c_removes_every_container_started() {
    if !require_root() {
        return;
    }
    use std::os::unix::process::CommandExt;
    let mut rts = engines();
    rts.push("native");
    let t = TempDir::new("ctrlc");
    // Its own process group, like a shell job: SIGINT to the group is what Ctrl-C sends.
    let child = Command::new(probe_bin())
        .args(["scale", "--counts", "40", "--runtimes", &rts.join(","), "-q", "--results", t.0.to_str().unwrap()])
        .process_group(0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(4));
    // SAFETY: kill(2) on the group we just created.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) };
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("interrupted"), "{err}");
    assert_nothing_left(pid);
}

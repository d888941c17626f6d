//! `probe cleanup` removes what a dead probe left — and nothing else.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// A pid no process has right now: the owner of our simulated leftovers is "dead".
fn dead_pid() -> u32 {
    (400_000..4_000_000).find(|p| !Path::new(&format!("/proc/{p}")).exists()).unwrap()
}

fn sh(cmd: &str, args: &[&str]) -> String {
    let o = Command::new(cmd).args(args).output().unwrap();
    assert!(o.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn cleanup_removes_a_dead_runs_leftovers_and_nothing_else() {
    if !require_engine("docker") {
        return;
    }
    let pid = dead_pid();
    let name = format!("probe-{pid}-docker-1");
    let keep = format!("keep-{pid}");
    for n in [&name, &keep] {
        sh("docker", &["run", "-d", "--network", "none", "--label", "io.github.probe.owner=probe", "--name", n, "probe-test:latest", "sleep", "300"]);
    }
    // A container dir with a mount inside, as a killed native run leaves it.
    let dir = Path::new("/var/lib/probe/containers").join(format!("probe-{pid}-1"));
    let merged = dir.join("merged");
    std::fs::create_dir_all(&merged).unwrap();
    sh("mount", &["-t", "tmpfs", "probe-test", merged.to_str().unwrap()]);
    let keep_dir = Path::new("/var/lib/probe/containers").join(format!("keep-{pid}"));
    std::fs::create_dir_all(&keep_dir).unwrap();
    // A cgroup with a process still in it.
    let layout = sh(probe_bin(), &["doctor", "--json"]);
    assert!(layout.contains("layout"));
    let cg_root = if Path::new("/sys/fs/cgroup/memory").is_dir() { "/sys/fs/cgroup/memory" } else { "/sys/fs/cgroup" };
    let cg = Path::new(cg_root).join(format!("probe-{pid}-1"));
    std::fs::create_dir(&cg).unwrap();
    let mut sleeper = Command::new("sleep").arg("300").spawn().unwrap();
    std::fs::write(cg.join("cgroup.procs"), sleeper.id().to_string()).unwrap();

    let out = Command::new(probe_bin()).args(["cleanup", "--json"]).output().unwrap();
    let _ = sleeper.wait();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let keep_alive = sh("docker", &["ps", "-aq", "--filter", &format!("name=^{keep}$")]);
    let _ = Command::new("docker").args(["rm", "-f", &keep]).output();
    let _ = std::fs::remove_dir(&keep_dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sh("docker", &["ps", "-aq", "--filter", &format!("name={name}")]), "", "{report}");
    assert!(!keep_alive.is_empty(), "a container not named like ours was removed");
    assert!(!std::fs::read_to_string("/proc/self/mountinfo").unwrap().contains(merged.to_str().unwrap()), "mount left");
    assert!(!dir.exists(), "container dir left");
    assert!(!cg.exists(), "cgroup left");
    assert!(report["cgroups"].as_array().unwrap().len() >= 1);
}

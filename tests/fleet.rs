//! The fleet playbook (deploy/ansible/fleet.yml through scripts/fleet.sh) end to end, for real:
//! this machine over `ansible_connection=local` and the Debian 13 guest of
//! scripts/second-host.sh over ssh on a 127.0.0.1 port that qemu forwards (`-nic user` with
//! `restrict=on`: the guest reaches nothing else, so no traffic leaves loopback).
//! Needs root, docker, qemu and the guest image (built and cached by second-host.sh if missing).
//! The guest is the one on PROBE_GUEST_SSH_PORT when that is set (scripts/second-host-ci.sh
//! boots it once for its own subset and this test); otherwise the test boots one and powers
//! it off. Not part of `cargo test` (Cargo.toml: test = false): run it with
//! `bash scripts/second-host-ci.sh` or `cargo test --test fleet`.
//! The guest is ~15x slower under TCG: its command is the smallest that still records engine
//! versions and phases.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};

use common::TempDir;

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const KEY: &str = "/var/cache/probe-second-host/ssh/id_ed25519";

fn second_host(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(format!("{REPO}/scripts/second-host.sh"))
        .args(args)
        .output()
        .expect("run scripts/second-host.sh")
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn note_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Ctrl-C (or SIGTERM) would end the test without unwinding, and a guest it booted would run
/// on: the signal is noted instead, the scripts it runs (which get it too) end, and the test
/// fails there, through Guest's drop. A handler, not SIG_IGN: children get the default back.
fn unwind_on_interrupt() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, note_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t) };
    }
}

fn check_interrupt() {
    assert!(!INTERRUPTED.load(Ordering::SeqCst), "interrupted by a signal");
}

/// The guest under test: borrowed (its caller powers it off) or booted here, then powered
/// off when the test ends, also when it fails.
struct Guest {
    port: u16,
    owned: bool,
}

impl Guest {
    fn get() -> Guest {
        if let Ok(p) = std::env::var("PROBE_GUEST_SSH_PORT") {
            let port = p.parse().unwrap_or_else(|_| panic!("PROBE_GUEST_SSH_PORT={p}: not a port number"));
            return Guest { port, owned: false };
        }
        let g = Guest { port: free_port(), owned: true };
        let o = second_host(&["ssh-up", "--ssh-port", &g.port.to_string()]);
        check_interrupt();
        assert!(o.status.success(), "second-host.sh ssh-up failed:\n{}", String::from_utf8_lossy(&o.stderr));
        g
    }

    /// Stops answering, and returns the port Ansible should now find no guest on: the booted
    /// guest is powered off; a borrowed one stays up for its caller, so the stopped guest is
    /// a loopback port nothing listens on, which is what Ansible meets either way (ssh's
    /// connection is refused).
    fn stop(&mut self) -> u16 {
        if !self.owned {
            return free_port();
        }
        let o = second_host(&["ssh-down", "--ssh-port", &self.port.to_string()]);
        check_interrupt();
        assert!(o.status.success(), "second-host.sh ssh-down failed:\n{}", String::from_utf8_lossy(&o.stderr));
        self.owned = false;
        self.port
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        if self.owned {
            let _ = second_host(&["ssh-down", "--ssh-port", &self.port.to_string()]);
        }
    }
}

/// The playbook's work folders on this machine.
const LOCAL_WORK: [&str; 2] = ["/var/tmp/probe-fleet", "/var/tmp/probe-fleet-crun"];

/// Owns LOCAL_WORK for the test: when it ends, also failed or interrupted, the runs the
/// playbook started there in the background (Ansible `async`: they outlive an interrupted
/// playbook) are stopped and the folders removed.
struct LocalWork;

impl LocalWork {
    fn claim() -> LocalWork {
        for w in LOCAL_WORK {
            assert!(!Path::new(w).exists(), "{w} exists before the test (an earlier run's?): remove it");
        }
        LocalWork
    }

    /// Processes working in LOCAL_WORK: the async job's shell and the probe it runs.
    fn pids() -> Vec<i32> {
        let in_work = |pid: &str| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|c| LOCAL_WORK.iter().any(|w| c.starts_with(w)))
        };
        let entries = std::fs::read_dir("/proc").into_iter().flatten().flatten();
        entries.filter_map(|e| e.file_name().to_str().filter(|p| in_work(p)).and_then(|p| p.parse().ok())).collect()
    }
}

impl Drop for LocalWork {
    fn drop(&mut self) {
        for pid in Self::pids() {
            // SIGINT: probe removes its containers before it exits.
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGINT) };
        }
        for _ in 0..120 {
            if Self::pids().is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        for w in LOCAL_WORK {
            let _ = std::fs::remove_dir_all(w);
        }
    }
}

/// A loopback port nothing listens on now (the kernel's pick, released again).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn fleet(inventory: &Path, fleet_dir: &Path) -> Output {
    let o = Command::new("bash")
        .arg(format!("{REPO}/scripts/fleet.sh"))
        .args(["-i", inventory.to_str().unwrap(), "--fleet-dir", fleet_dir.to_str().unwrap()])
        // The suite's own debug build: compiling a release one would cost CI minutes.
        .args(["-e", "probe_profile=debug"])
        .output()
        .expect("run scripts/fleet.sh");
    check_interrupt();
    o
}

/// An inventory of this machine and the guest on `port`, plus `extra` hosts.
fn write_inventory(path: &Path, port: u16, extra: &str) -> PathBuf {
    // localhost: the suite built the test image with this very build; `probe image build` with
    // the stripped copy the playbook ships would replace it under the tests that run after.
    let hosts = format!(
        "[fleet]\n\
         localhost ansible_connection=local probe_image_build=false probe_command=\"startup --breakdown --runtimes native,runc,docker --reps 3\"\n\
         guest ansible_host=127.0.0.1 ansible_port={port} ansible_user=root ansible_ssh_private_key_file={KEY} \
         ansible_python_interpreter=/usr/bin/python3 probe_command=\"startup --breakdown --runtimes native,runc,crun,docker --reps 2\"\n{extra}"
    );
    let vars = "[fleet:vars]\nansible_ssh_common_args=-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null\n";
    std::fs::write(path, format!("{hosts}{vars}")).unwrap();
    path.to_path_buf()
}

fn text(o: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn status(fleet_dir: &Path, host: &str) -> serde_json::Value {
    let p = fleet_dir.join(host).join("status.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

/// The newest report folder's fleet.md and fleet.html.
fn newest_report(fleet_dir: &Path) -> (PathBuf, String, String) {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fleet_dir.join("reports")).unwrap().flatten().map(|e| e.path()).collect();
    dirs.sort();
    let d = dirs.pop().expect("a report folder");
    let md = std::fs::read_to_string(d.join("fleet.md")).unwrap();
    let html = std::fs::read_to_string(d.join("fleet.html")).unwrap();
    (d, md, html)
}

/// The row of the compare's host table that starts with `what`.
fn row<'a>(md: &'a str, what: &str) -> &'a str {
    md.lines().find(|l| l.starts_with(&format!("| {what} |"))).unwrap_or_else(|| panic!("no `{what}` row in:\n{md}"))
}

#[test]
fn fleet_of_this_machine_and_the_guest_then_the_guest_unreachable() {
    if !common::require_engine("docker")
        || !common::require(common::succeeds("qemu-system-x86_64", &["--version"]), "qemu-system-x86_64 missing: see docs/second-host.md")
    {
        return;
    }
    unwind_on_interrupt();
    let t = TempDir::new("fleet");
    let _work = LocalWork::claim();
    let mut guest = Guest::get();
    let both = t.0.join("both");
    let inventory = write_inventory(&t.0.join("inventory.ini"), guest.port, "");
    let o = fleet(&inventory, &both);
    assert!(o.status.success(), "fleet.sh over both hosts failed:\n{}", text(&o));
    let mut runs = Vec::new();
    for host in ["localhost", "guest"] {
        let st = status(&both, host);
        assert_eq!(st["state"], "ok", "{host}: {st}");
        let run = both.join(host).join(st["run"].as_str().unwrap());
        assert!(run.join("startup.json").is_file(), "{host}: no startup.json in {}", run.display());
        runs.push(run);
    }
    assert!(!Path::new(LOCAL_WORK[0]).exists(), "the work folder stayed on this machine");
    let (_, md, html) = newest_report(&both);
    // The host differences: cgroup layout, engine versions (this VM: docker 20.10, runc 1.1.5,
    // the guest: docker 26.1, runc 1.1.15, crun 1.21).
    let cg = row(&md, "cgroup layout");
    assert!(cg.contains("hybrid") && cg.contains("v2"), "{cg}");
    let docker = row(&md, "docker version");
    assert!(docker.contains("20.10") && docker.contains("26.1"), "{docker}");
    assert!(row(&md, "runc version").contains("1.1.15"), "{md}");
    assert!(row(&md, "crun version").contains("1.21"), "{md}");
    assert!(row(&md, "guest").contains("crun 1.21"), "{md}");
    // Per-host rows with the layout, and the fault named with probe's reason.
    assert!(row(&md, "localhost").contains("hybrid"), "{md}");
    assert!(row(&md, "guest").contains("v2"), "{md}");
    // Phases of the breakdown, compared with a verdict.
    assert!(md.contains("## Comparison of the hosts (probe compare)"), "{md}");
    assert!(md.contains("docker") && md.contains("namespaces") && md.contains("slower"), "{md}");
    assert!(html.contains("<h1>probe fleet report</h1>") && html.contains("hybrid") && html.contains("<svg"), "fleet.html");
    for run in &runs {
        assert!(run.join("report.en.md").is_file(), "no host report in {}", run.display());
    }

    let stopped = guest.stop();
    // Re-running over the same fleet folder fetches only what is missing: nothing, so the
    // stopped guest is not even contacted, and a new report is written.
    let inventory = write_inventory(&t.0.join("inventory-stopped.ini"), stopped, "");
    let o = fleet(&inventory, &both);
    assert!(o.status.success(), "re-run over complete results failed:\n{}", text(&o));
    for (host, run) in ["localhost", "guest"].iter().zip(&runs) {
        assert_eq!(both.join(host).join(status(&both, host)["run"].as_str().unwrap()), *run, "{host} ran again");
    }
    assert_eq!(std::fs::read_dir(both.join("reports")).unwrap().count(), 2, "one new report per run");

    // A new fleet folder with the guest stopped and a run that fails: each reported with its
    // reason, and this machine still measured.
    let alone = t.0.join("alone");
    // The same, plus a run that fails: crun refuses this hybrid host, and probe with it.
    let with_failing = write_inventory(
        &t.0.join("inventory-failing.ini"),
        stopped,
        "crun-here ansible_connection=local probe_image_build=false probe_remote_dir=/var/tmp/probe-fleet-crun probe_command=\"startup --runtimes crun --reps 1\"\n",
    );
    let o = fleet(&with_failing, &alone);
    assert_eq!(o.status.code(), Some(2), "a host without results is exit 2:\n{}", text(&o));
    let st = status(&alone, "guest");
    assert_eq!(st["state"], "unreachable", "{st}");
    // Ansible's words vary with how ssh fails (refused, broken pipe, timeout); they name ssh.
    assert!(st["reason"].as_str().unwrap().contains("ssh"), "the reason says what failed: {st}");
    assert_eq!(status(&alone, "localhost")["state"], "ok");
    let st = status(&alone, "crun-here");
    assert_eq!(st["state"], "failed", "{st}");
    assert!(st["reason"].as_str().unwrap().contains("cgroup v2-only"), "probe's own reason: {st}");
    for work in LOCAL_WORK {
        assert!(!Path::new(work).exists(), "{work} stayed on this machine");
    }
    let (_, md, html) = newest_report(&alone);
    assert!(md.contains("- **guest: unreachable**"), "{md}");
    assert!(md.contains("- **crun-here: failed**"), "{md}");
    assert!(row(&md, "localhost").contains("hybrid"), "{md}");
    assert!(md.contains("Not made: `probe compare` needs the run folders of two hosts, and 1 came back (localhost)"), "{md}");
    assert!(html.contains("guest: unreachable"), "fleet.html");
}

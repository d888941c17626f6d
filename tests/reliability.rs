//! Faults and hostile input: killed runs leave nothing `probe cleanup` cannot remove, signals
//! unwind, concurrent runs don't collide, and probe refuses to follow symlinks or shells.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn labelled(engine: &str) -> usize {
    Command::new(engine)
        .args(["ps", "-aq", "--filter", "label=io.github.probe.owner=probe"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
        .unwrap_or(0)
}

fn leftovers() -> Vec<String> {
    leftovers_of(&[])
}

fn wait_until(what: &str, secs: u64, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(secs), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn spawn_probe(args: &[&str]) -> Child {
    Command::new(probe_bin())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, sig) };
}

#[test]
fn kill_9_during_scale_then_cleanup_leaves_nothing() {
    if !require_engine("docker") {
        return;
    }
    let t = TempDir::new("kill9");
    let mut p = spawn_probe(&["scale", "--runtimes", "docker", "--counts", "50", "-q", "--results", t.s()]);
    wait_until("scale to start containers", 60, || labelled("docker") >= 3);
    signal(&p, libc::SIGKILL);
    let _ = p.wait();
    assert!(labelled("docker") >= 1, "a kill -9 should leave the fleet for cleanup to find");
    let said = probe_cleanup();
    assert_eq!(labelled("docker"), 0, "cleanup said:\n{said}");
    assert_eq!(leftovers(), Vec::<String>::new());
}

#[test]
fn sigint_and_sigterm_during_native_reps_unwind_everything() {
    if !require_root() {
        return;
    }
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let t = TempDir::new("sig");
        let mut p = spawn_probe(&["startup", "--runtimes", "native", "--reps", "100000", "-q", "--results", t.s()]);
        std::thread::sleep(Duration::from_millis(1500));
        signal(&p, sig);
        let status = p.wait().unwrap();
        assert!(!status.success(), "an interrupted run must not report success");
        assert_eq!(leftovers_of(&[p.id()]), Vec::<String>::new(), "after signal {sig}, without cleanup");
        let written = std::fs::read_dir(&t.0).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name() != "latest").count();
        assert_eq!(written, 0, "an interrupted startup writes no half results");
    }
}

#[test]
fn kill_9_during_native_reps_is_swept_by_the_next_run() {
    if !require_root() {
        return;
    }
    let t = TempDir::new("kill9n");
    let mut killed = Vec::new();
    // Several kill points, so some land mid-start (rootfs mounted, cgroup made, child alive).
    for delay_ms in [300u64, 777, 1234] {
        let mut p = spawn_probe(&["startup", "--runtimes", "native", "--reps", "100000", "-q", "--results", t.s()]);
        std::thread::sleep(Duration::from_millis(delay_ms));
        signal(&p, libc::SIGKILL);
        let _ = p.wait();
        killed.push(p.id());
    }
    // No explicit `probe cleanup`: the next normal run removes a dead run's leftovers.
    let o = probe(&["startup", "--runtimes", "bare", "--reps", "1", "-q", "--results", t.s()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(leftovers_of(&killed), Vec::<String>::new());
}

#[test]
fn two_concurrent_runs_do_not_collide() {
    if !require_engine("docker") {
        return;
    }
    let t = TempDir::new("concurrent");
    let args = ["startup", "--runtimes", "native,docker", "--reps", "3", "--warmup", "0", "-q", "--results", t.s()];
    let a = spawn_probe(&args);
    let b = spawn_probe(&args);
    for p in [a, b] {
        let o = p.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let runs: Vec<_> = std::fs::read_dir(&t.0).unwrap().flatten().filter(|e| e.file_name() != "latest").collect();
    assert_eq!(runs.len(), 2, "one run folder each");
    for r in runs {
        let csv = std::fs::read_to_string(r.path().join("startup.csv")).unwrap();
        assert_eq!(csv.lines().count(), 1 + 6, "{csv}");
    }
    assert_eq!(labelled("docker"), 0);
    assert_eq!(leftovers(), Vec::<String>::new());
}

#[test]
fn a_symlinked_results_path_is_refused() {
    let t = TempDir::new("symlink");
    let elsewhere = t.0.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let link = t.0.join("results");
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
    let o = Command::new(probe_bin())
        .args(["startup", "--runtimes", "bare", "--reps", "1", "--results", link.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("symlink"));
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}

#[test]
fn shell_metacharacters_are_never_interpreted() {
    if !require_engine("docker") {
        return;
    }
    let t = TempDir::new("meta");
    let canary = t.0.join("pwned");
    let evil = format!("$(touch {0}); `touch {0}`; touch {0} | true", canary.display());
    for rt in ["bare", "native", "docker"] {
        let o = Command::new(probe_bin())
            .args(["startup", "--runtimes", rt, "--reps", "1", "--warmup", "0", "-q", "--results", t.s(), "--", "echo", &evil])
            .output()
            .unwrap();
        assert!(o.status.success(), "{rt}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(!canary.exists(), "{rt} ran the argument through a shell");
    }
}

#[test]
fn a_rootfs_whose_symlinks_point_out_cannot_reach_the_host() {
    if !require_root() {
        return;
    }
    let t = TempDir::new("evilroot");
    let outside = t.0.join("outside");
    std::fs::create_dir(&outside).unwrap();
    let root = t.0.join("rootfs");
    let image = PathBuf::from("/var/lib/probe/image/rootfs");
    assert!(image.join("bin/busybox").exists(), "test image missing: run probe image build");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy(image.join("bin/busybox"), root.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    // Every directory the runtime mounts on or writes into points out of the rootfs.
    for d in ["proc", "dev", "sys", "tmp", "run", "etc"] {
        std::os::unix::fs::symlink(&outside, root.join(d)).unwrap();
    }
    let o = Command::new(probe_bin())
        .args(["run", "--rootfs", root.to_str().unwrap(), "--", "/bin/sh", "-c", "echo x > /tmp/f; true"])
        .output()
        .unwrap();
    // The container must start: only then have the mounts and writes through those symlinks
    // been attempted (the write itself fails inside with ELOOP, hence `; true`).
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "the container wrote through a symlink onto the host");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(outside.to_str().unwrap()), "a mount landed outside the rootfs");
    assert_eq!(leftovers(), Vec::<String>::new());
}

#[test]
fn results_hold_no_setuid_files_or_world_writable_dirs() {
    let t = TempDir::new("modes");
    let o = probe(&["startup", "--runtimes", "bare", "--reps", "2", "-q", "--results", t.s()]);
    assert!(o.status.success());
    fn walk(p: &Path) {
        for e in std::fs::read_dir(p).unwrap().flatten() {
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            let mode = std::os::unix::fs::PermissionsExt::mode(&m.permissions());
            assert_eq!(mode & 0o6000, 0, "setuid/setgid {}", e.path().display());
            if m.is_dir() {
                assert_eq!(mode & 0o002, 0, "world-writable {}", e.path().display());
                walk(&e.path());
            }
        }
    }
    walk(&t.0);
}

/// Ctrl-C in the middle of each experiment that holds containers or files: it stops, says it
/// was interrupted, and leaves nothing — no engine container, no mount, no cgroup, no temp file.
#[test]
fn sigint_during_each_experiment_leaves_nothing() {
    if !require_engine("docker") {
        return;
    }
    let t = TempDir::new("sigint-exp");
    let io_dir = t.sub("io");
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("memory --cgroup", vec!["memory", "--cgroup", "--runtimes", "docker,native", "--counts", "0,3,5"]),
        ("memory", vec!["memory", "--runtimes", "docker", "--counts", "5,10"]),
        ("cpu --exec", vec!["cpu", "--exec", "--runtimes", "bare,docker,native", "--count", "5000000"]),
        ("cpu", vec!["cpu", "--runtimes", "docker,native", "--count", "5000000"]),
        ("io", vec!["io", "--modes", "bare,docker-volume,docker-overlay", "--size", "64", "--reps", "5", "--dir", io_dir.to_str().unwrap()]),
        ("scale", vec!["scale", "--runtimes", "docker,native", "--counts", "20"]),
    ];
    for (name, mut args) in cases {
        args.extend(["-q", "--results", t.s()]);
        let mut p = spawn_probe(&args);
        // Let it get into the middle: containers started or the file half-written.
        std::thread::sleep(Duration::from_millis(2500));
        signal(&p, libc::SIGINT);
        let start = Instant::now();
        let status = p.wait().unwrap();
        assert!(start.elapsed() < Duration::from_secs(60), "{name}: took too long to stop");
        assert!(!status.success(), "{name}: an interrupted run must not report success");
        assert_eq!(labelled("docker"), 0, "{name}: docker containers left");
        assert_eq!(leftovers_of(&[p.id()]), Vec::<String>::new(), "{name}: leftovers");
        let files: Vec<_> = std::fs::read_dir(&io_dir).unwrap().flatten().map(|e| e.path()).collect();
        assert!(files.is_empty(), "{name}: files left in the io dir: {files:?}");
    }
}

/// Starts dockerd again the way scripts/setup-engines.sh does (systemd's unit, else detached
/// with its log appended) and waits for `docker info`. Runs on drop too: other people's tests
/// share this daemon, so it must come back even when an assertion fails.
struct DockerdRestarter;

impl DockerdRestarter {
    fn restart(&self) -> bool {
        if succeeds("docker", &["info"]) {
            return true;
        }
        // A SIGKILLed dockerd leaves /var/run/docker.pid, and while its pid is an unreaped
        // zombie (pid 1 here reaps late) a new dockerd refuses to start ("pid file found").
        // That daemon is dead: its pid file goes.
        let pid = std::fs::read_to_string("/var/run/docker.pid").unwrap_or_default();
        let state = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
        if state.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')) {
            let _ = std::fs::remove_file("/var/run/docker.pid");
        }
        // The killed daemon's containerd outlives it, and a new dockerd that finds it running
        // ("libcontainerd: containerd is still running") retried its socket for one to two
        // minutes before starting one of its own (seen twice in /var/log/probe-dockerd.log).
        // That containerd belonged to the dead daemon: it goes, with its pid file.
        let cpid = "/var/run/docker/containerd/containerd.pid";
        if let Some(pid) = std::fs::read_to_string(cpid).ok().and_then(|p| p.trim().parse::<i32>().ok()) {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "containerd" {
                // SAFETY: kill(2) of the dead daemon's own containerd, named by its pid file.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                let gone = Instant::now();
                while Path::new(&format!("/proc/{pid}/comm")).exists() && gone.elapsed() < Duration::from_secs(10) {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            let _ = std::fs::remove_file(cpid);
        }
        if Path::new("/run/systemd/system").is_dir() {
            let _ = Command::new("systemctl").args(["start", "docker"]).status();
        } else {
            let dockerd = ["/usr/sbin/dockerd", "/usr/bin/dockerd"].into_iter().find(|p| Path::new(p).exists()).expect("dockerd binary");
            let log = std::fs::OpenOptions::new().create(true).append(true).open("/var/log/probe-dockerd.log").unwrap();
            Command::new("setsid")
                .args(["-f", "nohup", dockerd])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .status()
                .unwrap();
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(120) {
            if succeeds("docker", &["info"]) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        false
    }
}

impl Drop for DockerdRestarter {
    fn drop(&mut self) {
        self.restart();
    }
}

/// The `docker run` / `podman run` children of `pid` right now (the rep in flight; the engine
/// queries made when the run opens are not reps).
fn engine_runs(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|c| std::fs::read(format!("/proc/{c}/cmdline")).is_ok_and(|a| a.split(|b| *b == 0).nth(1) == Some(b"run")))
        .collect()
}

/// Waits until `n` reps of the engine run `p` started have finished (the next one has begun).
fn wait_for_reps(p: &Child, n: usize) {
    let seen = std::cell::RefCell::new(std::collections::BTreeSet::new());
    wait_until(&format!("{n} reps to finish"), 120, || {
        seen.borrow_mut().extend(engine_runs(p.id()));
        seen.borrow().len() > n
    });
}

/// `p`'s exit status and everything it printed on stderr, once it ends (within 2 minutes).
fn exit_and_stderr(p: &mut Child) -> (std::process::ExitStatus, String) {
    let start = Instant::now();
    let status = loop {
        if let Some(s) = p.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "probe did not stop after its engine failed");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(p.stderr.as_mut().unwrap(), &mut err).unwrap();
    (status, err)
}

#[test]
fn dockerd_killed_mid_run_is_named_and_the_finished_reps_are_kept() {
    if !require_engine("docker") {
        return;
    }
    let t = TempDir::new("dockerd-dies");
    let mut p = spawn_probe(&["startup", "--runtimes", "docker", "--reps", "30", "--warmup", "0", "-q", "--results", t.s()]);
    wait_for_reps(&p, 3);
    let restarter = DockerdRestarter;
    let dockerd: i32 = std::fs::read_to_string("/var/run/docker.pid").unwrap().trim().parse().unwrap();
    // SAFETY: kill(2) of the daemon this test is about; the restarter brings it back.
    assert_eq!(unsafe { libc::kill(dockerd, libc::SIGKILL) }, 0);
    let (status, err) = exit_and_stderr(&mut p);
    assert!(restarter.restart(), "dockerd did not come back: see /var/log/probe-dockerd.log");
    assert!(succeeds("docker", &["info"]), "docker info after the restart");

    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("docker: the daemon stopped answering during this rep; it answered before"), "{err}");
    let said = err.split("The engine said: ").nth(1).unwrap_or_default();
    assert!(!said.starts_with("See '") && !said.starts_with("Run '") && !said.is_empty(), "the engine's own line, not its help pointer: {err}");
    assert!(err.contains("marked incomplete"), "{err}");

    let run = t.0.join("latest");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("startup.json")).unwrap()).unwrap();
    let stopped = &json["report"]["incomplete"];
    assert_eq!(stopped["runtime"], "docker", "{json}");
    let rep = stopped["rep"].as_u64().unwrap();
    assert!(rep >= 4 && err.contains(&format!("docker rep {rep} (reps 1–{} finished and are kept)", rep - 1)), "rep {rep}: {err}");
    assert!(!err.contains("docker: docker:"), "{err}");
    let kept = json["report"]["results"][0]["samples"].as_array().map_or(0, Vec::len) as u64;
    assert_eq!(kept, rep - 1, "every finished rep is kept");
    let csv = std::fs::read_to_string(run.join("startup.csv")).unwrap();
    assert_eq!(csv.lines().filter(|l| l.starts_with("docker,startup_ms,")).count() as u64, rep - 1, "{csv}");
    assert!(csv.ends_with(&format!("docker,incomplete_at_rep,{rep}\n")), "{csv}");

    // A container the daemon was starting when it died may be left: cleanup must find it.
    let said = probe_cleanup();
    assert_eq!(labelled("docker"), 0, "cleanup said:\n{said}");
}

/// podman failing mid-run, for this run only: its containers.conf (CONTAINERS_CONF, read by
/// every podman the run starts) is switched after a few reps to name an OCI runtime that does
/// not exist, so `podman run` and `podman info` both fail from then on, as with a broken store
/// or runtime. Nobody else's podman is touched.
#[test]
fn podman_failing_mid_run_is_named_and_the_finished_reps_are_kept() {
    if !require_engine("podman") {
        return;
    }
    let t = TempDir::new("podman-breaks");
    let good = std::fs::read_to_string("/etc/containers/containers.conf.d/probe.conf").unwrap_or_default();
    let conf = t.0.join("containers.conf");
    std::fs::write(&conf, &good).unwrap();
    let mut p = Command::new(probe_bin())
        .args(["startup", "--runtimes", "podman", "--reps", "30", "--warmup", "0", "-q", "--results", t.s()])
        .env("CONTAINERS_CONF", &conf)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_reps(&p, 3);
    let broken = match good.lines().any(|l| l.starts_with("runtime =")) {
        true => good.lines().map(|l| if l.starts_with("runtime =") { "runtime = \"probe-test-no-such-runtime\"" } else { l }).collect::<Vec<_>>().join("\n"),
        false => format!("[engine]\nruntime = \"probe-test-no-such-runtime\"\n{good}"),
    };
    // Renamed into place: a podman starting now reads the old file or the new one, whole.
    std::fs::write(t.0.join("broken.conf"), broken).unwrap();
    std::fs::rename(t.0.join("broken.conf"), &conf).unwrap();
    let (status, err) = exit_and_stderr(&mut p);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("podman: podman stopped working during this rep (`podman info` now fails); it worked before"), "{err}");
    assert!(err.contains("The engine said: Error: "), "podman's own line: {err}");
    let run = t.0.join("latest");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("startup.json")).unwrap()).unwrap();
    let rep = json["report"]["incomplete"]["rep"].as_u64().unwrap();
    let kept = json["report"]["results"][0]["samples"].as_array().map_or(0, Vec::len) as u64;
    assert!(rep >= 4 && kept == rep - 1, "rep {rep}, kept {kept}: {err}");
    let csv = std::fs::read_to_string(run.join("startup.csv")).unwrap();
    assert!(csv.ends_with(&format!("podman,incomplete_at_rep,{rep}\n")), "{csv}");
    assert_eq!(labelled("podman"), 0, "no container left");
}

//! Native containers nested three deep with `--privileged`: `echo ok` comes out, the inner
//! levels' cgroups sit inside the outer container's, and nothing is left behind — also when
//! the outer container is killed while the inner ones run. Needs root.

mod common;
mod native_support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use native_support::{assert_clean, run, stderr, TestRootfs};

/// Arguments of `probe run` for `--privileged` around two more levels of `probe run --rootfs /
/// --storage bind --privileged` (overlayfs stacks only two deep), then `cmd`.
fn nested_args<'a>(root: &'a str, cmd: &[&'a str]) -> Vec<&'a str> {
    let inner = ["/bin/probe", "run", "--rootfs", "/", "--storage", "bind", "--privileged", "--"];
    let mut v = vec!["--privileged", "--rootfs", root, "--"];
    v.extend(inner);
    v.extend(inner);
    v.extend(cmd);
    v
}

#[test]
fn three_levels_run_echo_ok_and_leave_nothing() {
    if !common::require_root() {
        return;
    }
    let root = TestRootfs::with_probe("nested3");
    let (out, pid) = run(&nested_args(root.path(), &["echo", "ok"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
    assert_clean(pid, "three levels");
}

#[test]
fn inner_cgroups_nest_and_go_when_the_outer_container_is_killed() {
    if !common::require_root() {
        return;
    }
    let root = TestRootfs::with_probe("nestedkill");
    let mut child = Command::new(common::probe_bin())
        .arg("run")
        .args(nested_args(root.path(), &["sleep", "30"]))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Each level is pid 1 of its own pid namespace, so each inner level names its cgroup
    // probe-1-0, inside the one above it.
    let outer = Path::new("/sys/fs/cgroup/pids").join(format!("probe-{pid}-0"));
    let deepest = outer.join("probe-1-0/probe-1-0");
    let end = Instant::now() + Duration::from_secs(10);
    while !deepest.join("cgroup.procs").exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let level1 = std::fs::read_to_string(outer.join("cgroup.procs")).unwrap_or_default();
    let reached = deepest.exists();
    // SIGKILL the outer container's init (the level-1 probe): nobody inside can clean up,
    // so the host's probe must remove the inner levels' cgroups with its own.
    for p in level1.split_whitespace() {
        // SAFETY: kill(2) of a process in a cgroup we just read.
        unsafe { libc::kill(p.parse().unwrap(), libc::SIGKILL) };
    }
    let status = child.wait().unwrap();
    let err = {
        use std::io::Read;
        let mut s = String::new();
        child.stderr.take().unwrap().read_to_string(&mut s).unwrap();
        s
    };
    assert!(reached, "level 3 never made its cgroup {}: {err}", deepest.display());
    assert_eq!(status.code(), Some(137), "the killed init's status passes through: {err}");
    assert_clean(pid, "killed nested container");
}

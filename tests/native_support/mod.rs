//! What the native-runtime tests share: a throwaway rootfs, `probe run` with its pid, and the
//! check that a container left nothing behind.
#![allow(dead_code)]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::common;

/// A throwaway rootfs: busybox hard-linked (or copied) plus applet symlinks, removed on drop.
pub struct TestRootfs(PathBuf);

impl TestRootfs {
    pub fn new(tag: &str, with_mountpoints: bool) -> TestRootfs {
        let dir =
            std::env::temp_dir().join(format!("probe-test-rootfs-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        let host_bb = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("busybox is needed for the native tests: apt-get install busybox-static");
        link_or_copy(Path::new(host_bb), &dir.join("bin/busybox"));
        for applet in [
            "sh", "true", "false", "sleep", "echo", "cat", "hostname", "kill", "ls", "id",
        ] {
            symlink("busybox", dir.join("bin").join(applet)).unwrap();
        }
        if with_mountpoints {
            for d in ["proc", "dev", "sys", "tmp"] {
                std::fs::create_dir(dir.join(d)).unwrap();
            }
        }
        TestRootfs(dir)
    }

    /// With the probe binary under test at /bin/probe and its shared libraries at their host
    /// paths: a rootfs in which `probe run` works, for nesting.
    pub fn with_probe(tag: &str) -> TestRootfs {
        let root = TestRootfs::new(tag, true);
        link_or_copy(Path::new(common::probe_bin()), &root.0.join("bin/probe"));
        let ldd = Command::new("ldd").arg(common::probe_bin()).output().expect("ldd (libc-bin)");
        for lib in String::from_utf8_lossy(&ldd.stdout)
            .split_whitespace()
            .filter(|w| w.starts_with('/'))
        {
            let dst = root.0.join(lib.trim_start_matches('/'));
            std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
            // The file itself: /lib64/ld-linux-x86-64.so.2 is a symlink into a directory
            // the rootfs does not otherwise get.
            link_or_copy(&std::fs::canonicalize(lib).unwrap(), &dst);
        }
        root
    }

    pub fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

fn link_or_copy(src: &Path, dst: &Path) {
    if std::fs::hard_link(src, dst).is_err() {
        std::fs::copy(src, dst).unwrap();
    }
}

impl Drop for TestRootfs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `probe run ARGS`, stdin from /dev/null, output captured; with the pid of that probe.
pub fn run(args: &[&str]) -> (Output, u32) {
    let child = Command::new(common::probe_bin())
        .arg("run")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn probe");
    let pid = child.id();
    (child.wait_with_output().unwrap(), pid)
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Everything a container of probe process `pid` could leave behind: cgroup directories
/// (nested ones are inside them), per-container directories, mounts visible from here.
pub fn leftovers(pid: u32) -> Vec<String> {
    let prefix = format!("probe-{pid}-");
    let mut found = Vec::new();
    let mut dirs: Vec<PathBuf> = vec!["/var/lib/probe/containers".into(), "/sys/fs/cgroup".into()];
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        dirs.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    for d in dirs {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                found.push(e.path().display().to_string());
            }
        }
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    found.extend(
        mountinfo
            .lines()
            .filter(|l| l.contains(&prefix))
            .map(str::to_string),
    );
    found
}

pub fn assert_clean(pid: u32, what: &str) {
    let l = leftovers(pid);
    assert!(l.is_empty(), "{what}: left behind {l:#?}");
}

//! `probe run --volume`: a host directory or file inside the native container, read-write by
//! default, read-only with `:ro`, and nothing left behind. Needs root. (That fsync inside a
//! volume or an overlay-disk root reaches the disk is `probe io`'s job: tests/io.rs.)

mod common;
mod native_support;

use native_support::{assert_clean, run, stderr, TestRootfs};

/// A host directory for one test, removed on drop.
struct HostDir(std::path::PathBuf);

impl HostDir {
    fn new(tag: &str) -> HostDir {
        let d = std::env::temp_dir().join(format!("probe-test-volume-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir(&d).unwrap();
        HostDir(d)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for HostDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_write_in_a_volume_is_on_the_host_and_ro_refuses_it() {
    if !common::require_root() {
        return;
    }
    let root = TestRootfs::new("vol", true);
    let host = HostDir::new("rw");
    std::fs::write(host.0.join("in"), "from host\n").unwrap();
    // The mount point does not exist in the image: it is made, parents included.
    let vol = format!("{}:/data/deep", host.path());
    let (o, pid) = run(&["--rootfs", root.path(), "-v", &vol, "--", "sh", "-c", "cat /data/deep/in; echo from container > /data/deep/out"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "from host\n");
    assert_eq!(std::fs::read_to_string(host.0.join("out")).unwrap(), "from container\n");
    assert_clean(pid, "rw volume");

    let ro = format!("{}:/data:ro", host.path());
    let (o, pid) = run(&["--rootfs", root.path(), "--volume", &ro, "--", "sh", "-c", "echo x > /data/nope"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("Read-only file system"), "{}", stderr(&o));
    assert!(!host.0.join("nope").exists());
    assert_clean(pid, "ro volume");

    // A single file, mounted on a file made in the container's root.
    let file = format!("{}/in:/etc/in.txt:ro", host.path());
    let (o, pid) = run(&["--rootfs", root.path(), "-v", &file, "--", "cat", "/etc/in.txt"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "from host\n", "{}", stderr(&o));
    assert_clean(pid, "file volume");
}

#[test]
fn a_missing_host_path_names_phase_path_and_errno() {
    if !common::require_root() {
        return;
    }
    let root = TestRootfs::new("volmissing", true);
    let (o, pid) = run(&["--rootfs", root.path(), "-v", "/nonexistent-probe-vol:/x", "--", "true"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("mounts: volume /nonexistent-probe-vol:/x") && err.contains("os error 2"), "{err}");
    assert_clean(pid, "missing volume");
    let (o, _) = run(&["--rootfs", root.path(), "-v", "/tmp:relative", "--", "true"]);
    assert_eq!(o.status.code(), Some(2), "a bad spec is a usage error: {}", stderr(&o));
}

//! The fsync verdict on stacked block devices, built for real from loop files: a partitioned
//! loop (ext4, xfs and btrfs on its partitions, flushes counted only on the whole loop disk
//! and below), and, through --crash-check, a loop whose backing file lives on one of those
//! partitions. Bare and a bind volume must be durable, a `volatile` overlay NOT durable, and
//! a simulated power cut must agree with every verdict. Everything is removed after.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// Each filesystem and its mkfs with "quiet, overwrite".
const FILESYSTEMS: [(&str, &str, &str); 3] = [("ext4", "mkfs.ext4", "-qF"), ("xfs", "mkfs.xfs", "-qf"), ("btrfs", "mkfs.btrfs", "-qf")];

fn run(cmd: &str, args: &[&str]) -> String {
    let o = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(o.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A sparse image with three GPT partitions on a loop device (`losetup -P`), a filesystem
/// on each, mounted. No udev here: `partx -a` adds the partitions, and a node still missing
/// is made with mknod from sysfs. Dropping unmounts, detaches and removes all of it.
struct PartitionedLoop {
    dir: TempDir,
    dev: Option<String>,
    mounts: Vec<(String, PathBuf)>,
    nodes: Vec<PathBuf>,
}

impl PartitionedLoop {
    fn new() -> PartitionedLoop {
        // In /var/tmp (on disk) rather than /tmp, which may be a tmpfs on users' machines.
        let dir = TempDir(PathBuf::from(format!("/var/tmp/probe-test-stack-{}", std::process::id())));
        std::fs::create_dir_all(&dir.0).unwrap();
        let mut pl = PartitionedLoop { dir, dev: None, mounts: Vec::new(), nodes: Vec::new() };
        let image = pl.dir.0.join("disk.img");
        // 3 × 700 MiB: each holds the crash check's own scratch file (xfs needs 320 MiB).
        std::fs::File::create(&image).unwrap().set_len(2200 << 20).unwrap();
        let table = "label: gpt\nsize=700M\nsize=700M\nsize=700M\n";
        let mut sfdisk = Command::new("sfdisk").args(["-q"]).arg(&image).stdin(std::process::Stdio::piped()).spawn().unwrap();
        use std::io::Write;
        sfdisk.stdin.take().unwrap().write_all(table.as_bytes()).unwrap();
        assert!(sfdisk.wait().unwrap().success(), "sfdisk");
        let dev = run("losetup", &["-fP", "--show", image.to_str().unwrap()]);
        pl.dev = Some(dev.clone());
        // Already added by losetup -P on most kernels; partx then says so and fails.
        let _ = Command::new("partx").args(["-a", &dev]).output();
        let name = dev.trim_start_matches("/dev/").to_string();
        for (i, (fs, mkfs, flags)) in FILESYSTEMS.iter().enumerate() {
            let part = format!("{name}p{}", i + 1);
            let node = PathBuf::from(format!("/dev/{part}"));
            if !node.exists() {
                let devno = std::fs::read_to_string(format!("/sys/block/{name}/{part}/dev")).expect("partition in sysfs");
                let (maj, min) = devno.trim().split_once(':').unwrap();
                run("mknod", &[node.to_str().unwrap(), "b", maj, min]);
                pl.nodes.push(node.clone());
            }
            run(mkfs, &[flags, node.to_str().unwrap()]);
            let at = pl.dir.0.join(fs);
            std::fs::create_dir(&at).unwrap();
            run("mount", &[node.to_str().unwrap(), at.to_str().unwrap()]);
            pl.mounts.push((fs.to_string(), at));
        }
        pl
    }

    fn name(&self) -> String {
        self.dev.as_deref().unwrap().trim_start_matches("/dev/").to_string()
    }
}

impl Drop for PartitionedLoop {
    fn drop(&mut self) {
        for (_, at) in self.mounts.iter().rev() {
            let _ = Command::new("umount").arg(at).output();
        }
        if let Some(dev) = &self.dev {
            let _ = Command::new("losetup").args(["-d", dev]).output();
        }
        for n in &self.nodes {
            let _ = std::fs::remove_file(n);
        }
    }
}

fn have_tools() -> bool {
    let tools = ["sfdisk", "losetup", "partx", "mkfs.ext4", "mkfs.xfs", "mkfs.btrfs"];
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !succeeds("sh", &["-c", &format!("command -v {t}")])).collect();
    require_root() && require(missing.is_empty(), &format!("missing {missing:?}: apt-get install xfsprogs btrfs-progs fdisk (scripts/setup-engines.sh)"))
}

fn io_json(args: &[&str]) -> serde_json::Value {
    let results = std::env::temp_dir().join(format!("probe-test-stack-results-{}", std::process::id()));
    let o = Command::new(probe_bin())
        .arg("io")
        .args(args)
        .args(["--reps", "1", "--idle-ms", "300", "--quiet", "--format", "json", "--results"])
        .arg(&results)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&results);
    assert!(o.status.success(), "probe io {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("JSON on stdout")
}

fn outcome<'a>(report: &'a serde_json::Value, mode: &str) -> &'a serde_json::Value {
    let r = report["results"].as_array().unwrap().iter().find(|r| r["mode"] == mode).unwrap_or_else(|| panic!("no {mode}"));
    &r["outcome"]
}

/// Nothing from a crash check left: no scratch loop, no mount, writeback restored.
fn assert_no_crash_leftovers(before_writeback: &str) {
    let loops = run("losetup", &["-a"]);
    assert!(!loops.contains("probe-io-crash"), "scratch loops left: {loops}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains("probe-io-"), "mounts left: {mounts}");
    if has_device_mapper() {
        let dm = run("dmsetup", &["ls"]);
        assert!(!dm.contains("probe-io-crash"), "dm-log-writes devices left: {dm}");
    }
    assert_eq!(writeback(), before_writeback, "vm.dirty_* restored");
}

/// The kernel's device-mapper driver answers (a /dev/mapper/control node alone does not say).
fn has_device_mapper() -> bool {
    succeeds("dmsetup", &["version"])
}

fn writeback() -> String {
    ["dirty_writeback_centisecs", "dirty_expire_centisecs"]
        .map(|k| std::fs::read_to_string(format!("/proc/sys/vm/{k}")).unwrap().trim().to_string())
        .join(",")
}

#[test]
fn partitions_of_a_loop_disk_give_the_right_verdicts_and_the_power_cut_agrees() {
    if !have_tools() {
        return;
    }
    let before = writeback();
    let disk = PartitionedLoop::new();
    let name = disk.name();
    for (i, (fs, at)) in disk.mounts.iter().enumerate() {
        let dir = at.to_str().unwrap();
        let part = format!("{name}p{}", i + 1);
        // The counters alone: on the partition, flushes must be read at the loop disk below.
        let r = io_json(&["--modes", "bare,native-bind,overlay,overlay-volatile", "--size", "16", "--dir", dir]);
        for mode in ["bare", "native-bind", "overlay"] {
            assert_eq!(outcome(&r, mode), "durable", "{fs} {mode}: {}", r);
        }
        assert_eq!(outcome(&r, "overlay-volatile"), "not-durable", "{fs}");
        let rep = &r["results"][0]["reps"][0];
        let store = &rep["backing"]["store"];
        assert_eq!(store["name"], part.as_str(), "{fs}: bytes counted at the partition");
        assert_eq!(rep["disk"]["device"], part.as_str());
        let bottoms = rep["disk"]["flush_devices"].as_array().unwrap();
        assert!(!bottoms.iter().any(|b| b == part.as_str()), "{fs}: flushes never at the partition: {bottoms:?}");
        assert!(rep["disk"]["sync_phase"]["flushes"].as_u64().unwrap() >= 1, "{fs}: {rep}");
        assert_eq!(store["chain"]["top"]["below"][0]["name"], name.as_str(), "{fs}: partition → its loop disk");

        // The power cut, on a scratch loop whose file lives on this partition: a loop on a
        // loop's partition. Every verdict must match what survived. The native container's
        // root overlay has its upper layer on the scratch disk there, with and without
        // `volatile`.
        let mut modes = "bare,native-bind,overlay,overlay-volatile,native-overlay,native-overlay-volatile".to_string();
        if i == 0 && succeeds("podman", &["info"]) {
            modes.push_str(",podman-overlay");
        }
        let c = io_json(&["--crash-check", "--crash-fs", fs, "--modes", &modes, "--size", "8", "--dir", dir]);
        let ran: Vec<&str> = c["results"].as_array().unwrap().iter().map(|r| r["mode"].as_str().unwrap()).collect();
        assert_eq!(ran.len(), modes.split(',').count(), "{fs}: every mode ran: {ran:?}");
        for r in c["results"].as_array().unwrap() {
            let mode = r["mode"].as_str().unwrap();
            let want = if mode.contains("volatile") || mode.starts_with("podman") { "not-durable" } else { "durable" };
            assert_eq!(r["outcome"], want, "{fs} crash-check {mode}: {}", r["reps"][0]["verdict"]);
            let crash = &r["reps"][0]["crash"];
            assert_eq!(crash["agrees"], true, "{fs} {mode}: {crash}");
            assert_eq!(crash["complete"], want == "durable", "{fs} {mode}: {crash}");
            let chain = serde_json::to_string(&r["reps"][0]["backing"]["store"]["chain"]).unwrap();
            assert!(chain.contains(&part), "{fs} {mode}: the scratch loop's file is on {part}: {chain}");
            if mode.starts_with("native-overlay") {
                let root = &r["reps"][0]["backing"]["root_mount"];
                assert_eq!(root["fstype"], "overlay", "{fs} {mode}: {root}");
                let volatile = root["super_options"].as_str().unwrap().contains("volatile");
                assert_eq!(volatile, mode.ends_with("volatile"), "{fs} {mode}: the container's root is mounted as asked: {root}");
            }
        }
        assert_no_crash_leftovers(&before);
        assert!(std::fs::read_dir(at).unwrap().all(|e| {
            let n = e.unwrap().file_name();
            n == "lost+found"
        }), "{fs}: nothing left in {}", at.display());
    }
    drop(disk);
    let loops = run("losetup", &["-a"]);
    assert!(!loops.contains("probe-test-stack"), "{loops}");
    assert!(!Path::new(&format!("/var/tmp/probe-test-stack-{}", std::process::id())).exists());
}

#[test]
fn crash_check_refuses_a_file_too_large_for_its_scratch_disk() {
    let o = probe(&["io", "--crash-check", "--crash-fs", "ext4", "--size", "100", "--modes", "bare"]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("too large for the crash check") && e.contains("--size 64"), "{e}");
    let o = probe(&["io", "--crash-check", "--sync", "direct", "--modes", "bare"]);
    let e = String::from_utf8_lossy(&o.stderr);
    if has_device_mapper() {
        // dm-log-writes keeps only flushed writes, so O_DIRECT can be judged; a copy cannot.
        let o = probe(&["io", "--crash-check", "--crash-method", "copy", "--sync", "direct", "--modes", "bare"]);
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && e.contains("cannot judge --sync direct"), "{e}");
    } else {
        assert!(!o.status.success() && e.contains("cannot judge --sync direct") && e.contains("no usable device-mapper"), "{e}");
        let o = probe(&["io", "--crash-check", "--crash-method", "dm-log-writes", "--modes", "bare"]);
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && e.contains("no usable device-mapper") && e.contains("--crash-method copy"), "{e}");
    }
}

#[test]
fn ctrl_c_during_a_crash_check_leaves_nothing() {
    if !have_tools() {
        return;
    }
    let before = writeback();
    let results = std::env::temp_dir().join(format!("probe-test-stack-int-{}", std::process::id()));
    let child = Command::new(probe_bin())
        .args(["io", "--crash-check", "--modes", "bare,overlay,overlay-volatile", "--reps", "20", "--idle-ms", "300", "--quiet"])
        .arg("--results")
        .arg(&results)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let started = std::time::Instant::now();
    while !run("losetup", &["-a"]).contains(&format!("probe-io-crash-{pid}")) {
        assert!(started.elapsed().as_secs() < 60, "the scratch disk never appeared");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Let it get into the reps, with writeback held and a capture or two made.
    std::thread::sleep(std::time::Duration::from_secs(3));
    // SAFETY: kill(2) on the child we started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGINT) }, 0);
    let o = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&results);
    assert!(!o.status.success(), "interrupted runs fail");
    assert!(String::from_utf8_lossy(&o.stderr).contains("interrupted"), "{}", String::from_utf8_lossy(&o.stderr));
    assert_no_crash_leftovers(&before);
    assert!(!Path::new(&format!("/var/tmp/probe-io-crash-{pid}")).exists());
    assert!(!Path::new(&format!("/run/probe-io-crash-{pid}")).exists());
}

/// Commands that undo what a stack test built, run in reverse order when dropped (also when
/// the test fails); each is tried once and its failure printed, so one stuck step does not
/// leave the rest behind.
struct Undo(Vec<Vec<String>>);

impl Undo {
    fn push(&mut self, cmd: &[&str]) {
        self.0.push(cmd.iter().map(|s| s.to_string()).collect());
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        for cmd in self.0.iter().rev() {
            match Command::new(&cmd[0]).args(&cmd[1..]).output() {
                Ok(o) if o.status.success() => {}
                Ok(o) => eprintln!("undo {cmd:?}: {}", String::from_utf8_lossy(&o.stderr).trim()),
                Err(e) => eprintln!("undo {cmd:?}: {e}"),
            }
        }
    }
}

/// A sparse file of `mib` MiB in `dir` on a loop device; its detach and removal are queued.
fn loop_file(dir: &Path, name: &str, mib: u64, undo: &mut Undo) -> String {
    let file = dir.join(name);
    std::fs::File::create(&file).unwrap().set_len(mib << 20).unwrap();
    undo.push(&["rm", "-f", file.to_str().unwrap()]);
    let dev = run("losetup", &["-f", "--show", file.to_str().unwrap()]);
    undo.push(&["losetup", "-d", &dev]);
    dev
}

/// The device-mapper and md stacks users' disks have, built from loop files: LVM (a logical
/// volume), dm-linear, dm-crypt (plain, via dmsetup: no cryptsetup needed) and md RAID1.
/// Returns the device to put ext4 on, and the kind the chain must show at its top.
fn build_stack(kind: &str, dir: &Path, undo: &mut Undo) -> (String, &'static str) {
    let tag = format!("probe-test-{kind}-{}", std::process::id());
    match kind {
        "lvm" => {
            let pv = loop_file(dir, "pv.img", 1024, undo);
            run("pvcreate", &["-ff", "-y", "-q", &pv]);
            undo.push(&["pvremove", "-ff", "-y", "-q", &pv]);
            let vg = tag.replace('-', "_");
            run("vgcreate", &["-q", &vg, &pv]);
            undo.push(&["vgremove", "-ff", "-y", "-q", &vg]);
            run("lvcreate", &["-q", "-y", "-n", "lv", "-L", "900M", &vg]);
            (format!("/dev/{vg}/lv"), "LVM")
        }
        "linear" | "crypt" => {
            let under = loop_file(dir, "under.img", 1024, undo);
            let sectors = (1024u64 << 20) / 512;
            let (table, uuid) = if kind == "linear" {
                (format!("0 {sectors} linear {under} 0"), format!("LINEAR-{tag}"))
            } else {
                // A fixed test key: this disk holds nothing but the test's own files.
                (format!("0 {sectors} crypt aes-xts-plain64 {} 0 {under} 0", "a5".repeat(64)), format!("CRYPT-PLAIN-{tag}"))
            };
            run("dmsetup", &["create", &tag, "--uuid", &uuid, "--table", &table]);
            undo.push(&["dmsetup", "remove", "--retry", &tag]);
            (format!("/dev/mapper/{tag}"), if kind == "linear" { "LINEAR" } else { "CRYPT" })
        }
        "raid1" => {
            let a = loop_file(dir, "member-a.img", 1024, undo);
            let b = loop_file(dir, "member-b.img", 1024, undo);
            let md = "/dev/md/probe-test";
            // --assume-clean: no initial resync writing in the background of the windows.
            run("mdadm", &["--create", md, "--run", "--quiet", "--level=1", "--raid-devices=2", "--metadata=1.2", "--assume-clean", &a, &b]);
            undo.push(&["mdadm", "--zero-superblock", &a, &b]);
            undo.push(&["mdadm", "--stop", md]);
            (md.to_string(), "raid1")
        }
        _ => unreachable!("{kind}"),
    }
}

#[test]
#[ignore = "needs a kernel with device-mapper and md, which this VM lacks: the second host runs it (docs/io.md)"]
fn device_mapper_and_md_stacks_give_the_right_verdicts_and_dm_log_writes_agrees() {
    assert!(has_device_mapper(), "this kernel has no device-mapper");
    if !have_tools() {
        return;
    }
    let before = writeback();
    // The crash check's scratch filesystem varies: btrfs on the dm-log-writes device is an
    // anonymous device found only by its /dev/mapper source.
    for (kind, scratch_fs) in [("lvm", "ext4"), ("linear", "btrfs"), ("crypt", "ext4"), ("raid1", "xfs")] {
        let dir = TempDir(PathBuf::from(format!("/var/tmp/probe-test-dm-{kind}-{}", std::process::id())));
        std::fs::create_dir_all(&dir.0).unwrap();
        let mut undo = Undo(Vec::new());
        let (dev, top_kind) = build_stack(kind, &dir.0, &mut undo);
        run("mkfs.ext4", &["-qF", &dev]);
        let at = dir.0.join("mnt");
        std::fs::create_dir(&at).unwrap();
        run("mount", &[&dev, at.to_str().unwrap()]);
        undo.push(&["umount", at.to_str().unwrap()]);
        let d = at.to_str().unwrap();

        let r = io_json(&["--modes", "bare,native-bind,overlay,overlay-volatile", "--size", "8", "--dir", d]);
        for mode in ["bare", "native-bind", "overlay"] {
            assert_eq!(outcome(&r, mode), "durable", "{kind} {mode}: {r}");
        }
        assert_eq!(outcome(&r, "overlay-volatile"), "not-durable", "{kind}");
        let rep = &r["results"][0]["reps"][0];
        let top = &rep["backing"]["store"]["chain"]["top"];
        let shown = top["kind"]["target"].as_str().or(top["kind"]["level"].as_str()).unwrap_or_default();
        assert_eq!(shown, top_kind, "{kind}: the stack's top is named: {top}");
        let below = serde_json::to_string(&top["below"]).unwrap();
        assert!(below.contains("\"loop"), "{kind}: the loop file(s) below it: {below}");
        assert!(rep["disk"]["sync_phase"]["flushes"].as_u64().unwrap() >= 1, "{kind}: flushes reach the bottom disk: {rep}");

        // The power cut by dm-log-writes (stacked on a loop whose file is on this stack).
        let modes = "bare,overlay-volatile,native-overlay,native-overlay-volatile";
        let c = io_json(&["--crash-check", "--crash-method", "dm-log-writes", "--crash-fs", scratch_fs, "--modes", modes, "--size", "8", "--dir", d]);
        assert!(c["crash_check"].as_str().unwrap().contains("dm-log-writes"), "{kind}: {}", c["crash_check"]);
        for r in c["results"].as_array().unwrap() {
            let mode = r["mode"].as_str().unwrap();
            let want = if mode.contains("volatile") { "not-durable" } else { "durable" };
            assert_eq!(r["outcome"], want, "{kind} crash-check {mode}: {}", r["reps"][0]["verdict"]);
            let crash = &r["reps"][0]["crash"];
            assert_eq!(crash["agrees"], true, "{kind} {mode}: {crash}");
            assert!(crash["method"].as_str().unwrap().starts_with("dm-log-writes"), "{kind} {mode}: {crash}");
            let chain = serde_json::to_string(&r["reps"][0]["backing"]["store"]["chain"]).unwrap();
            assert!(chain.contains("LOGWRITES") && chain.contains(top_kind), "{kind} {mode}: log-writes on a loop on the stack: {chain}");
        }
        assert_no_crash_leftovers(&before);
        drop(undo);
        drop(dir);
    }
    let dm = run("dmsetup", &["ls"]);
    assert!(!dm.contains("probe-"), "dm devices left: {dm}");
    assert!(!std::fs::read_to_string("/proc/mdstat").unwrap().contains("loop"), "md arrays left");
    // A loop detached while md or dm still held it goes once they let go: give it a moment.
    let started = std::time::Instant::now();
    while run("losetup", &["-a"]).contains("probe-test-dm") && started.elapsed().as_secs() < 10 {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let loops = run("losetup", &["-a"]);
    assert!(!loops.contains("probe-test-dm"), "loops left: {loops}");
}

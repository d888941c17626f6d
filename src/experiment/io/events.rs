//! What the tracer saw in one phase of one rep, cut to what decides durability: write and
//! flush requests the backing disk was issued, the FUSE requests that reached the daemon, and
//! the filesystem sync calls with the process that made each.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::trace::event::Event;

/// Tracepoints `probe io --fsync-trace` records.
pub const TRACEPOINTS: &[&str] = &[
    "block/block_rq_issue",
    "fuse/fuse_request_send",
    "fuse/fuse_request_end",
    "ext4/ext4_sync_file_enter",
    "xfs/xfs_file_fsync",
    "btrfs/btrfs_sync_file",
    "syscalls/sys_enter_fsync",
    "syscalls/sys_enter_fdatasync",
];

/// The kernel's dev_t encoding in tracepoints: MKDEV(major, minor) = major << 20 | minor.
pub fn kernel_dev(major: u32, minor: u32) -> u64 {
    (u64::from(major) << 20) | u64::from(minor)
}

/// The events' filter: the disk behind the target, and the FUSE connection if any.
#[derive(Clone, Debug)]
pub struct Filter {
    /// kernel_dev() of the bottom disks (block requests are issued to a disk, not a partition).
    pub disks: Vec<u64>,
    /// kernel_dev() of the filesystem the data lands on (ext4 sync calls name it).
    pub fs: Option<u64>,
    /// kernel_dev() of the FUSE mount: a FUSE request's `connection`.
    pub fuse: Option<u64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Window {
    /// Write requests issued to the disk, and their bytes.
    pub write_requests: u64,
    pub write_bytes: u64,
    /// Requests with a cache flush before them (rwbs starts with F: REQ_PREFLUSH).
    pub flushes: u64,
    /// Writes that must be on stable media when they complete (rwbs has F after the op).
    pub fua_writes: u64,
    /// Bytes written by each issuing task (`comm` of block_rq_issue), largest first.
    pub issuers: Vec<(String, u64)>,
    /// FUSE requests sent to the daemon, by opcode name.
    pub fuse_requests: BTreeMap<String, u64>,
    /// FUSE requests the daemon answered with an error, counted by "OPCODE: -errno"
    /// ("FSYNC: -38" is ENOSYS: the daemon does not implement fsync).
    pub fuse_errors: BTreeMap<String, u64>,
    /// Filesystem sync calls on the backing filesystem (ext4_sync_file_enter, xfs_file_fsync;
    /// btrfs_sync_file names no device, only a filesystem UUID, so it counts any btrfs).
    pub fs_syncs: Vec<Caller>,
    /// fsync/fdatasync system calls, by any process.
    pub sync_syscalls: Vec<Caller>,
}

/// Calls of one kind by one process in the window (other processes' syncs show up too: the
/// disk is shared, and naming them is what tells the container's calls from the rest).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Caller {
    pub pid: u32,
    pub comm: String,
    pub what: String,
    pub count: u64,
}

fn count_call(calls: &mut Vec<Caller>, pid: u32, what: &str, comm: &dyn Fn(u32) -> String) {
    match calls.iter_mut().find(|c| c.pid == pid && c.what == what) {
        Some(c) => c.count += 1,
        None => calls.push(Caller { pid, comm: comm(pid), what: what.to_string(), count: 1 }),
    }
}

/// FUSE opcodes from include/uapi/linux/fuse.h (a stable ABI) that matter for writes.
fn fuse_opcode(op: u64) -> String {
    let name = match op {
        1 => "LOOKUP",
        3 => "GETATTR",
        4 => "SETATTR",
        14 => "OPEN",
        15 => "READ",
        16 => "WRITE",
        18 => "RELEASE",
        20 => "FSYNC",
        22 => "GETXATTR",
        25 => "FLUSH",
        35 => "CREATE",
        _ => return format!("OP_{op}"),
    };
    name.to_string()
}

/// Summarizes events in [from_ns, to_ns). `comm` names a pid (read while it still lives).
pub fn window(events: &[Event], from_ns: u64, to_ns: u64, f: &Filter, comm: &dyn Fn(u32) -> String) -> Window {
    let mut w = Window::default();
    let mut issuers: BTreeMap<String, u64> = BTreeMap::new();
    // FUSE replies carry only the request id; the opcode comes from its send event.
    let mut sent: BTreeMap<u64, String> = BTreeMap::new();
    for e in events.iter().filter(|e| e.time_ns >= from_ns && e.time_ns < to_ns) {
        match e.short_name() {
            "block_rq_issue" if e.uint("dev").is_some_and(|d| f.disks.contains(&d)) => {
                let rwbs = e.str("rwbs").unwrap_or("");
                if rwbs.starts_with('F') {
                    w.flushes += 1;
                }
                if let Some(flags) = rwbs.trim_start_matches('F').strip_prefix('W') {
                    let bytes = e.uint("nr_sector").unwrap_or(0) * 512;
                    w.write_requests += 1;
                    w.write_bytes += bytes;
                    if flags.contains('F') {
                        w.fua_writes += 1;
                    }
                    *issuers.entry(e.str("comm").unwrap_or("?").to_string()).or_default() += bytes;
                }
            }
            "fuse_request_send" if f.fuse.is_some() && e.uint("connection") == f.fuse => {
                let name = fuse_opcode(e.uint("opcode").unwrap_or(0));
                *w.fuse_requests.entry(name.clone()).or_default() += 1;
                if let Some(id) = e.uint("unique") {
                    sent.insert(id, name);
                }
            }
            "fuse_request_end" if f.fuse.is_some() && e.uint("connection") == f.fuse => {
                let err = e.int("error").unwrap_or(0);
                if err != 0 {
                    let op = e.uint("unique").and_then(|id| sent.get(&id).cloned()).unwrap_or_else(|| "?".into());
                    *w.fuse_errors.entry(format!("{op}: {err}")).or_default() += 1;
                }
            }
            "ext4_sync_file_enter" if f.fs.is_some() && e.uint("dev") == f.fs => {
                let what = if e.int("datasync") == Some(1) { "ext4 fdatasync" } else { "ext4 fsync" };
                count_call(&mut w.fs_syncs, e.pid, what, comm);
            }
            "xfs_file_fsync" if f.fs.is_some() && e.uint("dev") == f.fs => {
                count_call(&mut w.fs_syncs, e.pid, "xfs fsync", comm);
            }
            "btrfs_sync_file" => {
                let what = if e.int("datasync") == Some(1) { "btrfs fdatasync (any btrfs)" } else { "btrfs fsync (any btrfs)" };
                count_call(&mut w.fs_syncs, e.pid, what, comm);
            }
            "sys_enter_fsync" | "sys_enter_fdatasync" => {
                count_call(&mut w.sync_syscalls, e.pid, e.short_name().trim_start_matches("sys_enter_"), comm);
            }
            _ => {}
        }
    }
    let mut issuers: Vec<(String, u64)> = issuers.into_iter().collect();
    issuers.sort_by_key(|b| std::cmp::Reverse(b.1));
    issuers.truncate(4);
    w.issuers = issuers;
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::format::Value;

    fn ev(t: u64, pid: u32, name: &str, fields: &[(&str, Value)]) -> Event {
        Event {
            time_ns: t,
            cpu: 0,
            pid,
            tid: pid,
            name: name.into(),
            fields: fields.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            callchain: Vec::new(),
        }
    }

    fn rq(t: u64, dev: u64, rwbs: &str, sectors: u64, comm: &str) -> Event {
        ev(t, 9, "block/block_rq_issue", &[
            ("dev", Value::Uint(dev)),
            ("rwbs", Value::Str(rwbs.into())),
            ("nr_sector", Value::Uint(sectors)),
            ("comm", Value::Str(comm.into())),
        ])
    }

    #[test]
    fn counts_disk_writes_flushes_fuse_and_sync_callers() {
        let vda = kernel_dev(254, 0);
        let fuse = kernel_dev(0, 63);
        let events = vec![
            rq(5, vda, "W", 8, "early"), // before the window
            rq(10, vda, "WS", 2048, "kworker/u4:1"),
            rq(11, vda, "W", 2048, "fuse-overlayfs"),
            rq(12, kernel_dev(8, 0), "W", 4096, "other-disk"),
            rq(13, vda, "FN", 0, "jbd2/vda-8"),
            rq(14, vda, "WFS", 8, "jbd2/vda-8"),
            ev(15, 7, "fuse/fuse_request_send", &[("connection", Value::Uint(fuse)), ("unique", Value::Uint(42)), ("opcode", Value::Uint(20))]),
            ev(16, 7, "fuse/fuse_request_end", &[("connection", Value::Uint(fuse)), ("unique", Value::Uint(42)), ("error", Value::Int(-38))]),
            ev(17, 7, "fuse/fuse_request_send", &[("connection", Value::Uint(fuse)), ("unique", Value::Uint(43)), ("opcode", Value::Uint(16))]),
            ev(18, 30, "ext4/ext4_sync_file_enter", &[("dev", Value::Uint(vda)), ("ino", Value::Uint(12)), ("datasync", Value::Int(1))]),
            ev(18, 30, "ext4/ext4_sync_file_enter", &[("dev", Value::Uint(vda)), ("ino", Value::Uint(13)), ("datasync", Value::Int(1))]),
            ev(18, 31, "ext4/ext4_sync_file_enter", &[("dev", Value::Uint(kernel_dev(8, 1))), ("ino", Value::Uint(1)), ("datasync", Value::Int(0))]),
            ev(19, 7, "syscalls/sys_enter_fdatasync", &[]),
            ev(19, 32, "xfs/xfs_file_fsync", &[("dev", Value::Uint(vda)), ("ino", Value::Uint(5))]),
            ev(19, 33, "btrfs/btrfs_sync_file", &[("ino", Value::Uint(5)), ("datasync", Value::Int(0))]),
            rq(100, vda, "W", 8, "late"), // after the window
        ];
        let f = Filter { disks: vec![vda], fs: Some(vda), fuse: Some(fuse) };
        let w = window(&events, 10, 100, &f, &|pid| format!("p{pid}"));
        assert_eq!((w.write_requests, w.write_bytes), (3, (2048 + 2048 + 8) * 512));
        assert_eq!((w.flushes, w.fua_writes), (1, 1));
        assert_eq!(w.issuers[0].1, 2048 * 512);
        assert_eq!(w.fuse_requests.get("FSYNC"), Some(&1));
        assert_eq!(w.fuse_requests.get("WRITE"), Some(&1));
        assert_eq!(w.fuse_errors.into_iter().collect::<Vec<_>>(), vec![("FSYNC: -38".to_string(), 1)]);
        assert_eq!(w.fs_syncs[0], Caller { pid: 30, comm: "p30".into(), what: "ext4 fdatasync".into(), count: 2 });
        let rest: Vec<_> = w.fs_syncs[1..].iter().map(|c| c.what.as_str()).collect();
        assert_eq!(rest, ["xfs fsync", "btrfs fsync (any btrfs)"]);
        assert_eq!(w.sync_syscalls[0].what, "fdatasync");
    }
}

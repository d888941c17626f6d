//! What `probe worker io` (inside the container) and `probe io` (on the host) say to each
//! other: one JSON object per line on the worker's stdout, one byte on its stdin to go on.
//!
//! The worker stops at each phase boundary so the host can read the disk counters and drain
//! the tracer exactly there: `ready` (file open, nothing written), `written` (every write
//! returned), `synced` (the sync call returned), `done` (file removed). The pauses are not
//! inside any timed interval.

use serde::{Deserialize, Serialize};

use crate::sys::mountinfo::Mount;

/// How the data is made durable, as the chapter's `dd` flags do it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SyncMode {
    /// fdatasync(2) after the writes (`dd conv=fdatasync`).
    Fdatasync,
    /// fsync(2) after the writes (`dd conv=fsync`).
    Fsync,
    /// O_DIRECT writes and no sync call (`dd oflag=direct`): the page cache is bypassed, but
    /// nothing asks the disk to empty its own write cache.
    Direct,
    /// Buffered writes, no sync call: the page-cache baseline.
    None,
}

impl SyncMode {
    pub fn name(self) -> &'static str {
        match self {
            SyncMode::Fdatasync => "fdatasync",
            SyncMode::Fsync => "fsync",
            SyncMode::Direct => "direct",
            SyncMode::None => "none",
        }
    }

    /// True when the worker makes a sync system call after writing.
    pub fn calls_sync(self) -> bool {
        matches!(self, SyncMode::Fdatasync | SyncMode::Fsync)
    }
}

/// One line of the worker's stdout.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "point", rename_all = "kebab-case")]
pub enum Message {
    /// The file is created and open; nothing written yet.
    Ready(Box<Target>),
    /// Every write returned.
    Written { bytes: u64, write_ns: u64 },
    /// The sync call returned (or would have: `sync_ns` is 0 when the mode makes none).
    Synced { sync_ns: u64 },
    /// The file is removed; the worker exits 0 next.
    Done,
    /// The worker failed; `message` names what, the path, the errno and a fix.
    Error { message: String },
}

/// Where the worker writes, as the kernel sees it from inside the container.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Target {
    pub path: String,
    /// st_dev of the open file (for an overlay, the overlay's anonymous device).
    pub dev_major: u32,
    pub dev_minor: u32,
    /// The mountinfo entry of the file's mount, and of the container's `/`, read from the
    /// worker's own /proc/self/mountinfo. None when /proc is not mounted there.
    pub mount: Option<Mount>,
    pub root_mount: Option<Mount>,
}

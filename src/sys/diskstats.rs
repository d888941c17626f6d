//! /proc/diskstats: what each block device has received since boot. `probe io` diffs two
//! snapshots to learn how many bytes and cache flushes really reached a disk between two
//! instants, whatever the filesystem stack above it claimed.
//!
//! Field layout (Documentation/admin-guide/iostats.rst): major minor name, then 11 counters
//! (kernel ≥ 2.6), 4 discard counters (≥ 4.18) and 2 flush counters (≥ 5.5). Sectors are
//! always 512 bytes there, whatever the device's logical block size.

use std::collections::BTreeMap;
use std::path::Path;

use procfs::DiskStat;
use serde::Serialize;

pub const DISKSTATS: &str = "/proc/diskstats";
/// diskstats counts in 512-byte units regardless of the device (iostats.rst).
pub const SECTOR_BYTES: u64 = 512;

/// The counters of one device that say what was written to it.
#[derive(Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskCounters {
    /// Write requests completed.
    pub writes: u64,
    pub sectors_written: u64,
    /// Flush requests completed; None on kernels before 5.5, which do not count them.
    pub flushes: Option<u64>,
}

impl DiskCounters {
    pub fn bytes_written(&self) -> u64 {
        self.sectors_written * SECTOR_BYTES
    }

    /// What happened between `earlier` and `self`. Counters only grow; a device that was
    /// removed and re-added in between would wrap, so the difference saturates at 0.
    pub fn since(&self, earlier: &DiskCounters) -> DiskCounters {
        DiskCounters {
            writes: self.writes.saturating_sub(earlier.writes),
            sectors_written: self.sectors_written.saturating_sub(earlier.sectors_written),
            flushes: match (self.flushes, earlier.flushes) {
                (Some(a), Some(b)) => Some(a.saturating_sub(b)),
                _ => None,
            },
        }
    }
}

/// Every device's counters at one instant, by kernel name (`vda`, `sda1`, `dm-0`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot(pub BTreeMap<String, DiskCounters>);

impl Snapshot {
    pub fn read() -> std::io::Result<Snapshot> {
        read_from(Path::new(DISKSTATS))
    }

    pub fn get(&self, device: &str) -> Option<&DiskCounters> {
        self.0.get(device)
    }
}

pub fn read_from(path: &Path) -> std::io::Result<Snapshot> {
    let text = std::fs::read_to_string(path)?;
    Ok(parse(&text))
}

/// Parses the whole file, a line at a time: procfs-core's DiskStats would fail on the first
/// line without the 11 classic counters, and one odd line must not hide the rest (it cannot
/// come from any kernel probe supports), so such lines are skipped.
pub fn parse(text: &str) -> Snapshot {
    Snapshot(
        text.lines()
            .filter_map(|l| DiskStat::from_line(l).ok())
            .map(|d| (d.name, DiskCounters { writes: d.writes, sectors_written: d.sectors_written, flushes: d.flushes }))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This VM's file (kernel 6.18: 17 counters) plus a 4.x-era line with 11 counters.
    const FIXTURE: &str = "\
   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 254       0 vda 86593 7392 5231122 84751 22198 31271 4258200 17900 0 9708 103505 8989 57 652592 703 4187 149
 253       0 zram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
   8       1 sda1 120 0 960 12 40 2 800 30 0 50 42
";

    #[test]
    fn parses_write_and_flush_counters() {
        let s = parse(FIXTURE);
        let vda = s.get("vda").unwrap();
        assert_eq!(vda.writes, 22198);
        assert_eq!(vda.sectors_written, 4_258_200);
        assert_eq!(vda.bytes_written(), 4_258_200 * 512);
        assert_eq!(vda.flushes, Some(4187));
        assert_eq!(s.get("sda1").unwrap().flushes, None, "pre-5.5 kernels do not count flushes");
        assert_eq!(s.0.len(), 4);
    }

    #[test]
    fn deltas_saturate_and_keep_flush_availability() {
        let a = DiskCounters { writes: 10, sectors_written: 100, flushes: Some(3) };
        let b = DiskCounters { writes: 15, sectors_written: 300, flushes: Some(5) };
        assert_eq!(b.since(&a), DiskCounters { writes: 5, sectors_written: 200, flushes: Some(2) });
        assert_eq!(a.since(&b).sectors_written, 0);
        let old = DiskCounters { flushes: None, ..a };
        assert_eq!(b.since(&old).flushes, None);
    }

    #[test]
    fn short_or_garbled_lines_are_skipped() {
        let s = parse("garbage\n 8 0 sda 1 2 3\n 8 0 sdb 1 2 3 4 x 6 7 8 9 10 11\n");
        assert!(s.0.is_empty(), "{s:?}");
    }

    #[test]
    fn reads_this_host() {
        // Every Linux host has /proc/diskstats, possibly with no devices in a container.
        assert!(Snapshot::read().is_ok());
    }
}

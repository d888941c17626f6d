//! dm-log-writes, what xfstests uses to simulate a power cut: a device-mapper target that
//! passes every write through to its data device and also appends it to a log device, but
//! only once a cache flush (or FUA) has covered it — so the log is the order in which data
//! became durable, not the order it reached a volatile cache. A `mark` message puts a named
//! entry in that order at the instant it is sent. Replaying the log up to the mark onto the
//! data device's starting image gives the disk as a power cut at that instant would leave it,
//! a volatile write cache included (writes not yet flushed are not in it).
//!
//! Log format (drivers/md/dm-log-writes.c, version 1): a super block in the first
//! `sectorsize` bytes (magic, version, nr_entries, sectorsize), then entries, each a
//! `sectorsize` header (sector, nr_sectors, flags, data_len; a mark's name after them)
//! followed, for a write, by its nr_sectors × sectorsize bytes of data. Sectors count in
//! `sectorsize` units (the data device's logical block size). Flag bits: FLUSH 1, FUA 2
//! (a write that bypassed the cache: applied like any other), DISCARD 4, MARK 8.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};

pub const MAGIC: u64 = 0x6a73_6677_7368_72;
pub const VERSION: u64 = 1;
pub const FLUSH: u64 = 1 << 0;
pub const DISCARD: u64 = 1 << 2;
pub const MARK: u64 = 1 << 3;

/// What a replay applied.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Log entries read before the mark (writes, discards, flushes, other marks).
    pub entries: u64,
    pub writes: u64,
    pub bytes: u64,
    pub flushes: u64,
    pub discards: u64,
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// The super block: (entries logged so far, sector size). The kernel rewrites it after every
/// mark and FUA write.
fn read_super(log: &File) -> Result<(u64, u64)> {
    let mut sb = [0u8; 28];
    log.read_exact_at(&mut sb, 0).context("reading the log's super block")?;
    ensure!(le64(&sb, 0) == MAGIC, "not a dm-log-writes log (magic {:#x})", le64(&sb, 0));
    ensure!(le64(&sb, 8) == VERSION, "dm-log-writes log version {} (probe reads version {VERSION})", le64(&sb, 8));
    let sectorsize = u64::from(u32::from_le_bytes(sb[24..28].try_into().expect("4 bytes")));
    ensure!(sectorsize >= 512 && sectorsize.is_power_of_two(), "dm-log-writes log with sector size {sectorsize}");
    Ok((le64(&sb, 16), sectorsize))
}

/// Applies the log at `log` to the image `out` (a copy of the data device as it was when the
/// log started), entry by entry, up to the mark named `mark`. Err if the mark is not among
/// the logged entries (yet).
pub fn replay(log: &Path, out: &Path, mark: &str) -> Result<Replayed> {
    let log = File::open(log).with_context(|| format!("opening the log {}", log.display()))?;
    let img = File::options().write(true).open(out).with_context(|| format!("opening {}", out.display()))?;
    let (nr_entries, ss) = read_super(&log)?;
    let mut done = Replayed::default();
    let mut pos = ss;
    let mut header = vec![0u8; ss as usize];
    let mut data = Vec::new();
    while done.entries < nr_entries {
        log.read_exact_at(&mut header, pos).with_context(|| format!("reading log entry {} at byte {pos}", done.entries))?;
        let (sector, nr_sectors, flags, data_len) = (le64(&header, 0), le64(&header, 8), le64(&header, 16), le64(&header, 24));
        pos += ss;
        if flags & MARK != 0 {
            let len = (data_len as usize).min(header.len() - 32);
            if &header[32..32 + len] == mark.as_bytes() {
                return Ok(done);
            }
        } else if flags & DISCARD != 0 {
            // A discarded range reads back as zeros from a loop device (a punched hole).
            punch(&img, sector * ss, nr_sectors * ss).with_context(|| format!("discarding {nr_sectors} sectors at {sector}"))?;
            done.discards += 1;
        } else if nr_sectors > 0 {
            let len = (nr_sectors * ss) as usize;
            data.resize(len, 0);
            log.read_exact_at(&mut data, pos).with_context(|| format!("reading the data of log entry {}", done.entries))?;
            img.write_all_at(&data, sector * ss).with_context(|| format!("writing {len} bytes at sector {sector}"))?;
            pos += len as u64;
            done.writes += 1;
            done.bytes += len as u64;
        }
        if flags & FLUSH != 0 {
            done.flushes += 1;
        }
        done.entries += 1;
    }
    bail!("mark {mark} is not among the {nr_entries} entries logged so far")
}

fn punch(f: &File, offset: u64, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    // SAFETY: fallocate on an open fd has no memory effects.
    let r = unsafe { libc::fallocate(f.as_raw_fd(), mode, offset as libc::off_t, len as libc::off_t) };
    if r < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
}

fn dmsetup(args: &[&str]) -> Result<String> {
    let out = Command::new("dmsetup").args(args).output().context("starting dmsetup (install the dmsetup package)")?;
    if !out.status.success() {
        bail!("dmsetup {} failed ({}): {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Why this host cannot use dm-log-writes, or None when it can try: `dmsetup version` gets
/// an answer from the kernel's device-mapper driver (a /dev/mapper/control node alone proves
/// nothing: packages create it on kernels without the driver).
pub fn unavailable() -> Option<String> {
    match Command::new("dmsetup").arg("version").output() {
        Err(e) => Some(format!("dmsetup cannot run ({e}): install the dmsetup package")),
        Ok(o) if o.status.success() => None,
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            Some(format!("no usable device-mapper here (`dmsetup version`: {})", err.lines().next().unwrap_or("failed").trim()))
        }
    }
}

/// A log-writes device over `data`, logging to `log`; removed when dropped.
pub struct Device {
    pub name: String,
}

impl Device {
    /// `dmsetup create NAME` with one log-writes target over all of `data` (`sectors` of
    /// 512 bytes). The uuid's prefix names the target in the block stack ("LOGWRITES").
    pub fn create(name: &str, data: &str, log: &str, sectors: u64) -> Result<Device> {
        let table = format!("0 {sectors} log-writes {data} {log}");
        let uuid = format!("LOGWRITES-{name}");
        dmsetup(&["create", name, "--uuid", &uuid, "--table", &table])
            .context("creating the dm-log-writes device (the kernel needs the dm-log-writes target: modprobe dm-log-writes)")?;
        Ok(Device { name: name.to_string() })
    }

    pub fn path(&self) -> String {
        format!("/dev/mapper/{}", self.name)
    }

    /// Puts the mark `mark` in the log now.
    pub fn mark(&self, mark: &str) -> Result<()> {
        dmsetup(&["message", &self.name, "0", "mark", mark])?;
        let status = dmsetup(&["status", &self.name])?;
        // The kernel stops logging for good when the log device is full or a log write failed.
        ensure!(
            !status.contains("logging_disabled"),
            "dm-log-writes stopped logging ({status}): its log device is full or failed; use a smaller --size or fewer --reps"
        );
        Ok(())
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        // Busy for a moment after the unmount on some kernels (udev probing the device).
        for attempt in 0..20 {
            match dmsetup(&["remove", &self.name]) {
                Ok(_) => return,
                Err(e) if attempt == 19 => eprintln!("probe: could not remove the dm device {}: {e:#}", self.name),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SS: usize = 512;
    const FUA: u64 = 1 << 1;

    fn entry(sector: u64, nr: u64, flags: u64, name: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; SS];
        for (i, v) in [sector, nr, flags, name.len() as u64].into_iter().enumerate() {
            h[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        h[32..32 + name.len()].copy_from_slice(name);
        h
    }

    /// A log as the kernel writes it: super, then entries with their data.
    fn log(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
        let mut out = vec![0u8; SS];
        out[0..8].copy_from_slice(&MAGIC.to_le_bytes());
        out[8..16].copy_from_slice(&VERSION.to_le_bytes());
        out[16..24].copy_from_slice(&(entries.len() as u64).to_le_bytes());
        out[24..28].copy_from_slice(&(SS as u32).to_le_bytes());
        for (h, d) in entries {
            out.extend_from_slice(h);
            out.extend_from_slice(d);
        }
        out
    }

    #[test]
    fn replay_stops_at_the_mark_and_applies_writes_and_discards_before_it() {
        let dir = std::env::temp_dir().join(format!("probe-logwrites-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (log_path, img) = (dir.join("log"), dir.join("img"));
        let entries = vec![
            (entry(2, 2, 0, b""), vec![0xA5; 2 * SS]),
            (entry(8, 1, 0, b""), vec![0x11; SS]),
            (entry(0, 0, FLUSH, b""), vec![]),
            (entry(8, 1, DISCARD, b""), vec![]),
            (entry(0, 0, MARK, b"first"), vec![]),
            (entry(4, 1, FUA, b""), vec![0x22; SS]),
            (entry(0, 0, MARK, b"second"), vec![]),
        ];
        std::fs::write(&log_path, log(&entries)).unwrap();
        let fresh = || std::fs::write(&img, vec![0xFFu8; 10 * SS]).unwrap();

        fresh();
        let r = replay(&log_path, &img, "first").unwrap();
        assert_eq!(r, Replayed { entries: 4, writes: 2, bytes: 3 * SS as u64, flushes: 1, discards: 1 });
        let b = std::fs::read(&img).unwrap();
        assert!(b[2 * SS..4 * SS].iter().all(|x| *x == 0xA5), "written before the mark");
        assert!(b[8 * SS..9 * SS].iter().all(|x| *x == 0), "discarded after being written");
        assert!(b[4 * SS..5 * SS].iter().all(|x| *x == 0xFF), "the FUA write after the mark is not applied");

        fresh();
        replay(&log_path, &img, "second").unwrap();
        assert!(std::fs::read(&img).unwrap()[4 * SS..5 * SS].iter().all(|x| *x == 0x22));

        fresh();
        let e = replay(&log_path, &img, "third").unwrap_err().to_string();
        assert!(e.contains("not among the 7 entries"), "{e}");

        std::fs::write(&log_path, vec![0u8; SS]).unwrap();
        assert!(replay(&log_path, &img, "first").unwrap_err().to_string().contains("not a dm-log-writes log"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

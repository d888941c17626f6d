//! `probe worker io`: runs inside the container and does the I/O the host measures. Writes
//! `size` bytes in `block`-sized writes to a new file, then syncs it, timing the two phases
//! separately with CLOCK_MONOTONIC; the file is always removed before the worker exits.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::protocol::{Message, SyncMode, Target};
use crate::sys::clock::monotonic_ns;
use crate::sys::mountinfo;

/// O_DIRECT needs buffers, offsets and lengths aligned to the logical block size; 4 KiB
/// covers every disk and filesystem probe meets.
pub const DIRECT_ALIGN: u64 = 4096;

#[derive(Clone, Debug)]
pub struct Params {
    pub path: PathBuf,
    pub size: u64,
    pub block: u64,
    pub sync: SyncMode,
    /// Stop at each phase boundary until a byte arrives on stdin.
    pub pause: bool,
}

/// Checks sizes before anything touches the disk (the host calls it too, to refuse early).
pub fn check_sizes(size: u64, block: u64, sync: SyncMode) -> Result<()> {
    if block == 0 || size == 0 {
        bail!("--size and --block must be more than 0 bytes");
    }
    if size % block != 0 {
        bail!("--size ({size} bytes) must be a multiple of --block ({block} bytes), so every write is the same size");
    }
    if sync == SyncMode::Direct && block % DIRECT_ALIGN != 0 {
        bail!("--sync direct needs --block to be a multiple of {DIRECT_ALIGN} bytes (O_DIRECT alignment); got {block}");
    }
    Ok(())
}

/// Removes the file on every path out, so a failed or interrupted run leaves nothing behind.
struct Removed(PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub fn run(p: &Params, out: &mut impl Write, input: &mut impl BufRead) -> Result<()> {
    check_sizes(p.size, p.block, p.sync)?;
    let file = create(p)?;
    let guard = Removed(p.path.clone());
    let mut say = |m: Message| -> Result<()> {
        serde_json::to_writer(&mut *out, &m)?;
        out.write_all(b"\n")?;
        out.flush().context("writing to the host (stdout)")
    };
    say(Message::Ready(Box::new(target(&p.path, &file)?)))?;
    wait(p.pause, input)?;

    let (bytes, write_ns) = write_all(&file, p)?;
    say(Message::Written { bytes, write_ns })?;
    wait(p.pause, input)?;

    let sync_ns = sync(&file, p)?;
    say(Message::Synced { sync_ns })?;
    wait(p.pause, input)?;

    drop(file);
    drop(guard);
    say(Message::Done)
}

fn create(p: &Params) -> Result<File> {
    if let Some(dir) = p.path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_error("create directory", dir, &e))?;
    }
    let flags = if p.sync == SyncMode::Direct { libc::O_DIRECT } else { 0 };
    // create_new: a file left by someone else must never be overwritten or measured.
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(flags | libc::O_CLOEXEC)
        .open(&p.path)
        .map_err(|e| io_error("create", &p.path, &e))
}

fn target(path: &Path, file: &File) -> Result<Target> {
    let meta = file.metadata().with_context(|| format!("fstat {}", path.display()))?;
    let dev = meta.dev();
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    // A container without /proc is legal; the host then says the mount is unknown.
    let mounts = mountinfo::read(Path::new("/proc/self/mountinfo")).ok();
    let find = |p: &str| mounts.as_deref().and_then(|m| mountinfo::mount_of(m, p)).cloned();
    Ok(Target {
        path: canonical.display().to_string(),
        dev_major: libc::major(dev),
        dev_minor: libc::minor(dev),
        mount: find(&canonical.to_string_lossy()),
        root_mount: find("/"),
    })
}

/// Blocks until the host sends a byte. EOF means the host is gone: stop, remove the file.
fn wait(pause: bool, input: &mut impl BufRead) -> Result<()> {
    if !pause {
        return Ok(());
    }
    let got = input.fill_buf().context("reading the host's go-ahead on stdin")?.len();
    if got == 0 {
        bail!("the host closed stdin before the run finished; stopping and removing the file");
    }
    input.consume(1);
    Ok(())
}

/// Returns (bytes written, nanoseconds from the first write's call to the last one's return).
fn write_all(file: &File, p: &Params) -> Result<(u64, u64)> {
    // One extra alignment unit, then a slice starting on a 4 KiB boundary: what O_DIRECT
    // needs, without unsafe allocation. A non-zero pattern, so no layer can store it sparse.
    let block = p.block as usize;
    let align = DIRECT_ALIGN as usize;
    let backing = vec![0xA5u8; block + align];
    let off = backing.as_ptr().align_offset(align);
    let buf = &backing[off..off + block];
    let mut done = 0u64;
    let start = monotonic_ns();
    while done < p.size {
        let mut chunk = buf;
        while !chunk.is_empty() {
            // SAFETY: valid fd and a buffer of chunk.len() readable bytes.
            let n = unsafe { libc::write(file.as_raw_fd(), chunk.as_ptr().cast(), chunk.len()) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(io_error(&format!("write (after {done} bytes)"), &p.path, &e));
            }
            if n == 0 {
                bail!("write to {} returned 0 after {done} bytes: the filesystem accepts no more data", p.path.display());
            }
            chunk = &chunk[n as usize..];
            done += n as u64;
        }
    }
    Ok((done, monotonic_ns() - start))
}

fn sync(file: &File, p: &Params) -> Result<u64> {
    let start = monotonic_ns();
    let r = match p.sync {
        SyncMode::Fdatasync => file.sync_data(),
        SyncMode::Fsync => file.sync_all(),
        SyncMode::Direct | SyncMode::None => return Ok(0),
    };
    let ns = monotonic_ns() - start;
    r.map_err(|e| io_error(p.sync.name(), &p.path, &e))?;
    Ok(ns)
}

/// "create /mnt/testfile: Read-only file system (os error 30): <what to do>".
fn io_error(what: &str, path: &Path, e: &std::io::Error) -> anyhow::Error {
    let advice = match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => {
            "the target filesystem is full: free space there or pass a smaller --size"
        }
        Some(libc::EROFS) => "the target is mounted read-only: this storage mode cannot be written",
        Some(libc::EACCES) | Some(libc::EPERM) => {
            "the container's user may not write there (rootless volumes must belong to the rootless user)"
        }
        Some(libc::EINVAL) => "this filesystem refuses O_DIRECT: use --sync fdatasync",
        Some(libc::EEXIST) => "a file is already there: remove it, probe never overwrites",
        _ => "check the target filesystem (dmesg may say more)",
    };
    anyhow::anyhow!("{what} {}: {e}: {advice}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_checked() {
        assert!(check_sizes(8 << 20, 1 << 20, SyncMode::Direct).is_ok());
        assert!(check_sizes(0, 1, SyncMode::None).is_err());
        let e = check_sizes(10, 3, SyncMode::Fsync).unwrap_err().to_string();
        assert!(e.contains("multiple of --block"), "{e}");
        assert!(check_sizes(1000, 1000, SyncMode::Direct).unwrap_err().to_string().contains("O_DIRECT"));
    }

    #[test]
    fn writes_syncs_reports_and_removes() {
        let dir = std::env::temp_dir().join(format!("probe-io-worker-test-{}", std::process::id()));
        let path = dir.join("f");
        let p = Params { path: path.clone(), size: 64 << 10, block: 16 << 10, sync: SyncMode::Fdatasync, pause: true };
        let mut out = Vec::new();
        let mut input: &[u8] = b"...";
        run(&p, &mut out, &mut input).unwrap();
        let msgs: Vec<Message> = String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert!(matches!(&msgs[0], Message::Ready(t) if t.path.ends_with("/f") && t.mount.is_some()));
        assert!(matches!(msgs[1], Message::Written { bytes: 65536, .. }));
        assert!(matches!(msgs[2], Message::Synced { sync_ns } if sync_ns > 0));
        assert_eq!(msgs[3], Message::Done);
        assert!(!path.exists(), "the worker removes its file");
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn host_gone_stops_and_removes() {
        let dir = std::env::temp_dir().join(format!("probe-io-worker-eof-{}", std::process::id()));
        let path = dir.join("f");
        let p = Params { path: path.clone(), size: 4096, block: 4096, sync: SyncMode::None, pause: true };
        let mut input: &[u8] = b"";
        let e = run(&p, &mut Vec::new(), &mut input).unwrap_err().to_string();
        assert!(e.contains("closed stdin"), "{e}");
        assert!(!path.exists());
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn existing_file_is_never_overwritten() {
        let dir = std::env::temp_dir().join(format!("probe-io-worker-excl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        std::fs::write(&path, b"keep").unwrap();
        let p = Params { path: path.clone(), size: 4096, block: 4096, sync: SyncMode::None, pause: false };
        let e = run(&p, &mut Vec::new(), &mut &b""[..]).unwrap_err().to_string();
        assert!(e.contains("already there") && e.contains("os error 17"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"keep");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! The child → parent report pipe: fixed-size binary records, one per phase edge, written by
//! the container's init until execve. Each record is smaller than PIPE_BUF, so every write(2)
//! is atomic (pipe(7)) and a read of exactly one record never sees a torn one. The write end
//! is O_CLOEXEC: end-of-file on the read end is the moment execve succeeded.

use std::fmt::{self, Write as _};
use std::os::fd::RawFd;

use crate::native::timing::{now_ns, CounterGroup, Snapshot, Target, NCOUNTERS};
use crate::ground::phase::Phase;

const MARK: u32 = 1;
const FAIL: u32 = 2;
const DETAIL_LEN: usize = 24;
const MSG_LEN: usize = 256;

/// Exit status of a container init that failed before execve (the error travels in a record).
pub const SETUP_FAILED_EXIT: i32 = 125;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Record {
    kind: u32,
    phase: u32,
    t_ns: u64,
    /// Clock and counter reads of this edge.
    overhead_ns: u64,
    /// The pipe write of the previous edge (only known after it returned).
    prev_write_ns: u64,
    snap_valid: u32,
    _pad: u32,
    values: [u64; NCOUNTERS],
    detail: [u8; DETAIL_LEN],
    msg: [u8; MSG_LEN],
}

const _: () = assert!(std::mem::size_of::<Record>() <= libc::PIPE_BUF);

impl Record {
    fn zeroed() -> Record {
        Record {
            kind: 0,
            phase: 0,
            t_ns: 0,
            overhead_ns: 0,
            prev_write_ns: 0,
            snap_valid: 0,
            _pad: 0,
            values: [0; NCOUNTERS],
            detail: [0; DETAIL_LEN],
            msg: [0; MSG_LEN],
        }
    }

    pub fn phase(&self) -> Phase {
        Phase::ALL
            .get(self.phase as usize)
            .copied()
            .unwrap_or(Phase::Unattributed)
    }

    pub fn t_ns(&self) -> u64 {
        self.t_ns
    }

    pub fn overhead_ns(&self) -> u64 {
        self.overhead_ns
    }

    pub fn prev_write_ns(&self) -> u64 {
        self.prev_write_ns
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            valid: self.snap_valid != 0,
            values: self.values,
        }
    }

    pub fn detail(&self) -> &str {
        cstr_field(&self.detail)
    }

    /// The error text of a FAIL record.
    pub fn failure(&self) -> Option<&str> {
        (self.kind == FAIL).then(|| cstr_field(&self.msg))
    }
}

fn cstr_field(b: &[u8]) -> &str {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    std::str::from_utf8(&b[..end]).unwrap_or("?")
}

/// A fmt::Write into a fixed buffer that truncates instead of allocating.
struct FixedBuf<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl fmt::Write for FixedBuf<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Keep one byte for the terminating NUL.
        let room = self.buf.len() - 1 - self.len;
        let mut n = s.len().min(room);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

fn fill(dst: &mut [u8], args: fmt::Arguments<'_>) {
    let _ = FixedBuf { buf: dst, len: 0 }.write_fmt(args);
}

/// The container init's side: marks phase edges and reports a fatal error.
pub struct Reporter {
    fd: RawFd,
    group: Option<CounterGroup>,
    prev_write_ns: u64,
}

impl Reporter {
    /// Opens the init's own counter group when `timing`; its cost lands in the first edge's
    /// overhead because the first mark is taken before it.
    pub fn new(fd: RawFd, timing: bool) -> Reporter {
        Reporter {
            fd,
            group: timing
                .then(|| CounterGroup::open(Target::SelfNow))
                .flatten(),
            prev_write_ns: 0,
        }
    }

    /// Marks the start of `phase` now.
    pub fn mark(&mut self, phase: Phase, detail: &str) {
        let t = now_ns();
        let snap = self
            .group
            .as_ref()
            .map(CounterGroup::snapshot)
            .unwrap_or_default();
        let mut rec = Record::zeroed();
        rec.kind = MARK;
        rec.phase = phase as u32;
        rec.t_ns = t;
        rec.snap_valid = snap.valid as u32;
        rec.values = snap.values;
        fill(&mut rec.detail, format_args!("{detail}"));
        rec.prev_write_ns = self.prev_write_ns;
        let t1 = now_ns();
        rec.overhead_ns = t1 - t;
        write_record(self.fd, &rec);
        self.prev_write_ns = now_ns() - t1;
    }

    /// Sends `err` to the parent and exits: nothing after a failed step may run.
    pub fn fail(&mut self, phase: Phase, err: &dyn fmt::Display) -> ! {
        let mut rec = Record::zeroed();
        rec.kind = FAIL;
        rec.phase = phase as u32;
        rec.t_ns = now_ns();
        fill(&mut rec.msg, format_args!("{err}"));
        write_record(self.fd, &rec);
        // SAFETY: _exit skips atexit handlers and stdio flushing that belong to the parent's copy.
        unsafe { libc::_exit(SETUP_FAILED_EXIT) }
    }
}

fn write_record(fd: RawFd, rec: &Record) {
    let size = std::mem::size_of::<Record>();
    // SAFETY: rec is a plain repr(C) value of `size` bytes. A failed write means the parent
    // is gone; the init then carries on and the kernel tears it down with its namespaces.
    unsafe { libc::write(fd, (rec as *const Record).cast(), size) };
}

/// Reads one record; Ok(None) at end of file (execve succeeded, or the init died).
pub fn read_record(fd: RawFd) -> std::io::Result<Option<Record>> {
    let mut rec = Record::zeroed();
    let size = std::mem::size_of::<Record>();
    let mut got = 0;
    while got < size {
        // SAFETY: writing into the tail of a local repr(C) value; every bit pattern is valid.
        let n = unsafe {
            libc::read(
                fd,
                (&mut rec as *mut Record).cast::<u8>().add(got).cast(),
                size - got,
            )
        };
        match n {
            0 if got == 0 => return Ok(None),
            0 => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "torn report record",
                ))
            }
            n if n > 0 => got += n as usize,
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(Some(rec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_buffer_truncates_on_char_boundary() {
        let mut b = [0u8; 6];
        fill(&mut b, format_args!("ab{}", "éé"));
        assert_eq!(cstr_field(&b), "abé");
    }

    #[test]
    fn records_round_trip_through_a_pipe() {
        let (r, w) = nix::unistd::pipe().unwrap();
        use std::os::fd::AsRawFd;
        let mut rep = Reporter::new(w.as_raw_fd(), false);
        rep.mark(Phase::Mounts, "pivot_root");
        rep.mark(Phase::Exec, "execve");
        drop(rep);
        drop(w);
        let a = read_record(r.as_raw_fd()).unwrap().unwrap();
        assert_eq!((a.phase(), a.detail()), (Phase::Mounts, "pivot_root"));
        assert!(!a.snapshot().valid && a.failure().is_none());
        let b = read_record(r.as_raw_fd()).unwrap().unwrap();
        assert_eq!(b.phase(), Phase::Exec);
        assert!(b.t_ns() >= a.t_ns());
        assert!(read_record(r.as_raw_fd()).unwrap().is_none());
    }
}

//! The bytes of one perf ring-buffer record, for the sample layout probe asks for:
//! `PERF_SAMPLE_IDENTIFIER | TID | TIME | CPU | RAW`, with `CALLCHAIN` (before RAW) for the
//! events that record one (perf_event_open(2), "MMAP layout").
//! IDENTIFIER comes first in the record whatever else is set, which is what lets several
//! events share one ring buffer and still be told apart.

/// perf_event_header.type values (include/uapi/linux/perf_event.h).
pub const RECORD_LOST: u32 = 2;
pub const RECORD_THROTTLE: u32 = 5;
pub const RECORD_SAMPLE: u32 = 9;

/// One sample, borrowing the tracepoint payload from the ring (or a copy of it).
#[derive(Debug, PartialEq, Eq)]
pub struct RawSample<'a> {
    /// The event's kernel id (PERF_EVENT_IOC_ID), not the tracepoint id.
    pub id: u64,
    /// Thread group id (the "process id" userspace sees).
    pub pid: u32,
    pub tid: u32,
    /// Nanoseconds of the clock chosen by `clockid` (CLOCK_MONOTONIC here).
    pub time: u64,
    pub cpu: u32,
    /// The tracepoint record, common fields included; empty for software events (the kernel
    /// writes a 4-byte zero placeholder for those, which is dropped here).
    pub raw: &'a [u8],
    /// The call chain's instruction pointers (native-endian u64s, perf's context markers
    /// included); empty when the event records none.
    pub callchain: &'a [u8],
}

#[derive(Debug, PartialEq, Eq)]
pub enum PerfRecord<'a> {
    Sample(RawSample<'a>),
    /// The kernel could not write `lost` records for the event `id`: the ring was full.
    Lost { id: u64, lost: u64 },
    /// The kernel throttled an event (too many samples per tick); samples are missing.
    Throttle { id: u64 },
    /// Any other record type (none is requested; kept so parsing never guesses).
    Other(u32),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("perf record type {ty}: {len} bytes, too short for {what}")]
pub struct RecordError {
    pub ty: u32,
    pub len: usize,
    pub what: &'static str,
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    ty: u32,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], RecordError> {
        let s = self.buf.get(self.pos..self.pos + n).ok_or(RecordError {
            ty: self.ty,
            len: self.buf.len(),
            what,
        })?;
        self.pos += n;
        Ok(s)
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, RecordError> {
        Ok(u64::from_ne_bytes(self.take(8, what)?.try_into().expect("8 bytes")))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, RecordError> {
        Ok(u32::from_ne_bytes(self.take(4, what)?.try_into().expect("4 bytes")))
    }
}

/// Parses a record body (everything after perf_event_header) of header type `ty`, of an
/// event without a call chain.
pub fn parse(ty: u32, body: &[u8]) -> Result<PerfRecord<'_>, RecordError> {
    parse_with(ty, body, &|_| false)
}

/// Parses a record body; `callchain` says which event ids sample a call chain.
pub fn parse_with<'a>(ty: u32, body: &'a [u8], callchain: &dyn Fn(u64) -> bool) -> Result<PerfRecord<'a>, RecordError> {
    let mut c = Cursor { buf: body, pos: 0, ty };
    match ty {
        RECORD_SAMPLE => {
            let id = c.u64("sample id")?;
            let pid = c.u32("pid")?;
            let tid = c.u32("tid")?;
            let time = c.u64("time")?;
            let cpu = c.u32("cpu")?;
            c.u32("cpu reserved")?;
            let chain = if callchain(id) {
                let nr = c.u64("callchain length")? as usize;
                c.take(nr.checked_mul(8).ok_or(RecordError { ty, len: body.len(), what: "callchain" })?, "callchain")?
            } else {
                &[]
            };
            let size = c.u32("raw size")? as usize;
            let raw = c.take(size, "raw data")?;
            // A software event's RAW is the kernel's {size = 4, data = 0} placeholder.
            let raw = if size == 4 && raw == [0; 4] { &raw[..0] } else { raw };
            Ok(PerfRecord::Sample(RawSample { id, pid, tid, time, cpu, raw, callchain: chain }))
        }
        RECORD_LOST => Ok(PerfRecord::Lost {
            id: c.u64("lost id")?,
            lost: c.u64("lost count")?,
        }),
        RECORD_THROTTLE => {
            c.u64("throttle time")?;
            Ok(PerfRecord::Throttle { id: c.u64("throttle id")? })
        }
        other => Ok(PerfRecord::Other(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_body(id: u64, pid: u32, tid: u32, time: u64, cpu: u32, raw: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&id.to_ne_bytes());
        b.extend_from_slice(&pid.to_ne_bytes());
        b.extend_from_slice(&tid.to_ne_bytes());
        b.extend_from_slice(&time.to_ne_bytes());
        b.extend_from_slice(&cpu.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(&(raw.len() as u32).to_ne_bytes());
        b.extend_from_slice(raw);
        b
    }

    #[test]
    fn parses_tracepoint_sample() {
        let body = sample_body(7, 100, 101, 123_456_789, 1, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let PerfRecord::Sample(s) = parse(RECORD_SAMPLE, &body).unwrap() else { panic!() };
        assert_eq!((s.id, s.pid, s.tid, s.time, s.cpu), (7, 100, 101, 123_456_789, 1));
        assert_eq!(s.raw.len(), 12);
    }

    #[test]
    fn parses_a_callchain_before_the_raw_data() {
        let mut body = sample_body(7, 100, 101, 5, 1, &[9, 9, 9, 9]);
        // The chain goes between cpu and raw: nr, then the ips.
        let at = 8 + 8 + 8 + 8;
        let chain: Vec<u8> = [2u64, 0xffff_ffff_ffff_ff80, 0xffff_ffff_8100_0000].iter().flat_map(|v| v.to_ne_bytes()).collect();
        body.splice(at..at, chain);
        let PerfRecord::Sample(s) = parse_with(RECORD_SAMPLE, &body, &|id| id == 7).unwrap() else { panic!() };
        assert_eq!((s.callchain.len(), s.raw), (16, &[9u8, 9, 9, 9][..]));
        let plain = sample_body(7, 1, 1, 5, 0, &[1, 2, 3, 4]);
        let PerfRecord::Sample(s) = parse(RECORD_SAMPLE, &plain).unwrap() else { panic!() };
        assert!(s.callchain.is_empty());
    }

    #[test]
    fn software_event_placeholder_is_empty() {
        let body = sample_body(3, 1, 1, 5, 0, &[0, 0, 0, 0]);
        let PerfRecord::Sample(s) = parse(RECORD_SAMPLE, &body).unwrap() else { panic!() };
        assert!(s.raw.is_empty());
    }

    #[test]
    fn parses_lost_and_throttle() {
        let mut b = 9u64.to_ne_bytes().to_vec();
        b.extend_from_slice(&42u64.to_ne_bytes());
        assert_eq!(parse(RECORD_LOST, &b).unwrap(), PerfRecord::Lost { id: 9, lost: 42 });
        let mut t = 1000u64.to_ne_bytes().to_vec();
        t.extend_from_slice(&9u64.to_ne_bytes());
        t.extend_from_slice(&0u64.to_ne_bytes());
        assert_eq!(parse(RECORD_THROTTLE, &t).unwrap(), PerfRecord::Throttle { id: 9 });
    }

    #[test]
    fn short_record_is_an_error_not_garbage() {
        let body = sample_body(7, 100, 101, 1, 0, &[1, 2, 3, 4, 5, 6, 7, 8]);
        let err = parse(RECORD_SAMPLE, &body[..body.len() - 3]).unwrap_err();
        assert_eq!(err.what, "raw data");
    }

    /// A sched_process_exec sample as read from a ring buffer on kernel 6.18.
    #[test]
    fn parses_captured_exec_record() {
        let body = include_bytes!("../../tests/fixtures/trace/sched_process_exec.sample");
        let PerfRecord::Sample(s) = parse(RECORD_SAMPLE, body).unwrap() else { panic!() };
        let fmt = crate::trace::format::EventFormat::parse(
            "sched/sched_process_exec",
            include_str!("../../tests/fixtures/trace/sched_process_exec.format"),
        )
        .unwrap();
        let fields = fmt.decode(s.raw);
        let filename = fields.iter().find(|(n, _)| n == "filename").unwrap();
        assert_eq!(filename.1.as_str(), Some("/bin/true"));
        let pid = fields.iter().find(|(n, _)| n == "pid").unwrap();
        assert_eq!(pid.1.as_u64(), Some(s.pid as u64));
    }
}

//! A system-wide tracing session: every requested tracepoint opened with perf_event_open on
//! every online CPU, all of one CPU's events writing into that CPU's single mmap ring.
//!
//! Started once, drained as often as wanted (per rep, or in a loop while a command runs).
//! Dropping the session closes every fd and unmaps every ring (Sampler/Counter own them).

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::rc::Rc;

use perf_event::events::{Software, Tracepoint};
use perf_event::{Builder, Clock, Counter, SampleFlag, Sampler};

use super::attribution::Instruments;
use super::event::{Event, FAULTS_PER_SAMPLE, PAGE_FAULT};
use super::format::{EventFormat, FormatError, Value};
use super::record::{self, PerfRecord};

/// `_IO('$', 5)` from include/uapi/linux/perf_event.h; neither libc nor perf-event2 exports it.
const PERF_EVENT_IOC_SET_OUTPUT: libc::c_ulong = 0x2405;

/// Ring size per CPU. A traced `docker run` writes ~5k records (~0.5 MiB) in a rep that is
/// never drained mid-way; 50 concurrent starts under `probe trace` (copied out every 250 ms)
/// peak far below this. Must be a power of two (perf_event_open(2)).
pub const RING_BYTES: usize = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("tracefs is not mounted (mount it: mount -t tracefs nodev /sys/kernel/tracing)")]
    NoTracefs,
    #[error("{}: permission denied (system-wide tracing needs root: run with sudo)", .0.join("events").display())]
    NotPermitted(std::path::PathBuf),
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error("perf_event_open({event}, cpu {cpu}): {source}{hint}")]
    Open {
        event: String,
        cpu: usize,
        source: std::io::Error,
        hint: &'static str,
    },
    #[error("perf ring for cpu {cpu}: {op}: {source}")]
    Ring {
        cpu: usize,
        op: &'static str,
        source: std::io::Error,
    },
    #[error("online CPUs: {0}")]
    Cpus(std::io::Error),
    #[error("none of the requested tracepoints exists in this kernel")]
    NoEvents,
}

impl TraceError {
    /// This machine or user cannot trace at all (as opposed to a bad request, like an
    /// event list naming nothing that exists): callers fall back to totals only.
    pub fn is_unavailable(&self) -> bool {
        match self {
            TraceError::NoTracefs | TraceError::NotPermitted(_) => true,
            // tracefs mounted with a mode or gid that lets events/ be listed, not read.
            TraceError::Format(FormatError::Read { source, .. }) => source.kind() == std::io::ErrorKind::PermissionDenied,
            TraceError::Open { source, .. } => matches!(
                source.raw_os_error(),
                Some(libc::EACCES | libc::EPERM | libc::ENOENT | libc::EOPNOTSUPP | libc::ENOSYS)
            ),
            _ => false,
        }
    }
}

/// What a session records.
#[derive(Clone, Debug)]
pub struct Options {
    /// `system/name` tracepoints.
    pub tracepoints: Vec<String>,
    /// Also sample page faults (a software event): one sample per this many faults.
    pub page_fault_period: Option<u64>,
    /// Record the kernel call chain of every `sched_switch` (where a task left the CPU).
    /// The kernel unwinds the stack at each switch: a cost per context switch, so off
    /// unless asked for (`probe trace --kernel-stacks`).
    pub switch_stacks: bool,
}

enum Source {
    Tracepoint(Rc<EventFormat>),
    /// With the sampling period: each sample stands for that many faults.
    PageFaults(u64),
}

struct Ring {
    cpu: usize,
    sampler: Sampler,
    /// Events whose output was redirected into `sampler`'s ring; held to keep them open.
    followers: Vec<Counter>,
    /// Samples copied out but newer than the last drain's cut, each framed as (length u32,
    /// body).
    held: Vec<u8>,
    /// How much of `held` the current drain has handed out.
    consumed: usize,
    /// The most `held` has reached since `take_fill`.
    fill: usize,
    /// Records the kernel dropped on this CPU (ring full).
    lost: u64,
}

enum RawSource<'a> {
    Tracepoint(&'a EventFormat),
    PageFaults(u64),
}

/// One sample as it comes out of a ring, undecoded: a consumer looks at who it is from
/// (cheap) before paying for the decode of its fields.
pub struct RawEvent<'a> {
    pub time_ns: u64,
    pub cpu: u32,
    pub pid: u32,
    pub tid: u32,
    source: RawSource<'a>,
    raw: &'a [u8],
    callchain: &'a [u8],
}

impl RawEvent<'_> {
    /// `system/name` of the tracepoint, or [`PAGE_FAULT`].
    pub fn name(&self) -> &str {
        match &self.source {
            RawSource::Tracepoint(f) => &f.name,
            RawSource::PageFaults(_) => PAGE_FAULT,
        }
    }

    /// One integer field, without decoding the others.
    pub fn int(&self, field: &str) -> Option<i64> {
        match &self.source {
            RawSource::Tracepoint(f) => f.decode_one(self.raw, field).and_then(|v| v.as_i64()),
            RawSource::PageFaults(_) => None,
        }
    }

    pub fn decode(&self) -> Event {
        let fields = match &self.source {
            RawSource::Tracepoint(f) => f.decode(self.raw).into_iter().collect(),
            RawSource::PageFaults(period) => [(FAULTS_PER_SAMPLE.to_string(), Value::Int(*period as i64))].into(),
        };
        let callchain = self.callchain.chunks_exact(8).map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes"))).collect();
        Event { time_ns: self.time_ns, cpu: self.cpu, pid: self.pid, tid: self.tid, name: self.name().to_string(), fields, callchain }
    }
}

pub struct Session {
    rings: Vec<Ring>,
    sources: HashMap<u64, Source>,
    /// Events whose samples carry a kernel call chain.
    chained: std::collections::HashSet<u64>,
    /// Requested tracepoints this kernel does not have (e.g. `fuse/*` before fuse loads).
    pub missing: Vec<String>,
    throttled: u64,
    malformed: u64,
    /// Whether the events are enabled (recording).
    enabled: bool,
}

fn builder<'a>(cpu: usize) -> Builder<'a> {
    let mut b = Builder::new(Software::DUMMY);
    b.one_cpu(cpu)
        .any_pid()
        // Period 1 is never throttled: perf_swevent_overflow() only throttles from the
        // second overflow of one event on, and a period-1 event overflows exactly once.
        // (Page faults use a longer period; a throttle would be counted, not hidden.)
        .sample_period(1)
        .sample(SampleFlag::IDENTIFIER | SampleFlag::TID | SampleFlag::TIME | SampleFlag::CPU | SampleFlag::RAW)
        // Every event sharing a ring must use the same clock (perf_event_set_output()).
        .clockid(Clock::MONOTONIC)
        // Tracepoints fire in kernel context; with the builder's default exclude_kernel
        // they would all be filtered out.
        .include_kernel()
        .wakeup_watermark(RING_BYTES / 4);
    b
}

/// CPUs from /sys/devices/system/cpu/online ("0-1,4").
pub fn online_cpus() -> std::io::Result<Vec<usize>> {
    parse_cpu_list(&std::fs::read_to_string("/sys/devices/system/cpu/online")?)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "unparseable cpu list"))
}

fn parse_cpu_list(s: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<usize>().ok()?..=b.parse().ok()?),
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

fn open_hint(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => {
            " (needs root, or kernel.perf_event_paranoid ≤ -1 for system-wide tracepoints)"
        }
        Some(libc::ENOENT) | Some(libc::EOPNOTSUPP) => " (this kernel has no perf support for it)",
        _ => "",
    }
}

impl Session {
    /// Opens and enables everything. Tracepoints the kernel lacks are listed in `missing`;
    /// any other failure is an error and nothing stays open.
    pub fn open(tracefs: &Path, opts: &Options) -> Result<Self, TraceError> {
        let mut formats = Vec::new();
        let mut missing = Vec::new();
        for name in &opts.tracepoints {
            match EventFormat::load(tracefs, name) {
                Ok(f) => formats.push(Rc::new(f)),
                Err(FormatError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    missing.push(name.clone())
                }
                Err(e) => return Err(e.into()),
            }
        }
        if formats.is_empty() && opts.page_fault_period.is_none() {
            return Err(TraceError::NoEvents);
        }
        let mut sources = HashMap::new();
        let mut chained = std::collections::HashSet::new();
        let mut rings = Vec::new();
        for cpu in online_cpus().map_err(TraceError::Cpus)? {
            let mut counters: Vec<Counter> = Vec::new();
            for f in &formats {
                let mut b = builder(cpu);
                b.event(Tracepoint::with_id(f.id));
                let stacks = opts.switch_stacks && f.name == "sched/sched_switch";
                if stacks {
                    // Where in the kernel the task blocked; its user stack is not needed.
                    b.sample(SampleFlag::IDENTIFIER | SampleFlag::TID | SampleFlag::TIME | SampleFlag::CPU | SampleFlag::CALLCHAIN | SampleFlag::RAW)
                        .exclude_callchain_user(true)
                        .sample_max_stack(32);
                }
                let c = open_one(&mut b, &f.name, cpu)?;
                if stacks {
                    chained.insert(c.id());
                }
                sources.insert(c.id(), Source::Tracepoint(f.clone()));
                counters.push(c);
            }
            if let Some(period) = opts.page_fault_period {
                let c = open_one(builder(cpu).event(Software::PAGE_FAULTS).sample_period(period), PAGE_FAULT, cpu)?;
                sources.insert(c.id(), Source::PageFaults(period));
                counters.push(c);
            }
            let mut followers = counters.split_off(1);
            let sampler = counters
                .pop()
                .expect("at least one event")
                .sampled(RING_BYTES)
                .map_err(|source| TraceError::Ring { cpu, op: "mmap", source })?;
            for f in &followers {
                // SAFETY: both fds are open perf events owned by this function.
                let r = unsafe { libc::ioctl(f.as_raw_fd(), PERF_EVENT_IOC_SET_OUTPUT as _, sampler.as_raw_fd()) };
                if r != 0 {
                    return Err(TraceError::Ring {
                        cpu,
                        op: "PERF_EVENT_IOC_SET_OUTPUT",
                        source: std::io::Error::last_os_error(),
                    });
                }
            }
            rings.push(Ring {
                cpu,
                sampler,
                followers: std::mem::take(&mut followers),
                held: Vec::new(),
                consumed: 0,
                fill: 0,
                lost: 0,
            });
        }
        let mut session = Session {
            rings,
            sources,
            chained,
            missing,
            throttled: 0,
            malformed: 0,
            enabled: false,
        };
        session.set_enabled(true)?;
        Ok(session)
    }

    /// Starts or pauses recording. A paused event is off its CPU's event list, so the
    /// tracepoints it watches cost nothing but the registration (for syscall tracepoints,
    /// the slow syscall path: ~40 ns per syscall). Asking for the current state is free.
    pub fn set_enabled(&mut self, on: bool) -> Result<(), TraceError> {
        if on == self.enabled {
            return Ok(());
        }
        for ring in &mut self.rings {
            let cpu = ring.cpu;
            let counters = std::iter::once(&mut *ring.sampler as &mut Counter).chain(ring.followers.iter_mut());
            for c in counters {
                let r = if on { c.enable() } else { c.disable() };
                r.map_err(|source| TraceError::Ring {
                    cpu,
                    op: if on { "enable" } else { "disable" },
                    source,
                })?;
            }
        }
        self.enabled = on;
        Ok(())
    }

    /// Stops recording; what is in the rings can still be drained.
    pub fn stop(&mut self) -> Result<(), TraceError> {
        self.set_enabled(false)
    }

    /// Feeds `f` every record the rings hold, in time order, up to `until` (CLOCK_MONOTONIC
    /// ns; None: everything). Each ring is time-ordered but they are read one after the other,
    /// so a record written on one CPU while another is being read can be older than what was
    /// just read there: records after `until` (the time the caller took before draining) wait
    /// for the next call, where they merge in order. Only one drain's worth is ever held.
    pub fn drain_with(&mut self, until: Option<u64>, f: &mut dyn FnMut(&RawEvent<'_>)) {
        self.copy_out();
        // (time, ring, offset of the body, its length) for every held sample, merged.
        let mut order: Vec<(u64, usize, usize, usize)> = Vec::new();
        for (i, ring) in self.rings.iter_mut().enumerate() {
            let mut pos = 0;
            let mut keep_from = ring.held.len();
            while pos + 4 <= ring.held.len() {
                let len = u32::from_ne_bytes(ring.held[pos..pos + 4].try_into().expect("4 bytes")) as usize;
                let body = &ring.held[pos + 4..pos + 4 + len];
                let time = match record::parse_with(record::RECORD_SAMPLE, body, &|id| self.chained.contains(&id)) {
                    Ok(PerfRecord::Sample(s)) => s.time,
                    _ => 0,
                };
                if until.is_some_and(|u| time > u) {
                    keep_from = pos;
                    break;
                }
                order.push((time, i, pos + 4, len));
                pos += 4 + len;
            }
            ring.consumed = keep_from;
        }
        order.sort_unstable_by_key(|&(t, i, pos, _)| (t, i, pos));
        for (_, i, pos, len) in order {
            let body = &self.rings[i].held[pos..pos + len];
            let s = match record::parse_with(record::RECORD_SAMPLE, body, &|id| self.chained.contains(&id)) {
                Ok(PerfRecord::Sample(s)) => s,
                _ => {
                    self.malformed += 1;
                    continue;
                }
            };
            let source = match self.sources.get(&s.id) {
                Some(Source::Tracepoint(fmt)) => RawSource::Tracepoint(fmt),
                Some(Source::PageFaults(period)) => RawSource::PageFaults(*period),
                None => {
                    self.malformed += 1;
                    continue;
                }
            };
            f(&RawEvent { time_ns: s.time, cpu: s.cpu, pid: s.pid, tid: s.tid, source, raw: s.raw, callchain: s.callchain });
        }
        for ring in &mut self.rings {
            ring.held.drain(..ring.consumed);
            ring.consumed = 0;
            // An emptied buffer keeps its capacity, ~1.5 MB per CPU after a docker rep, which
            // stays resident and is copied into every process probe clones (each native
            // rep's init) until the next fill: free it.
            if ring.held.is_empty() {
                ring.held = Vec::new();
            }
        }
    }

    /// Moves what the kernel rings hold into probe's memory, undecoded, until the next
    /// drain: empties the rings (a full one drops records) when the caller has long work to
    /// do before it can drain again.
    pub fn copy_out(&mut self) {
        for ring in &mut self.rings {
            while let Some(rec) = ring.sampler.next_record() {
                let body = rec.to_contiguous();
                match rec.ty() {
                    record::RECORD_SAMPLE => {
                        ring.held.extend_from_slice(&(body.len() as u32).to_ne_bytes());
                        ring.held.extend_from_slice(&body);
                    }
                    ty => match record::parse(ty, &body) {
                        Ok(PerfRecord::Lost { lost, .. }) => ring.lost += lost,
                        Ok(PerfRecord::Throttle { .. }) => self.throttled += 1,
                        Ok(_) => {}
                        Err(_) => self.malformed += 1,
                    },
                }
            }
            ring.fill = ring.fill.max(ring.held.len());
        }
    }

    /// Takes every record still in the rings, decoded and sorted by time.
    pub fn drain(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        self.drain_with(None, &mut |r| events.push(r.decode()));
        events
    }

    /// The most bytes any ring has held at once since the last call: how close the rings
    /// came to overflowing, for pacing the drains.
    pub fn take_fill(&mut self) -> usize {
        self.rings.iter_mut().map(|r| std::mem::take(&mut r.fill)).max().unwrap_or(0)
    }

    /// Which instruments behind the slice statistics are recording.
    pub fn instruments(&self) -> Instruments {
        let sources = || self.sources.values();
        Instruments {
            sched_switch: sources().any(|s| matches!(s, Source::Tracepoint(f) if f.name == "sched/sched_switch")),
            page_faults: sources().any(|s| matches!(s, Source::PageFaults(_))),
        }
    }

    /// The rings' fds: each polls readable once its ring is a quarter full.
    pub fn ring_fds(&self) -> Vec<std::os::fd::RawFd> {
        self.rings.iter().map(|r| r.sampler.as_raw_fd()).collect()
    }

    /// Records the kernel dropped because a ring was full, since the session opened.
    pub fn lost(&self) -> u64 {
        self.rings.iter().map(|r| r.lost).sum()
    }

    /// The same per CPU: (cpu, records lost).
    pub fn lost_per_cpu(&self) -> Vec<(usize, u64)> {
        self.rings.iter().map(|r| (r.cpu, r.lost)).collect()
    }

    /// Throttle notices (samples dropped for exceeding perf_event_max_sample_rate).
    pub fn throttled(&self) -> u64 {
        self.throttled
    }

    /// Records that could not be parsed or matched to an event.
    pub fn malformed(&self) -> u64 {
        self.malformed
    }
}

fn open_one(b: &mut Builder, name: &str, cpu: usize) -> Result<Counter, TraceError> {
    b.build().map_err(|source| TraceError::Open {
        event: name.to_string(),
        cpu,
        hint: open_hint(&source),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-1\n"), Some(vec![0, 1]));
        assert_eq!(parse_cpu_list("0,2-3,7"), Some(vec![0, 2, 3, 7]));
        assert_eq!(parse_cpu_list("x"), None);
    }
}

//! `probe startup --breakdown` for engines: one tracing session for the whole run, drained
//! around every rep; engine reps get their wall time cut into phases.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::rc::Rc;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::trace::attribution::{self, Attribution, Window};
use crate::trace::critical::{CriticalPath, Tracker};
use crate::trace::session::Session;
use crate::sys::kallsyms::Kallsyms;
use crate::ground::RuntimeKind;
use crate::measure::runner::{RepObserver, RuntimeResult};
use crate::measure::Sample;

/// One traced rep, kept for outlier explanations and the timeline.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RepTrace {
    pub runtime: RuntimeKind,
    /// `Sample::start_mono_ns` of the rep: how results find their trace.
    pub start_mono_ns: u64,
    pub attribution: Attribution,
    /// Who the rep waited on, instant by instant.
    pub critical: CriticalPath,
    /// Records the kernel dropped during this rep (ring full): its phases are then suspect.
    pub lost: u64,
}

pub struct StartupTracer {
    session: Session,
    /// With `--kernel-stacks`: names the switch-out call chains (kernel wait sites).
    syms: Option<Rc<Kallsyms>>,
    /// The traced reps so far, as JSON, one after the other, until [`StartupTracer::finish`].
    /// A docker rep's critical path is ~1 MB of steps. Held in probe's heap, every native
    /// start after it paid for them: clone3 copies the parent's page tables and marks its
    /// pages copy-on-write, and the child's execve tears the copy down. A memfd is outside
    /// the address space a clone copies (measured side by side, 15 docker reps, load ~4:
    /// native's median with/without --breakdown 1.375× with the reps in the heap, 1.087× here).
    spill: File,
    /// Length of each rep's JSON in `spill`, in order.
    spilled: Vec<usize>,
    /// Every traced rep, once [`StartupTracer::finish`] has read them back.
    pub reps: Vec<RepTrace>,
}

impl StartupTracer {
    /// `syms`: also record switch-out stacks and name the wait sites with these symbols.
    pub fn start(syms: Option<Kallsyms>) -> anyhow::Result<Self> {
        let mut opts = crate::trace::critical_options();
        opts.switch_stacks = syms.is_some();
        Ok(StartupTracer {
            session: crate::trace::open(&opts)?,
            syms: syms.map(Rc::new),
            spill: crate::sys::memfd::create("probe-rep-traces").context("memfd_create for the traced reps")?,
            spilled: Vec::new(),
            reps: Vec::new(),
        })
    }

    /// After the last rep: reads the traced reps back into `reps`.
    pub fn finish(&mut self) -> anyhow::Result<()> {
        self.spill.seek(SeekFrom::Start(0)).context("rewinding the traced reps' memfd")?;
        let mut buf = Vec::new();
        for &len in &self.spilled {
            buf.resize(len, 0);
            self.spill.read_exact(&mut buf).context("reading a traced rep back from its memfd")?;
            self.reps.push(serde_json::from_slice(&buf).context("decoding a traced rep written by this run")?);
        }
        self.spilled.clear();
        self.spill.set_len(0).context("emptying the traced reps' memfd")?;
        Ok(())
    }

    /// Records lost over the whole run (reported even when no rep was traced).
    pub fn lost(&self) -> u64 {
        self.session.lost()
    }

    pub fn trace_of(&self, sample: &Sample) -> Option<&RepTrace> {
        self.reps.iter().find(|r| r.start_mono_ns == sample.start_mono_ns)
    }
}

impl RepObserver for StartupTracer {
    fn before_rep(&mut self, runtime: RuntimeKind) -> anyhow::Result<()> {
        // Only engine and OCI runtime reps are cut from the trace; native times itself, and recording during
        // its reps would only add the tracer's cost to its phases (sampled page faults and
        // context switches in its own process).
        // Whatever happened between reps is not this rep's business (recording was paused
        // at the end of the last rep, so this is little).
        self.session.drain();
        self.session.set_enabled(runtime.is_traced())?;
        // A docker rep's ~30k decoded events leave ~15 MB of freed heap behind. Every native
        // start clones probe, and a clone copies (and its execve tears down) the page tables
        // of all that: measured, clone3 0.19 → 0.87 ms and execve 0.21 → 0.56 ms. Handing
        // the free pages back keeps the next start as cheap as in a run without tracing.
        // SAFETY: malloc_trim(3) only releases free memory; no pointer is affected.
        unsafe { libc::malloc_trim(0) };
        Ok(())
    }

    fn after_rep(&mut self, runtime: RuntimeKind, sample: &mut Sample) -> anyhow::Result<()> {
        // Paused until the next rep: decoding and analysing a rep takes longer than the rep
        // on a busy machine, and the system-wide events recorded meanwhile (sched_switch,
        // sched_waking of every task) would fill the rings before the next rep began.
        self.session.set_enabled(false)?;
        let lost_before = self.session.lost();
        let events = self.session.drain();
        if !runtime.is_traced() {
            return Ok(());
        }
        let window = Window {
            start: sample.start_mono_ns,
            end: sample.start_mono_ns + sample.wall_ns,
            root: sample.pid,
        };
        let a = attribution::attribute(&events, window, self.session.instruments(), &crate::trace::procs::proc_comm);
        // A rep's trace is short and already decoded: every task of it is kept.
        let mut tracker = match &self.syms {
            Some(k) => Tracker::new().with_stacks(k.clone()),
            None => Tracker::new(),
        };
        events.iter().for_each(|e| tracker.feed(e, &|_| true));
        let critical = tracker.path(window.root, window.start, window.end, &crate::trace::procs::proc_comm);
        sample.phases = a.records();
        let json = serde_json::to_vec(&RepTrace {
            runtime,
            start_mono_ns: sample.start_mono_ns,
            attribution: a,
            critical,
            lost: self.session.lost() - lost_before,
        })?;
        self.spill.write_all(&json).context("writing a traced rep to its memfd")?;
        self.spilled.push(json.len());
        Ok(())
    }
}

impl StartupTracer {
    /// Starts tracing for `--breakdown` (`stacks`: with `--kernel-stacks`), or says in one
    /// line why it cannot and returns None (the run then reports totals only for engines).
    /// Unreadable kernel symbols are said too; stacks are then not recorded, since nothing
    /// could name them.
    pub fn start_or_explain(stacks: bool) -> Option<Self> {
        // Read before the first rep: ~120k symbols, tens of ms.
        let syms = match stacks.then(Kallsyms::load) {
            Some(Ok(k)) => Some(k),
            Some(Err(e)) => {
                eprintln!("note: kernel symbols unreadable ({e}); --kernel-stacks ignored, wait sites not named");
                None
            }
            None => None,
        };
        match Self::start(syms) {
            Ok(t) => {
                // A tracepoint left out is a missing instrument: its events are not zero.
                for m in &t.session.missing {
                    eprintln!("note: this kernel has no tracepoint {m}; the breakdown does not see its events");
                }
                Some(t)
            }
            Err(e) => {
                eprintln!("note: kernel tracing unavailable ({e:#}); docker/podman/runc/crun phases not broken down, totals only");
                None
            }
        }
    }

    /// Each runtime's median rep among those with phases, as the timeline draws them:
    /// traced engines with their processes and critical path, native from its in-process
    /// phase records; with the rep's runtime and wall time in ms, for the title.
    pub fn timeline_runs(tracer: Option<&Self>, results: &[RuntimeResult]) -> Vec<(RuntimeKind, f64, Attribution, Option<CriticalPath>)> {
        let mut runs = Vec::new();
        for r in results {
            let mut timed: Vec<&Sample> = r.samples.iter().filter(|s| !s.phases.is_empty()).collect();
            timed.sort_by_key(|s| s.wall_ns);
            let Some(s) = timed.get(timed.len() / 2) else { continue };
            let (a, critical) = match tracer.and_then(|t| t.trace_of(s)) {
                Some(t) => (t.attribution.clone(), Some(t.critical.clone())),
                None => (Attribution::from_records(Window { start: s.start_mono_ns, end: s.start_mono_ns + s.wall_ns, root: s.pid }, &s.phases), None),
            };
            runs.push((r.runtime, s.wall_ms(), a, critical));
        }
        runs
    }
}

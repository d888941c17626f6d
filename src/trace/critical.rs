//! The critical path of a run: from the timed command's exit backwards, who was it waiting
//! for at each instant? Fed one event at a time, in time order, it keeps a state log (on CPU,
//! runnable, asleep, in D state, stopped, exited, with who woke it) only for the tasks its
//! owner says to keep: every task of a rep's trace in `startup --breakdown`, the command's
//! tree and the engine daemons under `probe trace`, whose reducer feeds it as it drains. Of
//! all other tasks it keeps only what a kept task's wait needs: which task is on each CPU
//! (the holders of a runnable wait, summed when the wait ends), disk requests in flight (for
//! a D-state wait) and the names of wakers and signal senders. [`Tracker::path`] then walks
//! the logs back, following a sleeper's waker, so every instant of the window lands on one
//! task in one state.
//!
//! Sources: `sched_switch` (`prev_state` is the state the task left the CPU in),
//! `sched_waking` (fires in the waker's context: the sample's tid woke the `pid` field; tid 0,
//! the idle task, or an interrupt context in `common_flags` means an interrupt or timer woke
//! it), fork/exec/exit, `signal_generate` (the sender of a stop signal is the sample's task)
//! and `block_rq_issue`/`complete` (requests in flight while a task is in D state). Any
//! sample also says its task was on that CPU then: a switch-in missing from the rings (seen
//! for switches recorded in an idle CPU's context) is recovered from the task's next event.

use std::collections::HashMap;
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use super::event::Event;
use crate::sys::kallsyms::Kallsyms;

/// `prev_state` bits of `sched_switch` (include/linux/sched.h, TASK_REPORT).
const TASK_INTERRUPTIBLE: i64 = 0x1;
const TASK_UNINTERRUPTIBLE: i64 = 0x2;
const TASK_STOPPED: i64 = 0x4;
const TASK_TRACED: i64 = 0x8;
const EXIT_DEAD: i64 = 0x10;
const EXIT_ZOMBIE: i64 = 0x20;
/// Set when the task was preempted while still runnable ("R+").
const TASK_REPORT_MAX: i64 = 0x100;

/// The tracepoints of probe's defaults the path is built from (with
/// [`super::CRITICAL_TRACEPOINTS`], which the defaults leave out).
pub const NEEDS: &[&str] = &[
    "sched/sched_switch",
    "sched/sched_process_fork",
    "sched/sched_process_exec",
    "sched/sched_process_exit",
    "block/block_rq_issue",
    "block/block_rq_complete",
];

/// Signals whose default action stops a task.
const STOP_SIGNALS: &[i64] = &[19, 20, 21, 22];

/// TRACE_FLAG_HARDIRQ | TRACE_FLAG_SOFTIRQ | TRACE_FLAG_NMI in common_flags: the event fired
/// in interrupt context, on behalf of no task.
const IRQ_CONTEXT: u64 = 0x08 | 0x10 | 0x40;

/// How deep the walk follows wakers inside one sleep before naming the waker instead.
const MAX_DEPTH: usize = 48;

/// A sleep a timer ended, after which the task ran at most this long before sleeping again
/// until woken by task W, was a wait on W too: the timer did not end the wait (a Go runtime's
/// netpoller wakes on its timers, finds nothing, and sleeps again). Without this the walk
/// stopped at the timer and never reached, say, a stopped containerd behind it.
const TIMER_RUN_NS: u64 = 2_000_000;

/// CPU holders kept per runnable wait: a busy machine has dozens, a report names two.
const HOLDERS: usize = 5;

/// A disk request not seen completing within this long is let go (its completion was lost).
const STALE_RQ_NS: u64 = 60_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Wake {
    Task(u32),
    /// The idle task ran the wakeup, or it ran in interrupt context: an interrupt or timer.
    Interrupt,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Mode {
    Running,
    Runnable,
    /// Interruptible sleep (S), or asleep in a state the trace did not show (first seen at
    /// its wakeup).
    Sleeping,
    /// Uninterruptible (D).
    Blocked,
    /// T or t: a signal stop or a tracer's.
    Stopped,
    Exited,
}

#[derive(Clone, Debug)]
struct Seg {
    start: u64,
    end: u64,
    mode: Mode,
    /// What ended a sleep, block or stop.
    woken_by: Option<Wake>,
    /// For Stopped: (sender tid, signal) from the last stop signal sent to the task.
    stop: Option<(u32, i64)>,
    /// For Runnable: the processes on the CPUs meanwhile (by tgid where known, with a
    /// name), most time first.
    holders: Vec<(u32, String, u64)>,
    /// For Blocked: disk requests in flight meanwhile, and their devices (dev_t).
    requests: usize,
    devices: Vec<u64>,
    /// Where in the kernel it blocked (an index into `Tracker::sites`), when stacks are
    /// recorded.
    site: Option<u32>,
}

#[derive(Clone, Copy)]
struct Open {
    mode: Mode,
    since: u64,
    stop: Option<(u32, i64)>,
    site: Option<u32>,
}

#[derive(Default)]
struct TaskLog {
    segs: Vec<Seg>,
    cur: Option<Open>,
    /// Watched since (None: not watched now, so its state is not known).
    from: Option<u64>,
    /// (parent tid, fork time): before it, the task's time is its parent's.
    forked: Option<(u32, u64)>,
    /// The last task this one woke (an exiting task's last wakeup reaps it).
    last_woke: Option<u32>,
    /// Exiting: kept to its last switch-out even when its owner has let it go.
    dying: bool,
}

/// The task on a CPU, since when.
struct CpuRun {
    tid: u32,
    tgid: Option<u32>,
    comm: String,
    since: u64,
}

/// A finished stretch of one task on one CPU, kept while a kept task waits for a CPU.
struct Run {
    start: u64,
    end: u64,
    tid: u32,
    /// tgid where known, else tid: holders are summed per process.
    key: u32,
    comm: String,
}

/// Everything fed so far, per kept task (by tid).
pub struct Tracker {
    origin: Option<u64>,
    /// Whether a task first seen mid-trace is taken as having been in its first-seen state
    /// since the trace began (a rep's trace, every task kept) or only from then on.
    backfill: bool,
    tasks: HashMap<u32, TaskLog>,
    tgid_of: HashMap<u32, u32>,
    comm: HashMap<u32, String>,
    on_cpu: HashMap<u32, CpuRun>,
    runs: Vec<Run>,
    /// Kept tasks waiting for a CPU, and in D state: since when.
    runnable: HashMap<u32, u64>,
    blocked: HashMap<u32, u64>,
    /// Stop signals sent and not yet acted on, by target (tid or tgid): (sender tid, signal).
    stop_pending: HashMap<u32, (u32, i64)>,
    /// Disk requests in flight by (dev, sector): issued at. Completed ones are kept
    /// (issue, complete, dev) while a kept task is in D state.
    in_flight: HashMap<(u64, u64), u64>,
    done_rq: Vec<(u64, u64, u64)>,
    /// Kernel symbols, when switch-out stacks are recorded (shared: `startup --breakdown`
    /// walks one tracker per rep); the wait sites met, interned.
    syms: Option<Rc<Kallsyms>>,
    sites: Vec<String>,
    /// Whether the events a state needs were seen at all (a missing instrument is named).
    pub saw_switch: bool,
    pub saw_waking: bool,
    pub saw_signal: bool,
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

impl Tracker {
    fn with_backfill(backfill: bool) -> Self {
        Tracker {
            origin: None,
            backfill,
            tasks: HashMap::new(),
            tgid_of: HashMap::new(),
            comm: HashMap::new(),
            on_cpu: HashMap::new(),
            runs: Vec::new(),
            runnable: HashMap::new(),
            blocked: HashMap::new(),
            stop_pending: HashMap::new(),
            in_flight: HashMap::new(),
            done_rq: Vec::new(),
            syms: None,
            sites: Vec::new(),
            saw_switch: false,
            saw_waking: false,
            saw_signal: false,
        }
    }

    /// For one bounded trace (a rep) of which every task is kept: a task first seen mid-trace
    /// was in its first-seen state since the trace began.
    pub fn new() -> Self {
        Self::with_backfill(true)
    }

    /// For a stream whose owner keeps some tasks: a task's state is known from when it is
    /// first kept ([`Tracker::watch`], its fork, or its first event).
    pub fn streaming(start: u64) -> Self {
        let mut t = Self::with_backfill(false);
        t.origin = Some(start);
        t
    }

    /// Names where each kept task blocked from the kernel call chains of its switch-outs.
    pub fn with_stacks(mut self, syms: Rc<Kallsyms>) -> Self {
        self.syms = Some(syms);
        self
    }

    /// The wait site of a switch-out's call chain, interned.
    fn site(&mut self, chain: &[u64]) -> Option<u32> {
        let words = super::waitsite::site(chain, self.syms.as_ref()?)?;
        match self.sites.iter().position(|s| *s == words) {
            Some(i) => Some(i as u32),
            None => {
                self.sites.push(words);
                Some(self.sites.len() as u32 - 1)
            }
        }
    }

    /// Starts watching `tid` (of process `tgid`) at `t`, in a state not seen yet: the
    /// traced command at its spawn, a daemon's threads when an engine CLI starts.
    pub fn watch(&mut self, tid: u32, tgid: u32, t: u64) {
        self.tgid_of.insert(tid, tgid);
        let log = self.tasks.entry(tid).or_default();
        if log.from.is_none() {
            log.from = Some(t);
        }
    }

    /// The log of a kept task, created or watched again from `t` if needed.
    fn kept(&mut self, tid: u32, t: u64) -> &mut TaskLog {
        let from = if self.backfill { self.origin.unwrap_or(t) } else { t };
        let log = self.tasks.entry(tid).or_default();
        log.from.get_or_insert(from);
        log
    }

    /// `tid` is no longer kept: its state from `t` on is not known.
    fn unwatch(&mut self, tid: u32, t: u64) {
        if self.tasks.get(&tid).is_some_and(|l| l.from.is_some()) {
            self.set(tid, t, None, None);
            if let Some(l) = self.tasks.get_mut(&tid) {
                l.from = None;
            }
        }
    }

    /// Ends `tid`'s open state at `t` (a sleep woken by `woken_by`) and opens `next`.
    fn set(&mut self, tid: u32, t: u64, woken_by: Option<Wake>, next: Option<(Mode, Option<(u32, i64)>)>) {
        let Some(cur) = self.tasks.get_mut(&tid).and_then(|l| l.cur.take()) else {
            self.open(tid, t, next);
            return;
        };
        match cur.mode {
            Mode::Runnable => {
                self.runnable.remove(&tid);
            }
            Mode::Blocked => {
                self.blocked.remove(&tid);
            }
            _ => {}
        }
        if t > cur.since {
            let mut seg = self.seg(tid, cur, t);
            seg.woken_by = woken_by;
            if let Some(l) = self.tasks.get_mut(&tid) {
                l.segs.push(seg);
            }
        }
        match cur.mode {
            Mode::Runnable => match self.runnable.values().min() {
                Some(&oldest) => self.runs.retain(|r| r.end > oldest),
                None => self.runs.clear(),
            },
            Mode::Blocked => match self.blocked.values().min() {
                Some(&oldest) => self.done_rq.retain(|r| r.1 > oldest),
                None => self.done_rq.clear(),
            },
            _ => {}
        }
        self.open(tid, t, next);
    }

    fn open(&mut self, tid: u32, t: u64, next: Option<(Mode, Option<(u32, i64)>)>) {
        let Some((mode, stop)) = next else { return };
        let Some(log) = self.tasks.get_mut(&tid) else { return };
        log.cur = Some(Open { mode, since: t, stop, site: None });
        match mode {
            Mode::Runnable => {
                self.runnable.insert(tid, t);
            }
            Mode::Blocked => {
                self.blocked.insert(tid, t);
            }
            _ => {}
        }
    }

    /// The open state `cur` of `tid` as a segment ending at `end`, with what it waited on.
    fn seg(&self, tid: u32, cur: Open, end: u64) -> Seg {
        let mut s = Seg { start: cur.since, end, mode: cur.mode, woken_by: None, stop: cur.stop, holders: Vec::new(), requests: 0, devices: Vec::new(), site: cur.site };
        match cur.mode {
            Mode::Runnable => s.holders = self.holders(tid, cur.since, end),
            Mode::Blocked => (s.requests, s.devices) = self.disk_during(cur.since, end),
            _ => {}
        }
        s
    }

    /// A sample of `tid` on `cpu` at `t`: it was running then. When its log says otherwise
    /// its switch-in was not recorded; an idle CPU takes a woken task at once, so it ran
    /// from when it could (its wakeup, or the CPU going idle), else from now.
    fn seen_running(&mut self, tid: u32, cpu: u32, t: u64) {
        let Some(cur) = self.tasks.get(&tid).and_then(|l| l.cur) else {
            let since = self.on_cpu.get(&cpu).filter(|c| c.tid == tid).map_or(t, |c| c.since);
            self.kept(tid, t);
            self.open(tid, since.min(t), Some((Mode::Running, None)));
            return;
        };
        if matches!(cur.mode, Mode::Running | Mode::Exited) {
            return;
        }
        // sched_waking fires in the waker's own context (try_to_wake_up()), on the waker's
        // CPU, so a sleep that ends with none recorded, the task back on a CPU whose last
        // record is its idle task, was ended in that idle CPU's context: an interrupt or
        // timer, as a waking seen there says. This VM's kernel (6.18) delivers no switch from
        // CPU 1's idle task and no waking in its context (`perf record -a` misses them too),
        // so this is common here. The sleep then lasts until the task's first own event.
        let idle_cpu = self.on_cpu.get(&cpu).is_some_and(|c| c.tid == 0);
        let (since, woken_by) = match self.on_cpu.get(&cpu) {
            _ if cur.mode == Mode::Sleeping && idle_cpu => (t, Some(Wake::Interrupt)),
            Some(c) if c.tid == 0 || c.tid == tid => (c.since.max(cur.since).min(t), None),
            _ => (t, None),
        };
        self.set(tid, since, woken_by, Some((Mode::Running, None)));
        let comm = self.comm.get(&tid).cloned().unwrap_or_default();
        self.on_cpu.insert(cpu, CpuRun { tid, tgid: self.tgid_of.get(&tid).copied(), comm, since });
    }

    /// Takes the next event (time-ordered). `keep` says which tasks (by tid) to keep a log of.
    pub fn feed(&mut self, e: &Event, keep: &dyn Fn(u32) -> bool) {
        let t = e.time_ns;
        let origin = *self.origin.get_or_insert(t);
        // A task past exit_notify() is unhashed: perf then reports its tid as -1. It is
        // still the task on this CPU, which sched_switch told.
        let tid = match e.tid {
            u32::MAX => self.on_cpu.get(&e.cpu).map_or(u32::MAX, |c| c.tid),
            t => t,
        };
        let kept = |tr: &Self, tid: u32| keep(tid) || tr.tasks.get(&tid).is_some_and(|l| l.dying);
        if tid != 0 && tid != u32::MAX {
            // The unhashed task's pid is -1 too: its process stays what was learnt before.
            let pid = (e.pid != u32::MAX).then_some(e.pid);
            if let Some(c) = self.on_cpu.get_mut(&e.cpu).filter(|c| c.tid == tid) {
                c.tgid = pid.or(c.tgid);
            }
            if kept(self, tid) {
                if let Some(pid) = pid {
                    self.tgid_of.insert(tid, pid);
                }
                self.seen_running(tid, e.cpu, t);
            }
        }
        match e.short_name() {
            "sched_switch" => {
                self.saw_switch = true;
                let (Some(prev), Some(next)) = (e.int("prev_pid"), e.int("next_pid")) else { return };
                let (prev, next) = (prev as u32, next as u32);
                let state = e.int("prev_state").unwrap_or(0);
                let ran = self.on_cpu.remove(&e.cpu).filter(|c| c.tid == prev);
                let cpu_since = ran.as_ref().map(|c| c.since);
                if prev != 0 {
                    if let (Some(r), false) = (&ran, self.runnable.is_empty()) {
                        let key = r.tgid.unwrap_or(prev);
                        let comm = e.str("prev_comm").map_or(r.comm.clone(), str::to_string);
                        self.runs.push(Run { start: r.since, end: t, tid: prev, key, comm });
                    }
                    if kept(self, prev) {
                        if let Some(c) = e.str("prev_comm") {
                            self.name(prev, c);
                        }
                        let stop = self.stop_pending.get(&prev).or_else(|| self.tgid_of.get(&prev).and_then(|g| self.stop_pending.get(g))).copied();
                        let log = self.kept(prev, t);
                        if log.cur.is_none() {
                            let from = cpu_since.or(log.from).unwrap_or(origin);
                            log.cur = Some(Open { mode: Mode::Running, since: from, stop: None, site: None });
                        }
                        let mode = match state {
                            s if s & (EXIT_DEAD | EXIT_ZOMBIE) != 0 => Mode::Exited,
                            s if s & (TASK_STOPPED | TASK_TRACED) != 0 => Mode::Stopped,
                            s if s & TASK_UNINTERRUPTIBLE != 0 => Mode::Blocked,
                            s if s & TASK_INTERRUPTIBLE != 0 => Mode::Sleeping,
                            // Parked and idle kthreads (P, I) sleep until woken like S.
                            s if s & !TASK_REPORT_MAX != 0 => Mode::Sleeping,
                            _ => Mode::Runnable,
                        };
                        let stop = stop.filter(|_| mode == Mode::Stopped);
                        self.set(prev, t, None, Some((mode, stop)));
                        if matches!(mode, Mode::Sleeping | Mode::Blocked | Mode::Stopped) && !e.callchain.is_empty() {
                            let site = self.site(&e.callchain);
                            if let Some(c) = self.tasks.get_mut(&prev).and_then(|l| l.cur.as_mut()) {
                                c.site = site;
                            }
                        }
                    } else {
                        self.unwatch(prev, t);
                    }
                }
                let next_comm = e.str("next_comm").unwrap_or("").to_string();
                if next != 0 {
                    if kept(self, next) {
                        self.name(next, &next_comm);
                        let log = self.kept(next, t);
                        if log.cur.is_none() {
                            // Picked without a wakeup seen: it was waiting for a CPU already.
                            let from = log.from.unwrap_or(t);
                            self.open(next, from, Some((Mode::Runnable, None)));
                        }
                        // A sleep that ends here with no waking recorded stays a sleep without
                        // its waker (unexplained): no record says what ended it. Seen with both
                        // CPUs busy (so not an idle CPU's unrecorded context): a podman thread
                        // asleep 57 ms, switched in for a preempted task, no waking anywhere.
                        self.set(next, t, None, Some((Mode::Running, None)));
                    } else {
                        self.unwatch(next, t);
                    }
                }
                let tgid = self.tgid_of.get(&next).copied();
                self.on_cpu.insert(e.cpu, CpuRun { tid: next, tgid, comm: next_comm, since: t });
            }
            "sched_waking" => {
                self.saw_waking = true;
                let Some(target) = e.int("pid").map(|p| p as u32) else { return };
                let in_irq = e.uint(super::format::COMMON_FLAGS).is_some_and(|f| f & IRQ_CONTEXT != 0);
                let by = match tid {
                    _ if in_irq => Wake::Interrupt,
                    0 => Wake::Interrupt,
                    u32::MAX => return,
                    t => Wake::Task(t),
                };
                // A reaper is in another process: an exiting thread wakes its siblings too.
                let sibling = self.tgid_of.get(&target) == Some(&e.pid);
                if let Some(l) = self.tasks.get_mut(&tid).filter(|_| by != Wake::Interrupt && !sibling) {
                    l.last_woke = Some(target);
                }
                if !kept(self, target) {
                    self.unwatch(target, t);
                    return;
                }
                if let Wake::Task(w) = by {
                    self.name_from_cpu(w, e);
                }
                if let Some(c) = e.str("comm") {
                    self.name(target, c);
                }
                let log = self.kept(target, t);
                let from = log.from.unwrap_or(t);
                match log.cur {
                    Some(Open { mode: Mode::Running | Mode::Runnable | Mode::Exited, .. }) => return,
                    // First seen at its wakeup: asleep since it was first watched.
                    None => self.open(target, from, Some((Mode::Sleeping, None))),
                    Some(_) => {}
                }
                let stopped = self.tasks.get(&target).and_then(|l| l.cur).is_some_and(|c| c.mode == Mode::Stopped);
                self.set(target, t, Some(by), Some((Mode::Runnable, None)));
                if stopped {
                    let g = self.tgid_of.get(&target).copied();
                    self.stop_pending.remove(&target);
                    if let Some(g) = g {
                        self.stop_pending.remove(&g);
                    }
                }
            }
            "sched_process_fork" => {
                let Some(child) = e.int("child_pid").map(|p| p as u32) else { return };
                if !(kept(self, tid) || keep(child)) {
                    return;
                }
                if let Some(c) = e.str("child_comm") {
                    self.name(child, c);
                }
                let log = self.tasks.entry(child).or_default();
                log.forked = Some((tid, t));
                log.from = Some(t);
                log.segs.clear();
                log.cur = None;
                self.open(child, t, Some((Mode::Runnable, None)));
            }
            "sched_process_exec" => {
                if let Some(f) = e.str("filename") {
                    let base: String = basename(f).chars().take(15).collect();
                    if let Some(c) = self.on_cpu.get_mut(&e.cpu).filter(|c| c.tid == tid) {
                        c.comm = base.clone();
                    }
                    if kept(self, tid) {
                        self.name(tid, &base);
                    }
                }
            }
            "sched_process_exit" => {
                if kept(self, tid) {
                    self.kept(tid, t).dying = true;
                }
            }
            "signal_generate" => {
                self.saw_signal = true;
                let (Some(sig), Some(target)) = (e.int("sig"), e.int("pid")) else { return };
                // result 0 = delivered; ignored or already-pending signals stop nobody new.
                if STOP_SIGNALS.contains(&sig) && e.int("result").unwrap_or(0) == 0 {
                    self.stop_pending.insert(target as u32, (tid, sig));
                    self.name_from_cpu(tid, e);
                }
            }
            "block_rq_issue" => {
                let key = (e.uint("dev").unwrap_or(0), e.uint("sector").unwrap_or(0));
                if self.in_flight.len() >= 4096 {
                    self.in_flight.retain(|_, &mut at| at + STALE_RQ_NS > t);
                }
                self.in_flight.insert(key, t);
            }
            "block_rq_complete" => {
                let key = (e.uint("dev").unwrap_or(0), e.uint("sector").unwrap_or(0));
                if let Some(issue) = self.in_flight.remove(&key) {
                    if !self.blocked.is_empty() {
                        self.done_rq.push((issue, t, key.0));
                    }
                }
            }
            _ => {}
        }
    }

    fn name(&mut self, tid: u32, comm: &str) {
        if tid != 0 && !comm.is_empty() {
            self.comm.insert(tid, comm.to_string());
        }
    }

    /// Names `tid`, the task `e` fired in, from what its CPU's last switch said.
    fn name_from_cpu(&mut self, tid: u32, e: &Event) {
        if tid == 0 || tid == u32::MAX || e.pid == u32::MAX {
            return;
        }
        self.tgid_of.entry(tid).or_insert(e.pid);
        if let Some(c) = self.on_cpu.get(&e.cpu).filter(|c| c.tid == tid && !c.comm.is_empty()) {
            let comm = c.comm.clone();
            self.comm.insert(tid, comm);
        }
    }

    fn tgid(&self, tid: u32) -> u32 {
        *self.tgid_of.get(&tid).unwrap_or(&tid)
    }

    /// The task's closed segments that start before `end`, and its open one cut at `end`.
    fn segs(&self, tid: u32, end: u64) -> (&[Seg], Option<Seg>) {
        let Some(log) = self.tasks.get(&tid) else { return (&[], None) };
        let closed = &log.segs[..log.segs.partition_point(|s| s.start < end)];
        let open = log.cur.filter(|c| end > c.since).map(|c| self.seg(tid, c, end));
        (closed, open)
    }

    /// The critical path of [start, end] ending in task `root` (the timed command's pid), in
    /// time order, gap-free. `comm_of` names tasks no event named (a /proc lookup).
    pub fn path(&self, root: u32, start: u64, end: u64, comm_of: &dyn Fn(u32) -> Option<String>) -> CriticalPath {
        let mut raw = Vec::new();
        self.walk(root, start, end, &mut Vec::new(), &mut raw);
        raw.reverse();
        let task = |tid: u32| {
            let pid = self.tgid(tid);
            let comm = self.comm.get(&tid).cloned().or_else(|| comm_of(pid)).unwrap_or_else(|| "?".into());
            TaskRef { pid, tid, comm }
        };
        let steps = raw
            .into_iter()
            .map(|RawStep { tid, known, seg: r, waiter }| {
                let state = match known.then_some(r.mode) {
                    None => State::Unknown,
                    Some(Mode::Running) => State::Running,
                    Some(Mode::Runnable) => State::Runnable {
                        cpu_holders: r.holders.iter().map(|(k, comm, ns)| (TaskRef { pid: *k, tid: *k, comm: comm.clone() }, *ns)).collect(),
                    },
                    Some(Mode::Blocked) => State::Blocked {
                        requests: r.requests,
                        // dev_t as the block tracepoints record it: major << 20 | minor.
                        devices: r.devices.iter().map(|d| format!("{}:{}", d >> 20, d & 0xfffff)).collect(),
                        woken_by: r.woken_by.map(|w| wake_ref(w, &task)),
                    },
                    Some(Mode::Stopped) => State::Stopped { sender: r.stop.map(|(s, _)| task(s)), signal: r.stop.map(|(_, sig)| sig), woken_by: r.woken_by.map(|w| wake_ref(w, &task)) },
                    Some(Mode::Sleeping) => match r.woken_by {
                        Some(Wake::Interrupt) => State::Interrupt,
                        Some(Wake::Task(w)) => State::Sleeping { woken_by: Some(task(w)) },
                        None => State::Sleeping { woken_by: None },
                    },
                    Some(Mode::Exited) => State::Exited,
                };
                let site = r.site.map(|i| self.sites[i as usize].clone());
                Step { start: r.start, end: r.end, task: task(tid), state, waiter: waiter.map(task), site }
            })
            .collect();
        CriticalPath { start, end, steps, missing: self.missing(), stacks: self.syms.is_some() }
    }

    /// The tracepoints the path needs and the trace never showed.
    fn missing(&self) -> Vec<String> {
        [(self.saw_switch, "sched/sched_switch"), (self.saw_waking, "sched/sched_waking")]
            .iter()
            .filter(|(saw, _)| !saw)
            .map(|(_, n)| n.to_string())
            .collect()
    }

    /// Whether `tid` existed at `t`: not forked after it (a task older than the trace did).
    fn existed(&self, tid: u32, t: u64) -> bool {
        self.tasks.get(&tid).and_then(|l| l.forked).is_none_or(|(_, at)| at <= t)
    }

    /// Walks `tid` back from `hi` to `lo`, pushing steps latest first. `waiters` are the
    /// tasks whose sleeps this walk explains, innermost last.
    fn walk(&self, tid: u32, lo: u64, hi: u64, waiters: &mut Vec<u32>, out: &mut Vec<RawStep>) {
        let waiter = waiters.last().copied();
        let step = |start, end, mode: Option<Mode>, s: &Seg| RawStep { tid, known: mode.is_some(), seg: Seg { start, end, ..s.clone() }, waiter };
        let unknown = Seg { start: lo, end: hi, mode: Mode::Running, woken_by: None, stop: None, holders: Vec::new(), requests: 0, devices: Vec::new(), site: None };
        let mut t = hi;
        // The waker of the task's next sleep (walking back), carried over an earlier sleep a
        // timer ended: see TIMER_RUN_NS.
        let mut carry: Option<u32> = None;
        let mut ran = 0;
        let (closed, open) = self.segs(tid, hi);
        for s in open.iter().chain(closed.iter().rev()) {
            // Segments are in time order: the first one ending before `lo` ends the walk.
            if t <= lo || s.end <= lo {
                break;
            }
            if s.start >= t {
                continue;
            }
            let (a, b) = (s.start.max(lo), s.end.min(t));
            if b < t {
                out.push(step(b, t, None, &unknown));
            }
            // A D-state sleep woken by a task (not an interrupt) was a wait on that task: a
            // lock it held, a page it was reading in.
            // Only a waker that existed then: one forked after this sleep began cannot have
            // been what it waited for (the timer did end that wait).
            let woken_by = match (s.mode, s.woken_by, carry) {
                (Mode::Sleeping, Some(Wake::Interrupt), Some(w)) if self.existed(w, s.start) => Some(Wake::Task(w)),
                _ => s.woken_by,
            };
            match s.mode {
                Mode::Sleeping => {
                    carry = match woken_by {
                        Some(Wake::Task(w)) => Some(w),
                        _ => None,
                    };
                    ran = 0;
                }
                Mode::Running => {
                    ran += s.end - s.start;
                    if ran > TIMER_RUN_NS {
                        carry = None;
                    }
                }
                Mode::Runnable => {}
                _ => carry = None,
            }
            let follow = match (s.mode, woken_by) {
                (Mode::Sleeping | Mode::Blocked, Some(Wake::Task(w))) if w != tid && waiters.len() < MAX_DEPTH && !waiters.contains(&w) && self.tasks.contains_key(&w) => Some(w),
                _ => None,
            };
            // An exited task's remaining time belongs to whoever its exit woke (the parent
            // reaping it).
            let reaper = self.tasks.get(&tid).and_then(|l| l.last_woke).filter(|_| s.mode == Mode::Exited);
            match follow.or(reaper) {
                Some(w) if !waiters.contains(&w) && w != tid => {
                    waiters.push(tid);
                    self.walk(w, a, b, waiters, out);
                    waiters.pop();
                }
                _ => out.push(step(a, b, Some(s.mode), s)),
            }
            t = a;
        }
        if t > lo {
            // Before the task existed its time is its parent's (the fork is recorded), also
            // over a window that ends before its birth: a wait carried back over a timer's
            // sleep (TIMER_RUN_NS) reaches a waker before the waker was born (runc waiting on
            // its hook, whose thread that ends the wait was forked later); otherwise nothing
            // was seen.
            match self.tasks.get(&tid).and_then(|l| l.forked) {
                Some((parent, _)) if parent != tid && !waiters.contains(&parent) => {
                    self.walk(parent, lo, t, waiters, out);
                }
                _ => out.push(step(lo, t, None, &unknown)),
            }
        }
    }

    /// Processes on the CPUs during [a, b] other than task `tid`, most time first, at most
    /// HOLDERS.
    fn holders(&self, tid: u32, a: u64, b: u64) -> Vec<(u32, String, u64)> {
        let mut per: HashMap<u32, (&str, u64)> = HashMap::new();
        let mut add = |s: u64, e: u64, t: u32, key: u32, comm| {
            let (s, e) = (s.max(a), e.min(b));
            if e > s && t != tid && t != 0 {
                per.entry(key).or_insert((comm, 0)).1 += e - s;
            }
        };
        for r in &self.runs {
            add(r.start, r.end, r.tid, r.key, r.comm.as_str());
        }
        for c in self.on_cpu.values() {
            add(c.since, b, c.tid, c.tgid.unwrap_or(c.tid), c.comm.as_str());
        }
        // A process is named by its leader's name where that is known (threads have their own).
        let mut by_pid: Vec<(u32, String, u64)> =
            per.into_iter().map(|(k, (comm, ns))| (k, self.comm.get(&k).map_or(comm, |c| c.as_str()).to_string(), ns)).collect();
        by_pid.sort_by(|x, y| y.2.cmp(&x.2).then(x.0.cmp(&y.0)));
        by_pid.truncate(HOLDERS);
        by_pid
    }

    /// Disk requests in flight at some point in [a, b], and their devices.
    fn disk_during(&self, a: u64, b: u64) -> (usize, Vec<u64>) {
        let mut devs: Vec<u64> = Vec::new();
        let mut n = 0;
        let done = self.done_rq.iter().filter(|r| r.0 < b && r.1 > a).map(|r| r.2);
        let open = self.in_flight.iter().filter(|(_, &issue)| issue < b).map(|(k, _)| k.0);
        for dev in done.chain(open) {
            n += 1;
            if !devs.contains(&dev) {
                devs.push(dev);
            }
        }
        (n, devs)
    }
}

fn wake_ref(w: Wake, task: &dyn Fn(u32) -> TaskRef) -> WakeRef {
    match w {
        Wake::Task(t) => WakeRef::Task(task(t)),
        Wake::Interrupt => WakeRef::Interrupt,
    }
}

/// A stretch of the path: task `tid` in the state of `seg` over `seg`'s bounds (unknown
/// when not `known`), on behalf of `waiter`.
struct RawStep {
    tid: u32,
    known: bool,
    seg: Seg,
    waiter: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TaskRef {
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WakeRef {
    Task(TaskRef),
    Interrupt,
}

/// What the path's task was doing during a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum State {
    Running,
    /// Ready but not on a CPU: the tasks that held the CPUs meanwhile, with their time.
    Runnable { cpu_holders: Vec<(TaskRef, u64)> },
    /// D state, with the disk requests in flight meanwhile.
    Blocked { requests: usize, devices: Vec<String>, woken_by: Option<WakeRef> },
    /// Stopped by a signal (sender from signal_generate when traced) or a tracer.
    Stopped { sender: Option<TaskRef>, signal: Option<i64>, woken_by: Option<WakeRef> },
    /// Asleep and not followed further (its waker unknown, or the walk's depth reached).
    Sleeping { woken_by: Option<TaskRef> },
    /// Asleep until an interrupt or timer on an idle CPU woke it.
    Interrupt,
    Exited,
    /// No event told what the task was doing.
    Unknown,
}

impl State {
    pub fn word(&self) -> &'static str {
        match self {
            State::Running => "running",
            State::Runnable { .. } => "runnable",
            State::Blocked { .. } => "blocked (D)",
            State::Stopped { .. } => "stopped",
            State::Sleeping { .. } => "sleeping",
            State::Interrupt => "timer/interrupt",
            State::Exited => "exited",
            State::Unknown => "unknown",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Step {
    pub start: u64,
    pub end: u64,
    pub task: TaskRef,
    pub state: State,
    /// The task whose sleep this step explains (None: the command itself).
    pub waiter: Option<TaskRef>,
    /// Where in the kernel it blocked (waitsite.rs), when kernel stacks were recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CriticalPath {
    pub start: u64,
    pub end: u64,
    pub steps: Vec<Step>,
    /// Tracepoints the path needed and never saw.
    pub missing: Vec<String>,
    /// Whether kernel stacks at switch-out were recorded (the steps' wait sites).
    #[serde(default)]
    pub stacks: bool,
}

impl CriticalPath {
    /// Share of the window whose task and state are known (a sleep counts only with its
    /// waker).
    pub fn explained(&self) -> f64 {
        let total = self.end.saturating_sub(self.start);
        if total == 0 || !self.missing.is_empty() {
            return 0.0;
        }
        // A sleep whose wakeup was never seen says nothing of what the task waited for.
        let unexplained = |s: &Step| matches!(s.state, State::Unknown | State::Sleeping { woken_by: None });
        let known: u64 = self.steps.iter().filter(|s| !unexplained(s)).map(|s| s.end - s.start).sum();
        known as f64 / total as f64
    }

    /// The path's time in [a, b] grouped into waits, largest first (Running included: a
    /// caller that wants only the waits skips it).
    pub fn waits(&self, a: u64, b: u64) -> Vec<Wait> {
        let mut out: Vec<Wait> = Vec::new();
        for s in self.steps.iter().filter(|s| s.end > a && s.start < b) {
            let ns = s.end.min(b) - s.start.max(a);
            let task = Some(s.task.clone());
            let mut w = Wait { kind: WaitKind::Unknown, task: None, waiter: None, by: None, signal: None, ns, holders: Vec::new(), requests: 0, devices: Vec::new(), sites: Vec::new() };
            match &s.state {
                State::Running => w = Wait { kind: WaitKind::Running, task, ..w },
                State::Runnable { cpu_holders } => {
                    // Holders' time scaled to the clipped part, so a clipped step counts its share.
                    let scale = |t: u64| (t as u128 * ns as u128 / (s.end - s.start).max(1) as u128) as u64;
                    w = Wait { kind: WaitKind::Runnable, holders: cpu_holders.iter().map(|(t, h)| (t.clone(), scale(*h))).collect(), ..w };
                }
                State::Blocked { requests, devices, .. } => w = Wait { kind: WaitKind::Blocked, task, waiter: s.waiter.clone(), requests: *requests, devices: devices.clone(), ..w },
                State::Stopped { sender, signal, .. } => w = Wait { kind: WaitKind::Stopped, task, waiter: s.waiter.clone(), by: sender.clone(), signal: *signal, ..w },
                State::Sleeping { woken_by } => w = Wait { kind: WaitKind::Sleeping, task, by: woken_by.clone(), ..w },
                State::Interrupt => w = Wait { kind: WaitKind::Interrupt, task, ..w },
                State::Exited | State::Unknown => {}
            }
            if self.stacks && matches!(w.kind, WaitKind::Blocked | WaitKind::Stopped | WaitKind::Sleeping | WaitKind::Interrupt) {
                w.sites.push((s.site.clone(), ns));
            }
            match out.iter_mut().find(|o| o.same_cause(&w)) {
                Some(o) => o.absorb(w),
                None => out.push(w),
            }
        }
        out.sort_by(|x, y| y.ns.cmp(&x.ns));
        out
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitKind {
    Running,
    Runnable,
    Blocked,
    Stopped,
    Sleeping,
    Interrupt,
    Unknown,
}

/// Time of the path in one kind of state: stopped (task, sender, signal), blocked in D (task,
/// devices), runnable (with the tasks holding the CPUs), asleep with its waker unfollowed,
/// woken by a timer/interrupt, running, or unknown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wait {
    pub kind: WaitKind,
    /// The process in that state (by pid; None for runnable, which groups the whole run).
    pub task: Option<TaskRef>,
    /// The task that was waiting on it (None: the command itself).
    pub waiter: Option<TaskRef>,
    /// Stopped: the signal's sender; sleeping: the waker.
    pub by: Option<TaskRef>,
    pub signal: Option<i64>,
    pub ns: u64,
    /// Runnable: the tasks on the CPUs meanwhile, most time first.
    pub holders: Vec<(TaskRef, u64)>,
    /// Blocked: disk requests in flight meanwhile, and their devices (major:minor).
    pub requests: usize,
    pub devices: Vec<String>,
    /// Where in the kernel the task waited (waitsite.rs), with the time there, most first;
    /// None: no call chain named it. Empty when kernel stacks were not recorded, and for
    /// runnable time (preempted, not waiting).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<(Option<String>, u64)>,
}

impl Wait {
    /// Whether `o` has the same cause (kind, process, and for a stop its sender and signal,
    /// for a sleep its waker).
    pub fn same_cause(&self, o: &Wait) -> bool {
        let pid = |t: &Option<TaskRef>| t.as_ref().map(|t| t.pid);
        self.kind == o.kind
            && pid(&self.task) == pid(&o.task)
            && (self.kind != WaitKind::Stopped || (pid(&self.by) == pid(&o.by) && self.signal == o.signal))
            && (self.kind != WaitKind::Sleeping || pid(&self.by) == pid(&o.by))
    }

    /// Adds `w` (of the same cause) into this one.
    pub fn absorb(&mut self, w: Wait) {
        self.ns += w.ns;
        self.requests += w.requests;
        if self.waiter.is_none() {
            self.waiter = w.waiter;
        }
        for d in w.devices {
            if !self.devices.contains(&d) {
                self.devices.push(d);
            }
        }
        for (t, ns) in w.holders {
            match self.holders.iter_mut().find(|(h, _)| h.pid == t.pid) {
                Some(h) => h.1 += ns,
                None => self.holders.push((t, ns)),
            }
        }
        self.holders.sort_by(|x, y| y.1.cmp(&x.1));
        for (site, ns) in w.sites {
            match self.sites.iter_mut().find(|s| s.0 == site) {
                Some(s) => s.1 += ns,
                None => self.sites.push((site, ns)),
            }
        }
        self.sites.sort_by(|x, y| y.1.cmp(&x.1));
    }

    /// With only its `n` largest CPU holders and wait sites, for reports (a busy machine
    /// has dozens of holders).
    pub fn trimmed(mut self, n: usize) -> Wait {
        self.holders.truncate(n);
        self.sites.truncate(n);
        self
    }

    pub fn is_wait(&self) -> bool {
        !matches!(self.kind, WaitKind::Running | WaitKind::Unknown)
    }
}

/// SIGSTOP and friends by name.
pub fn signal_name(sig: i64) -> String {
    match sig {
        19 => "SIGSTOP".into(),
        20 => "SIGTSTP".into(),
        21 => "SIGTTIN".into(),
        22 => "SIGTTOU".into(),
        n => format!("signal {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::format::Value;

    const MS: u64 = 1_000_000;

    fn ev(t: u64, cpu: u32, tid: u32, name: &str, fields: &[(&str, Value)]) -> Event {
        Event {
            time_ns: t * MS,
            cpu,
            pid: tid,
            tid,
            name: name.into(),
            fields: fields.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            callchain: Vec::new(),
        }
    }
    fn i(v: i64) -> Value {
        Value::Int(v)
    }
    fn switch(t: u64, cpu: u32, prev: u32, state: i64, next: u32) -> Event {
        ev(t, cpu, prev, "sched/sched_switch", &[("prev_pid", i(prev as i64)), ("prev_state", i(state)), ("next_pid", i(next as i64))])
    }
    fn waking(t: u64, cpu: u32, waker: u32, target: u32) -> Event {
        ev(t, cpu, waker, "sched/sched_waking", &[("pid", i(target as i64))])
    }
    fn feed(events: &[Event]) -> Tracker {
        let mut tr = Tracker::new();
        for e in events {
            tr.feed(e, &|_| true);
        }
        tr
    }
    fn no_names(_: u32) -> Option<String> {
        None
    }
    fn summary(p: &CriticalPath) -> Vec<(u64, u64, u32, &'static str)> {
        p.steps.iter().map(|s| (s.start / MS, s.end / MS, s.task.tid, s.state.word())).collect()
    }

    /// The CLI (100) waits on dockerd (10), which waits on containerd (20); containerd is
    /// stopped by bash (50) with SIGSTOP at 20 ms and continued at 60 ms.
    #[test]
    fn follows_wakers_to_a_stopped_daemon_and_names_the_sender() {
        let events = [
            switch(0, 0, 0, 0, 100),
            switch(0, 1, 0, 0, 20),
            switch(10, 0, 100, TASK_INTERRUPTIBLE, 10),
            switch(12, 0, 10, TASK_INTERRUPTIBLE, 0),
            ev(15, 1, 50, "signal/signal_generate", &[("sig", i(19)), ("pid", i(20)), ("result", i(0))]),
            switch(20, 1, 20, TASK_STOPPED, 0),
            waking(60, 1, 50, 20),
            switch(61, 1, 0, 0, 20),
            waking(70, 1, 20, 10),
            switch(70, 1, 20, TASK_INTERRUPTIBLE, 10),
            waking(75, 1, 10, 100),
            switch(76, 0, 0, 0, 100),
        ];
        let tr = feed(&events);
        let p = tr.path(100, 0, 80 * MS, &no_names);
        assert_eq!(
            summary(&p),
            [
                (0, 10, 100, "running"),
                (10, 12, 10, "running"),
                (12, 20, 20, "running"),
                (20, 60, 20, "stopped"),
                (60, 61, 20, "runnable"),
                (61, 70, 20, "running"),
                (70, 75, 10, "running"),
                (75, 76, 100, "runnable"),
                (76, 80, 100, "running"),
            ]
        );
        let stop = &p.steps[3];
        let State::Stopped { sender, signal, .. } = &stop.state else { panic!() };
        assert_eq!((sender.as_ref().unwrap().tid, *signal), (50, Some(19)));
        assert_eq!(stop.waiter.as_ref().unwrap().tid, 10, "dockerd waited on it");
        assert!((p.explained() - 1.0).abs() < 1e-9);
    }

    /// With kernel stacks the stop's wait names where the stopped task waited in the kernel,
    /// and a switch-out whose chain names nothing is said to be so; without, no site at all.
    #[test]
    fn waits_carry_the_kernel_wait_site_only_with_stacks() {
        let syms = Rc::new(Kallsyms::parse("ffffffff81000000 T __schedule\nffffffff81001000 T schedule\nffffffff81002000 T do_signal_stop\nffffffff81003000 T get_signal\n").unwrap());
        let stop_chain = vec![0xffff_ffff_ffff_ff80, 0xffffffff81000010, 0xffffffff81001010, 0xffffffff81002010, 0xffffffff81003010];
        let chained = |mut e: Event, chain: &[u64]| {
            e.callchain = chain.to_vec();
            e
        };
        let events = [
            switch(0, 0, 0, 0, 100),
            switch(0, 1, 0, 0, 20),
            switch(10, 0, 100, TASK_INTERRUPTIBLE, 0),
            ev(15, 1, 50, "signal/signal_generate", &[("sig", i(19)), ("pid", i(20)), ("result", i(0))]),
            chained(switch(20, 1, 20, TASK_STOPPED, 0), &stop_chain),
            waking(60, 1, 50, 20),
            switch(61, 1, 0, 0, 20),
            ev(62, 1, 50, "signal/signal_generate", &[("sig", i(19)), ("pid", i(20)), ("result", i(0))]),
            // Stopped again, its chain unresolvable: a site not recorded, not a guess.
            chained(switch(65, 1, 20, TASK_STOPPED, 0), &[0xffff_ffff_ffff_ff80]),
            waking(70, 1, 50, 20),
            switch(70, 1, 0, 0, 20),
            waking(72, 1, 20, 100),
            switch(72, 1, 20, TASK_INTERRUPTIBLE, 100),
        ];
        let site_of = |stacks: bool| {
            let mut tr = Tracker::new();
            if stacks {
                tr = tr.with_stacks(syms.clone());
            }
            events.iter().for_each(|e| tr.feed(e, &|_| true));
            let p = tr.path(100, 0, 75 * MS, &no_names);
            let w = p.waits(0, 75 * MS);
            w.into_iter().find(|w| w.kind == WaitKind::Stopped).expect("a stop on the path")
        };
        let stop = site_of(true);
        assert_eq!(stop.ns / MS, 45);
        assert_eq!(stop.sites, [(Some("signal stop".to_string()), 40 * MS), (None, 5 * MS)]);
        assert!(site_of(false).sites.is_empty(), "without stacks nothing claims a site");
    }

    #[test]
    fn waits_group_the_path_by_cause() {
        let events = [
            switch(0, 0, 0, 0, 100),
            switch(0, 1, 0, 0, 7),
            switch(10, 0, 100, TASK_REPORT_MAX, 8),
            switch(20, 0, 8, 0, 100),
            switch(25, 0, 100, TASK_REPORT_MAX, 8),
            switch(40, 0, 8, 0, 100),
            waking(45, 0, 100, 9),
        ];
        let p = feed(&events).path(100, 0, 50 * MS, &no_names);
        let w = p.waits(0, 50 * MS);
        assert_eq!(w.len(), 2, "one runnable wait for both preemptions, one running: {w:?}");
        let w: Vec<&Wait> = [WaitKind::Runnable, WaitKind::Running].iter().map(|k| w.iter().find(|w| w.kind == *k).unwrap()).collect();
        assert_eq!((w[0].kind, w[0].ns / MS), (WaitKind::Runnable, 25));
        let holders: Vec<(u32, u64)> = w[0].holders.iter().map(|(t, ns)| (t.pid, ns / MS)).collect();
        assert_eq!(holders, [(7, 25), (8, 25)]);
        assert_eq!((w[1].kind, w[1].ns / MS), (WaitKind::Running, 25));
        let clipped = p.waits(15 * MS, 30 * MS);
        assert_eq!(clipped.iter().find(|w| w.kind == WaitKind::Runnable).unwrap().ns / MS, 10);
    }

    #[test]
    fn runnable_names_the_cpu_holders() {
        let events = [
            switch(0, 0, 0, 0, 100),
            switch(0, 1, 0, 0, 7),
            switch(10, 0, 100, TASK_REPORT_MAX, 8),
            switch(40, 0, 8, 0, 100),
        ];
        let p = feed(&events).path(100, 0, 50 * MS, &no_names);
        assert_eq!(summary(&p), [(0, 10, 100, "running"), (10, 40, 100, "runnable"), (40, 50, 100, "running")]);
        let State::Runnable { cpu_holders } = &p.steps[1].state else { panic!() };
        let got: Vec<(u32, u64)> = cpu_holders.iter().map(|(t, ns)| (t.tid, ns / MS)).collect();
        assert_eq!(got, [(7, 30), (8, 30)]);
    }

    #[test]
    fn d_state_counts_disk_requests_and_interrupt_wakeups_are_named() {
        let rq = |t, name: &str| ev(t, 0, 0, name, &[("dev", Value::Uint((8 << 20) | 16)), ("sector", Value::Uint(99))]);
        let events = [
            switch(0, 0, 0, 0, 100),
            rq(5, "block/block_rq_issue"),
            switch(5, 0, 100, TASK_UNINTERRUPTIBLE, 0),
            rq(30, "block/block_rq_complete"),
            waking(30, 0, 0, 100),
            switch(30, 0, 0, 0, 100),
            switch(35, 0, 100, TASK_INTERRUPTIBLE, 0),
            waking(45, 0, 0, 100),
            switch(45, 0, 0, 0, 100),
        ];
        let p = feed(&events).path(100, 0, 50 * MS, &no_names);
        assert_eq!(summary(&p), [(0, 5, 100, "running"), (5, 30, 100, "blocked (D)"), (30, 35, 100, "running"), (35, 45, 100, "timer/interrupt"), (45, 50, 100, "running")]);
        let State::Blocked { requests, devices, .. } = &p.steps[1].state else { panic!() };
        assert_eq!((*requests, devices.as_slice()), (1, ["8:16".to_string()].as_slice()));
    }

    #[test]
    fn time_before_a_fork_is_the_parents_and_unseen_time_is_unknown() {
        let events = [
            ev(10, 0, 1, "sched/sched_process_fork", &[("child_pid", i(100))]),
            switch(20, 0, 1, TASK_INTERRUPTIBLE, 100),
            waking(25, 0, 100, 5),
        ];
        let p = feed(&events).path(100, 0, 30 * MS, &no_names);
        assert_eq!(summary(&p), [(0, 10, 1, "unknown"), (10, 20, 100, "runnable"), (20, 30, 100, "running")]);
        assert!((p.explained() - 2.0 / 3.0).abs() < 1e-9);
        let without_switch = feed(&events[..1]).path(100, 0, 30 * MS, &no_names);
        assert_eq!(without_switch.explained(), 0.0, "sched_switch never seen: nothing is explained");
    }

    #[test]
    fn d_state_woken_by_a_task_follows_it_and_irq_context_is_an_interrupt() {
        let mut irq = waking(30, 1, 7, 100);
        irq.fields.insert(crate::trace::format::COMMON_FLAGS.into(), Value::Uint(0x10));
        let events = [
            switch(0, 0, 0, 0, 100),
            switch(0, 1, 0, 0, 7),
            switch(10, 0, 100, TASK_UNINTERRUPTIBLE, 0),
            waking(20, 1, 7, 100),
            switch(20, 0, 0, 0, 100),
            switch(25, 0, 100, TASK_INTERRUPTIBLE, 0),
            irq,
            switch(30, 0, 0, 0, 100),
        ];
        let p = feed(&events).path(100, 0, 35 * MS, &no_names);
        assert_eq!(summary(&p), [(0, 10, 100, "running"), (10, 20, 7, "running"), (20, 25, 100, "running"), (25, 30, 100, "timer/interrupt"), (30, 35, 100, "running")]);
    }

    #[test]
    fn a_dying_wakers_unknown_tid_is_the_task_on_its_cpu() {
        let mut dying = waking(10, 0, 100, 1);
        dying.tid = u32::MAX;
        dying.pid = u32::MAX;
        let events = [switch(0, 0, 0, 0, 100), switch(0, 1, 1, TASK_INTERRUPTIBLE, 0), dying, switch(10, 0, 100, EXIT_DEAD, 1)];
        let p = feed(&events).path(100, 0, 15 * MS, &no_names);
        assert_eq!(summary(&p), [(0, 10, 100, "running"), (10, 15, 1, "running")]);
        // Its pid, -1 as well, is not taken for its process.
        assert!(p.steps.iter().all(|s| s.task.pid != u32::MAX), "{:?}", p.steps);
    }

    /// Only task 100 is kept, as under `probe trace`: the hogs 7 and 8 get no log, yet are
    /// named as the CPU holders, and their runs are let go once the wait is summed.
    #[test]
    fn streaming_keeps_only_the_kept_tasks_and_names_holders_outside() {
        let mut tr = Tracker::streaming(0);
        tr.watch(100, 100, 0);
        let mut named = |t, cpu, prev, state, next, prev_comm: &str, next_comm: &str| {
            let mut e = switch(t, cpu, prev, state, next);
            e.fields.insert("prev_comm".into(), Value::Str(prev_comm.into()));
            e.fields.insert("next_comm".into(), Value::Str(next_comm.into()));
            tr.feed(&e, &|tid| tid == 100);
        };
        named(0, 0, 0, 0, 100, "swapper/0", "cmd");
        named(0, 1, 0, 0, 7, "swapper/1", "hog");
        named(10, 0, 100, TASK_REPORT_MAX, 8, "cmd", "hog2");
        named(40, 0, 8, 0, 100, "hog2", "cmd");
        assert_eq!(tr.tasks.keys().collect::<Vec<_>>(), [&100], "no log for tasks not kept");
        assert!(tr.runs.is_empty(), "runs are let go once no kept task waits for a CPU");
        let p = tr.path(100, 0, 50 * MS, &no_names);
        assert_eq!(summary(&p), [(0, 10, 100, "running"), (10, 40, 100, "runnable"), (40, 50, 100, "running")]);
        let State::Runnable { cpu_holders } = &p.steps[1].state else { panic!() };
        let got: Vec<(u32, &str, u64)> = cpu_holders.iter().map(|(t, ns)| (t.pid, t.comm.as_str(), ns / MS)).collect();
        assert_eq!(got, [(7, "hog", 30), (8, "hog2", 30)]);
    }

    /// The switch-in of 100 on an idle CPU is missing from the rings; its next event says it
    /// ran, from its wakeup on (the CPU was idle), not that it waited for a CPU until then.
    #[test]
    fn a_missing_switch_in_is_recovered_from_the_tasks_next_event() {
        let mut tr = Tracker::streaming(0);
        tr.watch(100, 100, 0);
        let keep = |tid| tid == 100;
        tr.feed(&switch(0, 0, 0, 0, 100), &keep);
        tr.feed(&switch(5, 0, 100, TASK_INTERRUPTIBLE, 0), &keep);
        tr.feed(&waking(10, 1, 7, 100), &keep);
        tr.feed(&ev(30, 0, 100, "syscalls/sys_enter_mount", &[]), &keep);
        let p = tr.path(100, 0, 40 * MS, &no_names);
        assert_eq!(summary(&p), [(0, 5, 100, "running"), (5, 10, 100, "sleeping"), (10, 40, 100, "running")]);
    }

    /// dockerd (10) sleeps from 10 ms; a timer wakes it at 30 ms, it runs 0.5 ms and sleeps
    /// again until containerd (20) wakes it at 60 ms. containerd was stopped 15..55 ms: the
    /// whole wait is on containerd, not a timer's up to 30 ms.
    #[test]
    fn a_timer_wakeup_that_changes_nothing_does_not_end_the_wait() {
        let tick = waking(30, 0, 0, 10);
        let events = [
            switch(0, 0, 0, 0, 10),
            switch(0, 1, 0, 0, 20),
            switch(10, 0, 10, TASK_INTERRUPTIBLE, 0),
            ev(12, 1, 50, "signal/signal_generate", &[("sig", i(19)), ("pid", i(20)), ("result", i(0))]),
            switch(15, 1, 20, TASK_STOPPED, 0),
            tick,
            switch(30, 0, 0, 0, 10),
            ev(30, 0, 10, "syscalls/sys_enter_mount", &[]),
            switch(30, 0, 10, TASK_INTERRUPTIBLE, 0),
            waking(55, 1, 50, 20),
            switch(55, 1, 0, 0, 20),
            waking(60, 1, 20, 10),
            switch(60, 1, 20, TASK_INTERRUPTIBLE, 10),
        ];
        let p = feed(&events).path(10, 0, 65 * MS, &no_names);
        let w = p.waits(0, 65 * MS);
        let stop = w.iter().find(|w| w.kind == WaitKind::Stopped).expect("the stop is on the path");
        assert_eq!(stop.ns / MS, 40, "{w:?}");
        assert!(!w.iter().any(|w| w.kind == WaitKind::Interrupt), "{w:?}");
    }

    /// The same timer wakeup, but the task that wakes dockerd at 60 ms was forked at 40 ms,
    /// after the timer's sleep began: that sleep was the timer's, not a wait on it (seen: a
    /// podman thread born later painted over 15 ms as "unknown", before it existed).
    #[test]
    fn a_waker_born_after_a_timers_sleep_is_not_what_it_waited_for() {
        let events = [
            switch(0, 0, 0, 0, 10),
            switch(0, 1, 0, 0, 1),
            switch(10, 0, 10, TASK_INTERRUPTIBLE, 0),
            waking(30, 0, 0, 10),
            switch(30, 0, 0, 0, 10),
            switch(30, 0, 10, TASK_INTERRUPTIBLE, 0),
            ev(40, 1, 1, "sched/sched_process_fork", &[("child_pid", i(20))]),
            switch(40, 1, 1, TASK_INTERRUPTIBLE, 20),
            waking(60, 1, 20, 10),
            switch(60, 1, 20, TASK_INTERRUPTIBLE, 10),
        ];
        let p = feed(&events).path(10, 0, 65 * MS, &no_names);
        assert!(p.steps.iter().all(|s| s.task.tid != 20 || s.start >= 40 * MS), "{:?}", summary(&p));
        assert!(p.steps.iter().any(|s| s.state.word() == "timer/interrupt" && s.start == 10 * MS), "{:?}", summary(&p));
        assert!(p.explained() > 0.99, "{:?}", summary(&p));
    }

    /// Task 100 sleeps on CPU 1 at 10 ms, which goes idle; no waking is recorded, and its next
    /// own event is at 30 ms there: the idle CPU's context woke it (an interrupt or timer),
    /// and it slept until then rather than running from 10 ms.
    #[test]
    fn a_sleep_ended_unseen_on_an_idle_cpu_was_an_interrupts() {
        let events = [
            switch(0, 1, 0, 0, 100),
            switch(10, 1, 100, TASK_INTERRUPTIBLE, 0),
            ev(30, 1, 100, "syscalls/sys_enter_mount", &[]),
            switch(35, 1, 100, TASK_INTERRUPTIBLE, 0),
        ];
        let p = feed(&events).path(100, 0, 35 * MS, &no_names);
        assert_eq!(summary(&p), [(0, 10, 100, "running"), (10, 30, 100, "timer/interrupt"), (30, 35, 100, "running")]);
    }

    /// The root (100) sleeps 5..20 ms until a timer, runs 1 ms, and sleeps until runc (10)
    /// wakes it at 62 ms: both sleeps are a wait on 10. 10 sleeps from 10 ms until woken at
    /// 60 ms by 30, forked at 40 ms by 20, which 10 forked at 8 ms. Over 10..20 ms, before
    /// 30 was born, the wait is on its parent 20, which ran then (seen: a docker rep lost 7.6%
    /// to "unknown" in 10 ms slices before a runc hook's thread was forked).
    #[test]
    fn a_waker_is_followed_through_its_parent_over_a_window_before_its_birth() {
        let fork = |t, cpu, parent, child| ev(t, cpu, parent, "sched/sched_process_fork", &[("child_pid", i(child))]);
        let events = [
            switch(0, 0, 0, 0, 100),
            switch(0, 1, 0, 0, 10),
            switch(5, 0, 100, TASK_INTERRUPTIBLE, 0),
            fork(8, 1, 10, 20),
            switch(10, 1, 10, TASK_INTERRUPTIBLE, 20),
            waking(20, 0, 0, 100),
            switch(20, 0, 0, 0, 100),
            switch(21, 0, 100, TASK_INTERRUPTIBLE, 0),
            fork(40, 1, 20, 30),
            switch(41, 1, 20, TASK_INTERRUPTIBLE, 30),
            waking(60, 1, 30, 10),
            switch(60, 1, 30, TASK_INTERRUPTIBLE, 10),
            waking(62, 1, 10, 100),
            switch(62, 1, 10, TASK_INTERRUPTIBLE, 0),
            switch(62, 0, 0, 0, 100),
        ];
        let p = feed(&events).path(100, 0, 65 * MS, &no_names);
        assert!(p.steps.iter().all(|s| s.state != State::Unknown), "{:?}", summary(&p));
        assert!(summary(&p).contains(&(10, 20, 20, "running")), "{:?}", summary(&p));
        assert!((p.explained() - 1.0).abs() < 1e-9, "{:?}", summary(&p));
    }

    /// Task 100 sleeps at 10 ms and is switched in at 30 ms on a busy CPU, for a preempted
    /// task, with no waking recorded: what ended the sleep is not known, and it is not
    /// explained (the other CPU was busy too, so no idle CPU's context woke it).
    #[test]
    fn a_sleep_ended_with_no_waking_on_busy_cpus_stays_unexplained() {
        let events = [
            switch(0, 0, 0, 0, 100),
            switch(0, 1, 0, 0, 7),
            switch(10, 0, 100, TASK_INTERRUPTIBLE, 8),
            switch(30, 0, 8, 0, 100),
            waking(35, 1, 7, 9),
        ];
        let p = feed(&events).path(100, 0, 40 * MS, &no_names);
        assert_eq!(summary(&p), [(0, 10, 100, "running"), (10, 30, 100, "sleeping"), (30, 40, 100, "running")]);
        assert!((p.explained() - 0.5).abs() < 1e-9, "{:?}", summary(&p));
    }

    #[test]
    fn an_exited_task_hands_over_to_its_reaper() {
        let events = [
            switch(0, 0, 0, 0, 100),
            switch(0, 1, 1, TASK_INTERRUPTIBLE, 0),
            waking(10, 0, 100, 1),
            switch(10, 0, 100, EXIT_ZOMBIE, 1),
        ];
        let p = feed(&events).path(100, 0, 15 * MS, &no_names);
        assert_eq!(summary(&p), [(0, 10, 100, "running"), (10, 15, 1, "running")]);
    }
}

//! The critical path of a run: from the timed command's exit backwards, who was it waiting
//! for at each instant? Fed one event at a time (a state machine per task, so it fits a
//! tracer that decodes as it drains), it keeps each task's states — on CPU, runnable, asleep,
//! in D state, stopped, exited — with who woke it; [`Tracker::path`] then walks them back,
//! following a sleeper's waker, so every instant of the window lands on one task in one state.
//!
//! Sources: `sched_switch` (`prev_state` is the state the task left the CPU in),
//! `sched_waking` (fires in the waker's context: the sample's tid woke the `pid` field; tid 0,
//! the idle task, means an interrupt or timer woke it), fork/exit, `signal_generate` (the
//! sender of a stop signal is the sample's task) and `block_rq_issue`/`complete` (requests
//! in flight while a task is in D state). A wakeup from an interrupt that hit a running task
//! is credited to that task: telling them apart needs the irq tracepoints, not traced.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::event::Event;

/// `prev_state` bits of `sched_switch` (include/linux/sched.h, TASK_REPORT).
const TASK_INTERRUPTIBLE: i64 = 0x1;
const TASK_UNINTERRUPTIBLE: i64 = 0x2;
const TASK_STOPPED: i64 = 0x4;
const TASK_TRACED: i64 = 0x8;
const EXIT_DEAD: i64 = 0x10;
const EXIT_ZOMBIE: i64 = 0x20;
/// Set when the task was preempted while still runnable ("R+").
const TASK_REPORT_MAX: i64 = 0x100;

/// Signals whose default action stops a task.
const STOP_SIGNALS: &[i64] = &[19, 20, 21, 22];

/// TRACE_FLAG_HARDIRQ | TRACE_FLAG_SOFTIRQ | TRACE_FLAG_NMI in common_flags: the event fired
/// in interrupt context, on behalf of no task.
const IRQ_CONTEXT: u64 = 0x08 | 0x10 | 0x40;

/// How deep the walk follows wakers inside one sleep before naming the waker instead.
const MAX_DEPTH: usize = 48;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Wake {
    Task(u32),
    /// The idle task ran the wakeup: an interrupt or timer on an idle CPU.
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

#[derive(Clone, Copy, Debug)]
struct Seg {
    start: u64,
    end: u64,
    mode: Mode,
    /// What ended a sleep, block or stop.
    woken_by: Option<Wake>,
    /// For Stopped: (sender tid, signal) from the last stop signal sent to the task.
    stop: Option<(u32, i64)>,
}

#[derive(Default)]
struct TaskLog {
    segs: Vec<Seg>,
    /// The open segment: mode, since, stop sender.
    cur: Option<(Mode, u64, Option<(u32, i64)>)>,
    /// (parent tid, fork time): before it, the task's time is its parent's.
    forked: Option<(u32, u64)>,
    /// The last task this one woke (an exiting task's last wakeup reaps it).
    last_woke: Option<u32>,
}

impl TaskLog {
    fn close(&mut self, t: u64, woken_by: Option<Wake>) {
        if let Some((mode, since, stop)) = self.cur.take() {
            if t > since {
                self.segs.push(Seg { start: since, end: t, mode, woken_by, stop });
            }
        }
    }

    fn open(&mut self, mode: Mode, t: u64, stop: Option<(u32, i64)>) {
        self.cur = Some((mode, t, stop));
    }
}

struct DiskRq {
    issue: u64,
    complete: Option<u64>,
    dev: u64,
}

/// Everything fed so far, per task (by tid).
#[derive(Default)]
pub struct Tracker {
    origin: Option<u64>,
    tasks: HashMap<u32, TaskLog>,
    tgid_of: HashMap<u32, u32>,
    comm: HashMap<u32, String>,
    /// Per CPU: the task on it and since when, and its closed runs (start, end, tid).
    on_cpu: HashMap<u32, (u32, u64)>,
    runs: HashMap<u32, Vec<(u64, u64, u32)>>,
    /// Stop signals sent and not yet acted on, by target (tid or tgid): (sender tid, signal).
    stop_pending: HashMap<u32, (u32, i64)>,
    disk: Vec<DiskRq>,
    in_flight: HashMap<(u64, u64), usize>,
    /// Whether the events a state needs were seen at all (a missing instrument is named).
    pub saw_switch: bool,
    pub saw_waking: bool,
    pub saw_signal: bool,
}

impl Tracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next event (time-ordered).
    pub fn feed(&mut self, e: &Event) {
        let t = e.time_ns;
        let origin = *self.origin.get_or_insert(t);
        // A task past exit_notify() is unhashed: perf then reports its tid as -1. It is
        // still the task on this CPU, which sched_switch told.
        let tid = match e.tid {
            u32::MAX => self.on_cpu.get(&e.cpu).map_or(u32::MAX, |&(t, _)| t),
            t => {
                self.tgid_of.insert(t, e.pid);
                t
            }
        };
        match e.short_name() {
            "sched_switch" => {
                self.saw_switch = true;
                let (Some(prev), Some(next)) = (e.int("prev_pid"), e.int("next_pid")) else { return };
                let (prev, next) = (prev as u32, next as u32);
                let state = e.int("prev_state").unwrap_or(0);
                if let Some(c) = e.str("prev_comm") {
                    self.name(prev, c);
                }
                if let Some(c) = e.str("next_comm") {
                    self.name(next, c);
                }
                let cpu_since = match self.on_cpu.get(&e.cpu) {
                    Some(&(tid, since)) if tid == prev => since,
                    _ => origin,
                };
                if prev != 0 {
                    self.runs.entry(e.cpu).or_default().push((cpu_since, t, prev));
                    let stop = self.stop_pending.get(&prev).or_else(|| self.tgid_of.get(&prev).and_then(|g| self.stop_pending.get(g))).copied();
                    let log = self.tasks.entry(prev).or_default();
                    if log.cur.is_none() {
                        log.open(Mode::Running, cpu_since, None);
                    }
                    log.close(t, None);
                    let (mode, stop) = match state {
                        s if s & (EXIT_DEAD | EXIT_ZOMBIE) != 0 => (Mode::Exited, None),
                        s if s & (TASK_STOPPED | TASK_TRACED) != 0 => (Mode::Stopped, stop),
                        s if s & TASK_UNINTERRUPTIBLE != 0 => (Mode::Blocked, None),
                        s if s & TASK_INTERRUPTIBLE != 0 => (Mode::Sleeping, None),
                        // Parked and idle kthreads (P, I) sleep until woken like S.
                        s if s & !TASK_REPORT_MAX != 0 => (Mode::Sleeping, None),
                        _ => (Mode::Runnable, None),
                    };
                    log.open(mode, t, stop);
                }
                if next != 0 {
                    let log = self.tasks.entry(next).or_default();
                    if log.cur.is_none() {
                        // Picked without a wakeup seen: it was waiting for a CPU already.
                        log.open(Mode::Runnable, origin, None);
                    }
                    log.close(t, None);
                    log.open(Mode::Running, t, None);
                }
                self.on_cpu.insert(e.cpu, (next, t));
            }
            "sched_waking" => {
                self.saw_waking = true;
                let Some(target) = e.int("pid").map(|p| p as u32) else { return };
                if let Some(c) = e.str("comm") {
                    self.name(target, c);
                }
                let in_irq = e.uint(super::format::COMMON_FLAGS).is_some_and(|f| f & IRQ_CONTEXT != 0);
                let by = match tid {
                    _ if in_irq => Wake::Interrupt,
                    0 => Wake::Interrupt,
                    u32::MAX => return,
                    t => Wake::Task(t),
                };
                if let Wake::Task(t) = by {
                    self.tasks.entry(t).or_default().last_woke = Some(target);
                }
                let log = self.tasks.entry(target).or_default();
                match log.cur {
                    Some((Mode::Running | Mode::Runnable | Mode::Exited, _, _)) => return,
                    // First seen at its wakeup: asleep since the trace began.
                    None => log.open(Mode::Sleeping, origin, None),
                    Some(_) => {}
                }
                let stopped = matches!(log.cur, Some((Mode::Stopped, _, _)));
                log.close(t, Some(by));
                log.open(Mode::Runnable, t, None);
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
                if let Some(c) = e.str("child_comm") {
                    self.name(child, c);
                }
                let log = self.tasks.entry(child).or_default();
                log.forked = Some((tid, t));
                log.segs.clear();
                log.open(Mode::Runnable, t, None);
            }
            "sched_process_exec" => {
                if let Some(f) = e.str("filename") {
                    let base = f.rsplit('/').next().unwrap_or(f).to_string();
                    self.name(tid, &base);
                }
            }
            "signal_generate" => {
                self.saw_signal = true;
                let (Some(sig), Some(target)) = (e.int("sig"), e.int("pid")) else { return };
                // result 0 = delivered; ignored or already-pending signals stop nobody new.
                if STOP_SIGNALS.contains(&sig) && e.int("result").unwrap_or(0) == 0 {
                    self.stop_pending.insert(target as u32, (tid, sig));
                }
            }
            "block_rq_issue" => {
                let key = (e.uint("dev").unwrap_or(0), e.uint("sector").unwrap_or(0));
                self.in_flight.insert(key, self.disk.len());
                self.disk.push(DiskRq { issue: t, complete: None, dev: key.0 });
            }
            "block_rq_complete" => {
                let key = (e.uint("dev").unwrap_or(0), e.uint("sector").unwrap_or(0));
                if let Some(i) = self.in_flight.remove(&key) {
                    self.disk[i].complete = Some(t);
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

    fn tgid(&self, tid: u32) -> u32 {
        *self.tgid_of.get(&tid).unwrap_or(&tid)
    }

    /// The task's closed segments that start before `end`, and its open one cut at `end`.
    fn segs(&self, tid: u32, end: u64) -> (&[Seg], Option<Seg>) {
        let Some(log) = self.tasks.get(&tid) else { return (&[], None) };
        let closed = &log.segs[..log.segs.partition_point(|s| s.start < end)];
        let open = log.cur.filter(|&(_, since, _)| end > since).map(|(mode, since, stop)| Seg { start: since, end, mode, woken_by: None, stop });
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
            .map(|r: RawStep| {
                let state = match r.mode {
                    None => State::Unknown,
                    Some(Mode::Running) => State::Running,
                    Some(Mode::Runnable) => State::Runnable { cpu_holders: self.holders(r.tid, r.start, r.end).into_iter().map(|(t, ns)| (task(t), ns)).collect() },
                    Some(Mode::Blocked) => {
                        let (requests, devices) = self.disk_during(r.start, r.end);
                        State::Blocked { requests, devices, woken_by: r.woken_by.map(|w| wake_ref(w, &task)) }
                    }
                    Some(Mode::Stopped) => State::Stopped { sender: r.stop.map(|(s, _)| task(s)), signal: r.stop.map(|(_, sig)| sig), woken_by: r.woken_by.map(|w| wake_ref(w, &task)) },
                    Some(Mode::Sleeping) => match r.woken_by {
                        Some(Wake::Interrupt) => State::Interrupt,
                        Some(Wake::Task(w)) => State::Sleeping { woken_by: Some(task(w)) },
                        None => State::Sleeping { woken_by: None },
                    },
                    Some(Mode::Exited) => State::Exited,
                };
                Step { start: r.start, end: r.end, task: task(r.tid), state, waiter: r.waiter.map(task) }
            })
            .collect();
        CriticalPath { start, end, steps, missing: self.missing() }
    }

    /// The tracepoints the path needs and the trace never showed.
    fn missing(&self) -> Vec<String> {
        [(self.saw_switch, "sched/sched_switch"), (self.saw_waking, "sched/sched_waking")]
            .iter()
            .filter(|(saw, _)| !saw)
            .map(|(_, n)| n.to_string())
            .collect()
    }

    /// Walks `tid` back from `hi` to `lo`, pushing steps latest first. `waiters` are the
    /// tasks whose sleeps this walk explains, innermost last.
    fn walk(&self, tid: u32, lo: u64, hi: u64, waiters: &mut Vec<u32>, out: &mut Vec<RawStep>) {
        let waiter = waiters.last().copied();
        let step = |start, end, mode, s: &Seg| RawStep { start, end, tid, mode, woken_by: s.woken_by, stop: s.stop, waiter };
        let unknown = Seg { start: lo, end: hi, mode: Mode::Running, woken_by: None, stop: None };
        let mut t = hi;
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
                out.push(RawStep { mode: None, ..step(b, t, None, &unknown) });
            }
            // A D-state sleep woken by a task (not an interrupt) was a wait on that task: a
            // lock it held, a page it was reading in.
            let follow = match (s.mode, s.woken_by) {
                (Mode::Sleeping | Mode::Blocked, Some(Wake::Task(w))) if w != tid && waiters.len() < MAX_DEPTH && !waiters.contains(&w) => Some(w),
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
            // Before the task existed its time is its parent's; otherwise nothing was seen.
            match self.tasks.get(&tid).and_then(|l| l.forked) {
                Some((parent, at)) if at <= t && parent != tid && !waiters.contains(&parent) => {
                    self.walk(parent, lo, t, waiters, out);
                }
                _ => out.push(RawStep { mode: None, ..step(lo, t, None, &unknown) }),
            }
        }
    }

    /// Tasks on the CPUs during [a, b] other than `tid`, most time first.
    fn holders(&self, tid: u32, a: u64, b: u64) -> Vec<(u32, u64)> {
        let mut per: HashMap<u32, u64> = HashMap::new();
        let mut add = |s: u64, e: u64, t: u32| {
            let (s, e) = (s.max(a), e.min(b));
            if e > s && t != tid && t != 0 {
                *per.entry(t).or_default() += e - s;
            }
        };
        for runs in self.runs.values() {
            let from = runs.partition_point(|r| r.1 <= a);
            for &(s, e, t) in runs[from..].iter().take_while(|r| r.0 < b) {
                add(s, e, t);
            }
        }
        for &(t, since) in self.on_cpu.values() {
            add(since, b, t);
        }
        // One line per process: a VM's or a compiler's threads are one hog.
        let mut by_pid: Vec<(u32, u64)> = Vec::new();
        for (t, ns) in per {
            match by_pid.iter_mut().find(|(o, _)| self.tgid(*o) == self.tgid(t)) {
                Some(o) => o.1 += ns,
                None => by_pid.push((t, ns)),
            }
        }
        by_pid.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
        by_pid
    }

    /// Disk requests in flight at some point in [a, b], and their devices.
    fn disk_during(&self, a: u64, b: u64) -> (usize, Vec<String>) {
        let mut devs: Vec<String> = Vec::new();
        let mut n = 0;
        for r in self.disk.iter().filter(|r| r.issue < b && r.complete.is_none_or(|c| c > a)) {
            n += 1;
            // dev_t as the block tracepoints record it: major << 20 | minor.
            let d = format!("{}:{}", r.dev >> 20, r.dev & 0xfffff);
            if !devs.contains(&d) {
                devs.push(d);
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

struct RawStep {
    start: u64,
    end: u64,
    tid: u32,
    mode: Option<Mode>,
    woken_by: Option<Wake>,
    stop: Option<(u32, i64)>,
    waiter: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TaskRef {
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WakeRef {
    Task(TaskRef),
    Interrupt,
}

/// What the path's task was doing during a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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

#[derive(Clone, Debug, Serialize)]
pub struct Step {
    pub start: u64,
    pub end: u64,
    pub task: TaskRef,
    pub state: State,
    /// The task whose sleep this step explains (None: the command itself).
    pub waiter: Option<TaskRef>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CriticalPath {
    pub start: u64,
    pub end: u64,
    pub steps: Vec<Step>,
    /// Tracepoints the path needed and never saw.
    pub missing: Vec<String>,
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
            let mut w = Wait { kind: WaitKind::Unknown, task: None, waiter: None, by: None, signal: None, ns, holders: Vec::new(), requests: 0, devices: Vec::new() };
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
    }

    /// With only its `n` largest CPU holders, for reports (a busy machine has dozens).
    pub fn trimmed(mut self, n: usize) -> Wait {
        self.holders.truncate(n);
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
            tr.feed(e);
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
        let events = [switch(0, 0, 0, 0, 100), switch(0, 1, 1, TASK_INTERRUPTIBLE, 0), dying, switch(10, 0, 100, EXIT_DEAD, 1)];
        let p = feed(&events).path(100, 0, 15 * MS, &no_names);
        assert_eq!(summary(&p), [(0, 10, 100, "running"), (10, 15, 1, "running")]);
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

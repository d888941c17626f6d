//! Reduces a system-wide trace to what the analysis of one command needs, event by event as
//! the rings are drained, so memory follows the command's own processes and not the length
//! of the trace or the activity of the rest of the machine.
//!
//! Tracked: the command's process tree (per-process totals for [`Summary`]), the engine
//! daemons while one of its engine CLIs is live, and what those daemons fork meanwhile
//! (shims, runtimes, the container). Their decoded events are buffered only while an engine
//! CLI is live (plus a short tail before it); each CLI's exit cuts its window into phases
//! (attribution) and the buffer is let go. Everything else is counted by event name and
//! dropped undecoded.
//!
//! Per-task state (which thread belongs to which process, when it went on or off a CPU and
//! why) is updated from each event in time order: the place for further per-task state
//! machines (wakeups, critical path) to hook in.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::attribution::{self, Attribution, Instruments, Window};
use super::critical::{CriticalPath, Tracker};
use super::event::{Event, FAULTS_PER_SAMPLE, PAGE_FAULT};
use super::procs::{self, DAEMONS};
use super::session::RawEvent;
use super::summary::{OffCpu, ProcStat, Summary};

/// The CLIs whose run is a container start to break down.
pub const ENGINE_CLIS: &[&str] = &["docker", "podman"];

/// How far back the buffer reaches when no engine CLI is live: an engine CLI's window opens
/// at its fork, which comes before the exec that says it is one (microseconds to
/// milliseconds later).
const TAIL_NS: u64 = 500_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// The command or one of its descendants.
    Tree,
    /// Forked by an engine daemon while one of the command's engine CLIs was live.
    Engine,
}

#[derive(Debug, Default)]
struct Thread {
    tgid: u32,
    /// Switched in at.
    on_since: Option<u64>,
    /// Switched out at, and the state it left in (`prev_state`).
    off_since: Option<(u64, i64)>,
}

pub struct Reducer {
    root: u32,
    start: u64,
    instruments: Instruments,
    comm_of: fn(u32) -> Option<String>,
    /// Live tracked processes (tgid) and why.
    tracked: HashMap<u32, Role>,
    /// Engine daemons found when an engine CLI started.
    daemons: HashSet<u32>,
    /// Threads of tracked processes and daemons, by tid.
    threads: HashMap<u32, Thread>,
    /// Forks by the tree whose child has not run yet: (parent tgid, time, comm).
    forks: HashMap<u32, (u32, u64, String)>,
    /// Every process of the tree, in order of first sight; `live` indexes the running ones.
    procs: Vec<ProcStat>,
    live: HashMap<u32, usize>,
    /// Engine CLIs of the tree still running: tgid → its window's start.
    clis: HashMap<u32, u64>,
    /// Windows of engine CLIs that exited, not cut into phases yet ([`Reducer::trim`]),
    /// each with how much of `buffer` was fed by its exit (its window's events end there).
    ended: Vec<(Window, usize)>,
    buffer: Vec<Event>,
    breakdowns: Vec<Attribution>,
    /// Events of untracked tasks, by name: seen, not kept.
    others: BTreeMap<String, u64>,
    events: u64,
    last_ns: u64,
    /// The command's critical path, when asked for: fed every event of a kept task (the
    /// threads above) and, of other tasks, what their waits need (critical.rs).
    critical: Option<Tracker>,
}

impl Reducer {
    /// `root` is the traced command's pid, spawned at `start`.
    pub fn new(root: u32, start: u64, instruments: Instruments, comm_of: fn(u32) -> Option<String>) -> Self {
        let mut r = Reducer {
            root,
            start,
            instruments,
            comm_of,
            tracked: HashMap::from([(root, Role::Tree)]),
            daemons: HashSet::new(),
            threads: HashMap::from([(root, Thread { tgid: root, ..Default::default() })]),
            forks: HashMap::new(),
            procs: Vec::new(),
            live: HashMap::new(),
            clis: HashMap::new(),
            ended: Vec::new(),
            buffer: Vec::new(),
            breakdowns: Vec::new(),
            others: BTreeMap::new(),
            events: 0,
            last_ns: start,
            critical: None,
        };
        r.proc_entry(root, start);
        r
    }

    /// Also walks the command's critical path (`probe trace --critical-path`), naming where
    /// each task blocked from its switch-out stacks with `syms` (`--kernel-stacks`).
    pub fn with_critical_path(mut self, syms: Option<crate::sys::kallsyms::Kallsyms>) -> Self {
        let mut t = Tracker::streaming(self.start);
        if let Some(k) = syms {
            t = t.with_stacks(std::rc::Rc::new(k));
        }
        t.watch(self.root, self.root, self.start);
        self.critical = Some(t);
        self
    }

    /// The tasks the critical path keeps a log of.
    fn kept(&self, tid: u32) -> bool {
        self.threads.contains_key(&tid)
    }

    fn engaged(&self) -> bool {
        !self.clis.is_empty()
    }

    fn relevant_pid(&self, pid: u32) -> bool {
        self.tracked.contains_key(&pid) || (self.engaged() && self.daemons.contains(&pid))
    }

    /// The command's processes still running, as far as the events drained so far tell.
    pub fn live_pids(&self) -> Vec<u32> {
        self.live.keys().copied().collect()
    }

    /// Events seen so far, kept or not.
    pub fn events(&self) -> u64 {
        self.events
    }

    pub fn feed(&mut self, r: &RawEvent<'_>) {
        self.events += 1;
        self.last_ns = self.last_ns.max(r.time_ns);
        let short = r.name().rsplit('/').next().unwrap_or("");
        let relevant = self.relevant_pid(r.pid)
            || (short == "sched_switch" && r.int("next_pid").is_some_and(|n| self.threads.contains_key(&(n as u32))));
        if !relevant {
            match self.others.get_mut(r.name()) {
                Some(n) => *n += 1,
                None => {
                    self.others.insert(r.name().to_string(), 1);
                }
            }
            if let Some(mut c) = self.critical.take() {
                let kept = |t: u32| self.kept(t);
                // Of other tasks: who is on each CPU, disk requests, exec names, and the
                // wakeups and stop signals aimed at a kept task (decoded only then).
                let wanted = match short {
                    "sched_switch" | "sched_process_exec" | "block_rq_issue" | "block_rq_complete" => true,
                    "sched_waking" | "signal_generate" => r.int("pid").is_some_and(|p| kept(p as u32)),
                    _ => false,
                };
                if wanted {
                    c.feed(&r.decode(), &kept);
                }
                self.critical = Some(c);
            }
            return;
        }
        self.apply(r.decode());
    }

    /// Updates the per-task state from one decoded event of a tracked task, in time order.
    fn apply(&mut self, e: Event) {
        self.last_ns = self.last_ns.max(e.time_ns);
        // Every event fires in the context of its task, which says which process it is in.
        if self.relevant_pid(e.pid) {
            let th = self.threads.entry(e.tid).or_default();
            th.tgid = e.pid;
            // An event in a task's own context means it is on a CPU again. Its switch-in is
            // usually seen first, but not always: switch-ins recorded in an idle CPU's context
            // went missing from the rings in some runs (seen on this VM: every `swapper/1 -> X`
            // of a trace absent, with no record counted lost), and the task's off-CPU time
            // would then never be closed. Its own next event closes it instead.
            if let Some((off, state)) = th.off_since.take() {
                th.on_since = Some(e.time_ns);
                let tgid = th.tgid;
                if let Some(&i) = self.live.get(&tgid) {
                    self.procs[i].off_cpu.add(state, e.time_ns.saturating_sub(off));
                }
            }
        }
        // Before the exit below lets the task go: the path needs its last switch-out.
        if let Some(mut c) = self.critical.take() {
            c.feed(&e, &|t| self.kept(t));
            self.critical = Some(c);
        }
        if let Some(&(parent, at, ref comm)) = self.forks.get(&e.pid) {
            if e.tid == e.pid {
                let comm = comm.clone();
                self.forks.remove(&e.pid);
                let i = self.proc_entry(e.pid, at);
                self.procs[i].parent = Some(parent);
                self.procs[i].name = comm;
                if let Some(&p) = self.live.get(&parent) {
                    self.procs[p].children += 1;
                }
            }
        }
        if let Some(&i) = self.live.get(&e.pid) {
            let p = &mut self.procs[i];
            // A sampled count is an estimate, and its name says so.
            let (name, n) = match e.uint(FAULTS_PER_SAMPLE) {
                Some(per) if e.name == PAGE_FAULT && per > 1 => (format!("{PAGE_FAULT} ≈"), per),
                _ => (e.short_name().to_string(), 1),
            };
            *p.events.entry(name).or_default() += n;
        }
        match e.short_name() {
            "sched_process_fork" => self.on_fork(&e),
            "sched_process_exec" => self.on_exec(&e),
            "sched_process_exit" => self.on_exit(&e),
            "sched_switch" => self.on_switch(&e),
            "block_rq_issue" => {
                if let Some(&i) = self.live.get(&e.pid) {
                    let p = &mut self.procs[i];
                    p.block_io += 1;
                    p.block_bytes += e.uint("bytes").unwrap_or(0);
                    if let Some(dev) = e.uint("dev") {
                        *p.devices.entry(dev_name(dev)).or_default() += 1;
                    }
                }
            }
            n if n == PAGE_FAULT => {
                if let Some(&i) = self.live.get(&e.pid) {
                    self.procs[i].page_faults += e.uint(FAULTS_PER_SAMPLE).unwrap_or(1);
                }
            }
            _ => {}
        }
        self.buffer.push(e);
    }

    fn on_fork(&mut self, e: &Event) {
        let Some(child) = e.int("child_pid").map(|c| c as u32) else { return };
        let role = match self.tracked.get(&e.pid) {
            Some(Role::Tree) => Role::Tree,
            // The daemons' children while engaged: shims, runtimes, the container.
            _ => Role::Engine,
        };
        // A new thread shares its parent's tgid and never shows up as a pid of its own;
        // a new process does, with the fork's child_pid as its pid.
        self.tracked.entry(child).or_insert(role);
        // Until its first event says otherwise, the child is taken for a process of its own.
        self.threads.entry(child).or_insert_with(|| Thread { tgid: child, ..Default::default() });
        if role == Role::Tree {
            let comm = e.str("child_comm").unwrap_or("").to_string();
            self.forks.insert(child, (e.pid, e.time_ns, comm));
        }
    }

    fn on_exec(&mut self, e: &Event) {
        let exe = e.str("filename").map(|f| f.rsplit('/').next().unwrap_or(f).to_string());
        let Some(&i) = self.live.get(&e.pid) else { return };
        let p = &mut self.procs[i];
        if let Some(exe) = exe {
            p.name = exe.chars().take(15).collect();
            if ENGINE_CLIS.contains(&exe.as_str()) && !self.clis.contains_key(&e.pid) {
                if self.clis.is_empty() {
                    // Daemons are long-lived: found once per engagement, by name.
                    self.daemons = procs::pids_named(DAEMONS);
                    if let Some(c) = &mut self.critical {
                        // Their threads are kept from now: a wakeup of a thread not yet
                        // seen running is then not missed.
                        for &d in &self.daemons {
                            for tid in crate::sys::procfs::threads_of(d) {
                                self.threads.entry(tid).or_insert_with(|| Thread { tgid: d, ..Default::default() });
                                c.watch(tid, d, e.time_ns);
                            }
                        }
                    }
                }
                let from = if e.pid == self.root { self.start } else { p.start };
                self.clis.insert(e.pid, from);
            }
            p.exe = Some(exe);
        }
    }

    fn on_exit(&mut self, e: &Event) {
        if let Some(t) = self.threads.remove(&e.tid) {
            if let (Some(on), Some(&i)) = (t.on_since, self.live.get(&t.tgid)) {
                self.procs[i].on_cpu_ns += e.time_ns.saturating_sub(on);
            }
        }
        if e.tid != e.pid {
            self.tracked.remove(&e.tid);
            self.forks.remove(&e.tid);
            return;
        }
        self.tracked.remove(&e.pid);
        self.forks.remove(&e.pid);
        if let Some(i) = self.live.remove(&e.pid) {
            self.procs[i].end = Some(e.time_ns);
        }
        if let Some(from) = self.clis.remove(&e.pid) {
            self.ended.push((Window { start: from, end: e.time_ns, root: e.pid }, self.buffer.len()));
            if self.clis.is_empty() {
                // The daemons' other work is not the command's business any more.
                let tracked = &self.tracked;
                self.threads.retain(|_, t| tracked.contains_key(&t.tgid));
            }
        }
    }

    fn on_switch(&mut self, e: &Event) {
        let (Some(prev), Some(next)) = (e.int("prev_pid").map(|p| p as u32), e.int("next_pid").map(|n| n as u32)) else { return };
        let state = e.int("prev_state").unwrap_or(0);
        let t = e.time_ns;
        let next_comm = e.str("next_comm").unwrap_or("").to_string();
        if let Some(th) = self.threads.get_mut(&prev) {
            let on = th.on_since.take();
            th.off_since = Some((t, state));
            if let Some(&i) = self.live.get(&th.tgid) {
                let p = &mut self.procs[i];
                if let Some(on) = on {
                    p.on_cpu_ns += t.saturating_sub(on);
                }
                if prev == th.tgid {
                    if let Some(comm) = e.str("prev_comm") {
                        p.name = comm.to_string();
                    }
                }
                if runnable(state) && next != 0 {
                    *p.preempted_by.entry(next_comm).or_default() += 1;
                }
            }
        }
        if let Some(th) = self.threads.get_mut(&next) {
            th.on_since = Some(t);
            if let (Some((off, state)), Some(&i)) = (th.off_since.take(), self.live.get(&th.tgid)) {
                self.procs[i].off_cpu.add(state, t.saturating_sub(off));
            }
        }
    }

    fn proc_entry(&mut self, tgid: u32, at: u64) -> usize {
        if let Some(&i) = self.live.get(&tgid) {
            return i;
        }
        self.procs.push(ProcStat { tgid, start: at, name: (self.comm_of)(tgid).unwrap_or_default(), ..Default::default() });
        self.live.insert(tgid, self.procs.len() - 1);
        self.procs.len() - 1
    }

    /// Cuts one engine CLI's window into phases, from the first `fed` buffered events; kept
    /// when it started a container.
    fn cut(&mut self, w: Window, fed: usize) {
        // Everything the window's processes did starts inside it (the CLI's fork opens it).
        let from = self.buffer.partition_point(|e| e.time_ns < w.start);
        let a = attribution::attribute(&self.buffer[from..fed], w, self.instruments, &|p| (self.comm_of)(p));
        if a.init_pid.is_some() {
            self.breakdowns.push(a);
        }
    }

    /// Cuts the windows of the engine CLIs that exited into phases, calling `between` after
    /// each. A cut reads back through every event buffered since its CLI began: with dozens
    /// of CLIs started together and ending in one drain, the cuts took longer than the
    /// kernel rings take to fill (50 concurrent `docker run`: 93k records lost), so the
    /// caller empties the rings between them.
    fn cut_ended(&mut self, between: &mut dyn FnMut()) {
        for (w, fed) in std::mem::take(&mut self.ended) {
            self.cut(w, fed);
            between();
        }
    }

    /// Cuts the windows of the engine CLIs that exited (calling `between` after each), then
    /// lets go of buffered events no live engine CLI's window can need. Called after each
    /// drain.
    pub fn trim(&mut self, between: &mut dyn FnMut()) {
        self.cut_ended(between);
        let keep_from = self.clis.values().min().copied().unwrap_or(self.last_ns).saturating_sub(TAIL_NS);
        self.buffer.retain(|e| e.time_ns >= keep_from);
        if self.buffer.capacity() > 4 * self.buffer.len().max(1024) {
            self.buffer.shrink_to_fit();
        }
    }

    /// The command ended at `end`: the analysis of everything seen. When the command itself
    /// is an engine CLI, its window is the command's (from the spawn), as before.
    pub fn finish(mut self, end: u64) -> Finished {
        // The command's path ends at its exit: what follows is probe noticing it (a drain
        // can be under way then), not the command's time.
        let exited = self.procs.first().and_then(|p| p.end).filter(|&x| x > self.start && x <= end).unwrap_or(end);
        let critical = self.critical.as_ref().map(|c| c.path(self.root, self.start, exited, &|p| (self.comm_of)(p)));
        self.cut_ended(&mut || {});
        let open: Vec<(u32, u64)> = self.clis.drain().collect();
        for (pid, from) in open {
            self.cut(Window { start: from, end, root: pid }, self.buffer.len());
        }
        // Threads still on or off a CPU at the end count up to it.
        for th in self.threads.values() {
            let Some(&i) = self.live.get(&th.tgid) else { continue };
            if let Some(on) = th.on_since {
                self.procs[i].on_cpu_ns += end.saturating_sub(on);
            }
            if let Some((off, state)) = th.off_since {
                self.procs[i].off_cpu.add(state, end.saturating_sub(off));
            }
        }
        for p in &mut self.procs {
            p.end.get_or_insert(end);
        }
        Finished {
            summary: Summary {
                window: Window { start: self.start, end, root: self.root },
                procs: self.procs,
                others: self.others,
            },
            breakdowns: self.breakdowns,
            events: self.events,
            critical,
        }
    }
}

/// What a trace comes to.
pub struct Finished {
    pub summary: Summary,
    /// One phase breakdown per container start, in the order they ended.
    pub breakdowns: Vec<Attribution>,
    pub events: u64,
    /// The command's critical path, when asked for.
    pub critical: Option<CriticalPath>,
}

/// `prev_state` of a task switched out while it could still run (preempted): TASK_RUNNING,
/// or since Linux 4.14 the TASK_REPORT_MAX bit the tracepoint sets for a preemption.
fn runnable(state: i64) -> bool {
    state == 0 || state & !0xff != 0
}

impl OffCpu {
    fn add(&mut self, state: i64, ns: u64) {
        match state & 0xff {
            _ if runnable(state) => self.runnable_ns += ns,
            // TASK_INTERRUPTIBLE: waiting for an event (a child, a pipe, a timer, a lock).
            1 => self.sleep_ns += ns,
            // TASK_UNINTERRUPTIBLE: mostly disk I/O and kernel locks.
            2 => self.blocked_ns += ns,
            _ => self.other_ns += ns,
        }
    }
}

/// `major:minor` of a block tracepoint's `dev` (the kernel's MKDEV: 20 bits of minor).
fn dev_name(dev: u64) -> String {
    format!("{}:{}", dev >> 20, dev & 0xfffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The reducer is fed decoded events here through `apply`, the same path `feed` takes
    // once a record is found relevant.
    fn ev(t: u64, pid: u32, tid: u32, name: &str, fields: &[(&str, i64)], strs: &[(&str, &str)]) -> Event {
        use crate::trace::format::Value;
        let mut f: BTreeMap<String, Value> = fields.iter().map(|(k, v)| (k.to_string(), Value::Int(*v))).collect();
        f.extend(strs.iter().map(|(k, v)| (k.to_string(), Value::Str(v.to_string()))));
        Event { time_ns: t, cpu: 0, pid, tid, name: name.into(), fields: f, callchain: Vec::new() }
    }
    fn switch(t: u64, prev: u32, state: i64, next: u32) -> Event {
        ev(t, prev, prev, "sched/sched_switch", &[("prev_pid", prev as i64), ("prev_state", state), ("next_pid", next as i64)], &[("next_comm", "other")])
    }
    fn reducer() -> Reducer {
        let instruments = Instruments { sched_switch: true, page_faults: true };
        Reducer::new(100, 0, instruments, |_| Some("cmd".into()))
    }
    fn feed(r: &mut Reducer, events: Vec<Event>) {
        for e in events {
            if r.relevant_pid(e.pid) || r.threads.contains_key(&(e.int("next_pid").unwrap_or(-1) as u32)) {
                r.apply(e);
            }
        }
        r.trim(&mut || {});
    }

    #[test]
    fn on_and_off_cpu_by_reason() {
        let mut r = reducer();
        feed(
            &mut r,
            vec![
                switch(10, 7, 0, 100),
                switch(30, 100, 1, 7),  // sleeps 30..50
                switch(50, 7, 0, 100),
                switch(60, 100, 0, 7),  // preempted 60..65
                switch(65, 7, 0, 100),
                switch(70, 100, 2, 7),  // disk wait 70..90
                switch(90, 7, 0, 100),
                ev(95, 100, 100, "sched/sched_process_exit", &[], &[]),
            ],
        );
        let f = r.finish(100);
        let p = &f.summary.procs[0];
        assert_eq!(p.on_cpu_ns, 20 + 10 + 5 + 5);
        assert_eq!((p.off_cpu.sleep_ns, p.off_cpu.runnable_ns, p.off_cpu.blocked_ns), (20, 5, 20));
        assert_eq!(p.preempted_by.get("other"), Some(&1));
        assert_eq!(p.end, Some(95));
    }

    #[test]
    fn children_are_tracked_threads_are_not_processes() {
        let mut r = reducer();
        let fork = |t, parent, child| ev(t, parent, parent, "sched/sched_process_fork", &[("child_pid", child)], &[("child_comm", "sh")]);
        feed(
            &mut r,
            vec![
                fork(1, 100, 101),
                fork(2, 100, 102),
                ev(3, 100, 102, "syscalls/sys_enter_mount", &[], &[]), // 102 is a thread of 100
                ev(4, 101, 101, "sched/sched_process_exec", &[], &[("filename", "/bin/true")]),
                fork(5, 101, 103),
                ev(6, 103, 103, PAGE_FAULT, &[(FAULTS_PER_SAMPLE, 16)], &[]),
                ev(7, 999, 999, "sched/sched_process_exec", &[], &[("filename", "/bin/other")]),
            ],
        );
        let f = r.finish(10);
        let names: Vec<(u32, &str, Option<u32>)> = f.summary.procs.iter().map(|p| (p.tgid, p.name.as_str(), p.parent)).collect();
        assert_eq!(names, [(100, "cmd", None), (101, "true", Some(100)), (103, "sh", Some(101))]);
        assert_eq!((f.summary.procs[0].children, f.summary.procs[1].children), (1, 1));
        assert_eq!(f.summary.procs[2].page_faults, 16);
        assert!(f.breakdowns.is_empty());
    }

    #[test]
    fn buffer_keeps_only_a_tail_without_engine_cli() {
        let mut r = reducer();
        let s = 1_000_000_000;
        feed(&mut r, (0..10).map(|i| ev(i * s, 100, 100, "syscalls/sys_enter_mount", &[], &[])).collect());
        assert!(r.buffer.iter().all(|e| e.time_ns >= 9 * s), "{} kept", r.buffer.len());
        // While an engine CLI runs, its whole window stays.
        feed(&mut r, vec![ev(10 * s, 100, 100, "sched/sched_process_exec", &[], &[("filename", "/usr/bin/docker")])]);
        feed(&mut r, (11..20).map(|i| ev(i * s, 100, 100, "syscalls/sys_enter_mount", &[], &[])).collect());
        assert!(r.buffer.iter().any(|e| e.time_ns == 10 * s));
    }

    /// The path is fed from the reducer's own stream and ends at the command's traced exit,
    /// not at `finish` (when probe noticed it).
    #[test]
    fn critical_path_ends_at_the_commands_exit() {
        let mut r = reducer().with_critical_path(None);
        feed(
            &mut r,
            vec![
                switch(0, 7, 0, 100),
                switch(10, 100, 1, 7),
                switch(40, 7, 0, 100),
                ev(60, 100, 100, "sched/sched_process_exit", &[], &[]),
                switch(61, 100, 0x20, 7),
            ],
        );
        let p = r.finish(90).critical.expect("asked for");
        assert_eq!((p.start, p.end), (0, 60));
        let states: Vec<(u64, u64, &str)> = p.steps.iter().map(|s| (s.start, s.end, s.state.word())).collect();
        assert_eq!(states, [(0, 10, "running"), (10, 40, "sleeping"), (40, 60, "running")]);
    }

    #[test]
    fn each_engine_cli_gets_its_own_window() {
        let mut r = reducer();
        let fork = |t, parent, child| ev(t, parent, parent, "sched/sched_process_fork", &[("child_pid", child)], &[("child_comm", "sh")]);
        let exec = |t, pid, f| ev(t, pid, pid, "sched/sched_process_exec", &[], &[("filename", f)]);
        let exit = |t, pid| ev(t, pid, pid, "sched/sched_process_exit", &[], &[]);
        feed(&mut r, vec![fork(10, 100, 101), exec(11, 101, "/usr/bin/docker"), exit(20, 101)]);
        feed(&mut r, vec![fork(30, 100, 102), exec(31, 102, "/usr/bin/docker")]);
        assert_eq!(r.clis.get(&102), Some(&30), "window opens at the CLI's fork");
        feed(&mut r, vec![exit(40, 102)]);
        assert!(r.clis.is_empty());
        // No pivot_root in these windows: no container started, so no breakdown is kept.
        assert!(r.finish(50).breakdowns.is_empty());
    }
}

//! What a traced command's processes did, whatever the command is: per process time on and
//! off a CPU (and why off), block I/O, page faults, children, and event counts. Built event
//! by event by the reducer (`reduce.rs`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::attribution::{Attribution, ProcLine, Window};

/// Time a process's threads spent switched out, by the state they left the CPU in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OffCpu {
    /// Preempted while runnable: waiting for a CPU.
    pub runnable_ns: u64,
    /// Interruptible sleep: waiting for a child, a pipe, a timer, a futex.
    pub sleep_ns: u64,
    /// Uninterruptible sleep: mostly disk I/O.
    pub blocked_ns: u64,
    pub other_ns: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ProcStat {
    pub tgid: u32,
    pub parent: Option<u32>,
    /// Last known command name.
    pub name: String,
    pub exe: Option<String>,
    /// Fork (or, for the command itself, spawn) and exit, CLOCK_MONOTONIC ns; a process
    /// still running when the trace ended ends there.
    pub start: u64,
    pub end: Option<u64>,
    /// Summed over its threads.
    pub on_cpu_ns: u64,
    pub off_cpu: OffCpu,
    pub block_io: u64,
    pub block_bytes: u64,
    /// Block requests per device (`major:minor`).
    pub devices: BTreeMap<String, u64>,
    /// Estimated from samples when page faults are sampled.
    pub page_faults: u64,
    pub children: u64,
    /// Who took the CPU when one of its threads was preempted (comm → times).
    pub preempted_by: BTreeMap<String, u64>,
    /// Its events by short name (page faults counted for what their samples stand for).
    pub events: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub window: Window,
    /// The command's process tree, in order of first sight.
    pub procs: Vec<ProcStat>,
    /// Events of every other task, by `system/name`: seen, counted, not kept.
    pub others: BTreeMap<String, u64>,
}

impl Summary {
    /// The process tree as a timeline without phases (nothing to cut it by).
    pub fn timeline(&self) -> Attribution {
        let w = self.window;
        let mut a = Attribution::from_records(w, &[]);
        a.procs = self
            .procs
            .iter()
            .map(|p| ProcLine {
                tgid: p.tgid,
                parent: p.parent,
                name: p.name.clone(),
                start: p.start.clamp(w.start, w.end),
                end: p.end.unwrap_or(w.end).clamp(w.start, w.end),
            })
            .collect();
        a
    }

    /// (process name, event) → count over the tree.
    pub fn counts(&self) -> BTreeMap<(String, String), u64> {
        let mut m = BTreeMap::new();
        for p in &self.procs {
            for (e, n) in &p.events {
                *m.entry((p.name.clone(), e.clone())).or_default() += n;
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_merge_processes_of_one_name() {
        let p = |tgid, n| ProcStat { tgid, name: "sh".into(), events: [("sched_switch".to_string(), n)].into(), ..Default::default() };
        let s = Summary { window: Window { start: 0, end: 10, root: 1 }, procs: vec![p(1, 2), p(2, 3)], others: BTreeMap::new() };
        assert_eq!(s.counts()[&("sh".to_string(), "sched_switch".to_string())], 5);
        let t = s.timeline();
        assert_eq!((t.procs.len(), t.procs[0].end), (2, 10), "a process not seen exiting runs to the end");
    }
}

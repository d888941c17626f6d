//! When each task was on a CPU, rebuilt from `sched_switch`: a task runs on a CPU from the
//! switch that picked it (`next_pid`) to the switch that took it off (`prev_pid`).

use std::collections::HashMap;

use super::event::Event;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub tid: u32,
    pub start: u64,
    pub end: u64,
}

/// On-CPU intervals of every task, clipped to [start, end]. A task already running when the
/// window opens is counted from `start` (its switch-in happened before).
pub fn runs(events: &[Event], start: u64, end: u64) -> Vec<Run> {
    let mut since: HashMap<u32, (u32, u64)> = HashMap::new();
    let mut out = Vec::new();
    for e in events.iter().filter(|e| e.short_name() == "sched_switch") {
        let (Some(prev), Some(next)) = (e.int("prev_pid"), e.int("next_pid")) else { continue };
        // Before the first switch seen on a CPU, its task has run since the window opened;
        // after it, a prev that is not the task last switched in means a lost record, and
        // guessing a start would invent CPU time.
        let from = match since.get(&e.cpu) {
            Some(&(tid, t)) if tid == prev as u32 => t,
            Some(_) => e.time_ns,
            None => start,
        };
        let (s, t) = (from.max(start), e.time_ns.min(end));
        if t > s && prev != 0 {
            out.push(Run { tid: prev as u32, start: s, end: t });
        }
        since.insert(e.cpu, (next as u32, e.time_ns));
    }
    for (tid, t) in since.into_values() {
        if tid != 0 && end > t.max(start) {
            out.push(Run { tid, start: t.max(start), end });
        }
    }
    out
}

/// Total length of the union of intervals (several CPUs may run the same group at once).
pub fn union_len(mut iv: Vec<(u64, u64)>) -> u64 {
    iv.sort_unstable();
    let mut total = 0;
    let mut cur: Option<(u64, u64)> = None;
    for (s, e) in iv {
        match cur {
            Some((cs, ce)) if s <= ce => cur = Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                cur = Some((s, e));
            }
            None => cur = Some((s, e)),
        }
    }
    total + cur.map_or(0, |(s, e)| e - s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::format::Value;

    fn switch(t: u64, cpu: u32, prev: i64, next: i64) -> Event {
        Event {
            time_ns: t,
            cpu,
            pid: prev as u32,
            tid: prev as u32,
            name: "sched/sched_switch".into(),
            fields: [("prev_pid".to_string(), Value::Int(prev)), ("next_pid".to_string(), Value::Int(next))].into(),
            callchain: Vec::new(),
        }
    }

    #[test]
    fn runs_from_switches() {
        let ev = [switch(10, 0, 0, 5), switch(30, 0, 5, 7), switch(35, 1, 9, 5), switch(50, 1, 5, 0)];
        let r = runs(&ev, 0, 100);
        assert!(r.contains(&Run { tid: 5, start: 10, end: 30 }));
        assert!(r.contains(&Run { tid: 9, start: 0, end: 35 }), "running at window start");
        assert!(r.contains(&Run { tid: 5, start: 35, end: 50 }));
        assert!(r.contains(&Run { tid: 7, start: 30, end: 100 }), "still running at the end");
        assert!(r.iter().all(|x| x.tid != 0), "idle is not a task");
    }

    #[test]
    fn union_merges_overlaps() {
        assert_eq!(union_len(vec![(0, 10), (5, 15), (20, 25)]), 20);
        assert_eq!(union_len(vec![]), 0);
    }
}

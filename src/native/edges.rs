//! The parent's view of one container start: phase edges from itself, from the container's
//! init (report pipe) and from the exec counter group, turned into contiguous PhaseRecords.
//! Contiguous by construction: each phase ends where the next begins, so the named phases
//! cover the whole run from the first stamp to the last.

use crate::native::pipe::Record;
use crate::native::timing::{now_ns, CounterGroup, Snapshot, Target};
use crate::ground::phase::{Phase, PhaseRecord};

/// Which counter group a snapshot comes from; deltas are only taken within one group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Parent,
    Init,
    Exec,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Snap {
    pub source: Source,
    pub snap: Snapshot,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Mark {
    pub t_ns: u64,
    pub phase: Phase,
    pub detail: String,
    /// Closes the previous phase's counter delta.
    pub closes: Snap,
    /// Opens this phase's counter delta (differs from `closes` where the counting task
    /// changes, e.g. at execve).
    pub opens: Snap,
    /// Instrumentation time spent inside this phase.
    pub overhead_ns: u64,
}

pub struct Timeline {
    t0: u64,
    marks: Vec<Mark>,
    timing: bool,
}

thread_local! {
    /// The parent's counter group, opened once per thread and kept: opening and closing four
    /// perf events per container cost ~0.3 ms, and keeping one open also keeps the kernel's
    /// perf scheduling hooks enabled instead of toggling them (a text patch) on every run.
    static PARENT_GROUP: Option<CounterGroup> = CounterGroup::open(Target::SelfNow);
}

impl Timeline {
    /// Starts the clock and the first phase. Opening the parent's counter group (first run on
    /// a thread) is counted as that phase's overhead.
    pub fn start(timing: bool, phase: Phase, detail: &str) -> Timeline {
        let t0 = now_ns();
        let mut tl = Timeline {
            t0,
            marks: Vec::with_capacity(24),
            timing,
        };
        let snap = tl.parent_snap();
        tl.push_mark(t0, phase, detail, snap, snap, now_ns() - t0);
        tl
    }

    fn parent_snap(&self) -> Snap {
        let snap = match self.timing {
            true => PARENT_GROUP
                .with(|g| g.as_ref().map(CounterGroup::snapshot))
                .unwrap_or_default(),
            false => Snapshot::default(),
        };
        Snap {
            source: Source::Parent,
            snap,
        }
    }

    fn push_mark(
        &mut self,
        t_ns: u64,
        phase: Phase,
        detail: &str,
        closes: Snap,
        opens: Snap,
        overhead_ns: u64,
    ) {
        self.marks.push(Mark {
            t_ns,
            phase,
            detail: detail.to_string(),
            closes,
            opens,
            overhead_ns,
        });
    }

    /// Which phase was running at `t` (CLOCK_MONOTONIC ns), for an error message.
    pub fn phase_at(&self, t: u64) -> String {
        // The latest edge at or before `t`, by time: an init's marks are read late, so they
        // are not pushed in time order.
        match self.marks.iter().filter(|m| m.t_ns <= t).max_by_key(|m| m.t_ns) {
            Some(m) if m.detail.is_empty() => m.phase.to_string(),
            Some(m) => format!("{} ({})", m.phase, m.detail),
            None => "the previous run (this container had not started)".into(),
        }
    }

    /// A phase edge in the parent, now.
    pub fn mark(&mut self, phase: Phase, detail: &str) {
        let t = now_ns();
        let snap = self.parent_snap();
        self.push_mark(t, phase, detail, snap, snap, now_ns() - t);
    }

    /// A phase edge at time `t` whose counters come from another group: `closes` ends the
    /// previous phase, `opens` starts this one (None: the parent's group, read now).
    /// `overhead` is what reading them cost.
    pub fn mark_at(
        &mut self,
        t: u64,
        phase: Phase,
        detail: &str,
        closes: Snap,
        opens: Option<Snap>,
        overhead: u64,
    ) {
        let t1 = now_ns();
        let opens = opens.unwrap_or_else(|| self.parent_snap());
        let overhead = overhead + (now_ns() - t1);
        self.push_mark(t, phase, detail, closes, opens, overhead);
    }

    /// A phase edge reported by the container's init.
    pub fn mark_from_init(&mut self, rec: &Record) {
        if let Some(prev) = self.marks.last_mut() {
            prev.overhead_ns += rec.prev_write_ns();
        }
        let snap = Snap {
            source: Source::Init,
            snap: rec.snapshot(),
        };
        self.push_mark(
            rec.t_ns(),
            rec.phase(),
            rec.detail(),
            snap,
            snap,
            rec.overhead_ns(),
        );
    }

    /// Rewrites what the last mark opens (e.g. the exec phase, whose counters start at zero
    /// in the exec group instead of continuing the init's group).
    pub fn reopen_last(&mut self, opens: Snap) {
        if let Some(m) = self.marks.last_mut() {
            m.opens = opens;
        }
    }

    /// Ends the last phase and returns the records. Building them is instrumentation too:
    /// its time is added to the last phase and to that phase's overhead, so the records cover
    /// the run up to the moment they are handed back.
    pub fn finish(mut self) -> Vec<PhaseRecord> {
        let t_end = now_ns();
        let closes = self.parent_snap();
        let mut recs = records(self.t0, &mut self.marks, t_end, closes);
        if let Some(last) = recs.last_mut() {
            let building = now_ns() - t_end;
            last.dur_ns += building;
            last.overhead_ns += building;
        }
        recs
    }
}

/// Turns marks into contiguous records: mark i's phase runs until mark i+1 (or `t_end`).
/// Marks are stamped by different processes on one monotonic clock; sorting makes the order
/// of edges the order of time even when a report is read late.
pub fn records(t0: u64, marks: &mut [Mark], t_end: u64, closes_last: Snap) -> Vec<PhaseRecord> {
    marks.sort_by_key(|m| m.t_ns);
    (0..marks.len())
        .map(|i| {
            let m = &marks[i];
            let (end, closes) = match marks.get(i + 1) {
                Some(n) => (n.t_ns, n.closes),
                None => (t_end.max(m.t_ns), closes_last),
            };
            let counters = if m.opens.source == closes.source {
                m.opens.snap.delta(&closes.snap)
            } else {
                Default::default()
            };
            PhaseRecord {
                phase: m.phase,
                detail: (!m.detail.is_empty()).then(|| m.detail.clone()),
                start_ns: m.t_ns.saturating_sub(t0),
                dur_ns: end - m.t_ns,
                counters,
                overhead_ns: m.overhead_ns,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(source: Source, v: u64) -> Snap {
        Snap {
            source,
            snap: Snapshot {
                valid: true,
                values: [v, 0, v, 0],
            },
        }
    }

    fn mark(t: u64, phase: Phase, closes: Snap, opens: Snap) -> Mark {
        Mark {
            t_ns: t,
            phase,
            detail: String::new(),
            closes,
            opens,
            overhead_ns: 1,
        }
    }

    #[test]
    fn contiguous_and_deltas_only_within_one_group() {
        let p = |v| snap(Source::Parent, v);
        let i = |v| snap(Source::Init, v);
        let x = |v| snap(Source::Exec, v);
        let mut marks = vec![
            mark(100, Phase::Rootfs, p(0), p(0)),
            mark(150, Phase::Namespaces, p(40), p(40)),
            mark(300, Phase::Mounts, i(5), i(5)), // out of order on purpose: sorted below
            mark(200, Phase::Cgroup, i(0), i(0)),
            mark(400, Phase::Exec, i(90), x(0)),
            mark(450, Phase::Workload, x(30), x(30)),
            mark(900, Phase::Teardown, x(400), p(60)),
        ];
        let r = records(100, &mut marks, 1000, p(75));
        let phases: Vec<_> = r.iter().map(|r| r.phase).collect();
        assert_eq!(
            phases,
            [
                Phase::Rootfs,
                Phase::Namespaces,
                Phase::Cgroup,
                Phase::Mounts,
                Phase::Exec,
                Phase::Workload,
                Phase::Teardown
            ]
        );
        assert_eq!(
            r.iter().map(|r| r.dur_ns).sum::<u64>(),
            900,
            "contiguous: sums to the total"
        );
        assert_eq!(r[0].counters.task_clock_ns, Some(40));
        assert_eq!(
            r[1].counters.task_clock_ns, None,
            "parent→init edge has no common group"
        );
        assert_eq!(r[2].counters.task_clock_ns, Some(5));
        assert_eq!(r[3].counters.task_clock_ns, Some(85));
        assert_eq!(r[4].counters.task_clock_ns, Some(30));
        assert_eq!(r[5].counters.task_clock_ns, Some(370));
        assert_eq!(r[6].counters.task_clock_ns, Some(15));
        assert_eq!(r[4].start_ns, 300);
    }
}

//! Event counts per process of a run, for `probe trace`.

use std::collections::BTreeMap;

use super::event::{Event, FAULTS_PER_SAMPLE, PAGE_FAULT};
use super::procs::Procs;

/// (process name, event short name) → count, for events of the run's processes only. A
/// page-fault sample counts for the faults it stands for, under `page-faults ≈` when sampled
/// (so the row says it is an estimate).
pub fn counts(events: &[Event], procs: &Procs) -> BTreeMap<(String, String), u64> {
    let mut m = BTreeMap::new();
    for e in events.iter().filter(|e| procs.is_member(e.pid)) {
        let (name, n) = match e.uint(FAULTS_PER_SAMPLE) {
            Some(per) if e.name == PAGE_FAULT && per > 1 => (format!("{PAGE_FAULT} ≈"), per),
            _ => (e.short_name().to_string(), 1),
        };
        *m.entry((procs.name(e.pid), name)).or_default() += n;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::format::Value;

    fn ev(pid: u32, name: &str, fields: &[(&str, Value)]) -> Event {
        let fields = fields.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        Event { time_ns: 1, cpu: 0, pid, tid: pid, name: name.into(), fields }
    }

    #[test]
    fn sampled_faults_are_counted_as_faults_and_marked_estimates() {
        let per = |n| [(FAULTS_PER_SAMPLE, Value::Int(n))];
        let events = [
            ev(100, PAGE_FAULT, &per(16)),
            ev(100, PAGE_FAULT, &per(16)),
            ev(100, "sched/sched_switch", &[]),
            ev(100, PAGE_FAULT, &per(1)),
            ev(7, PAGE_FAULT, &per(16)),
        ];
        let procs = Procs::build(&events, 100, &|_| Some("cmd".into()));
        let c = counts(&events, &procs);
        assert_eq!(c[&("cmd".to_string(), "page-faults ≈".to_string())], 32);
        assert_eq!(c[&("cmd".to_string(), "page-faults".to_string())], 1, "period 1 is exact");
        assert_eq!(c[&("cmd".to_string(), "sched_switch".to_string())], 1);
        assert_eq!(c.values().sum::<u64>(), 34, "pid 7 is not part of the run");
    }
}

//! Event counts per process of a run, for `probe trace`.

use std::collections::BTreeMap;

use super::event::Event;
use super::procs::Procs;

/// (process name, event short name) → count, for events of the run's processes only.
pub fn counts(events: &[Event], procs: &Procs) -> BTreeMap<(String, String), u64> {
    let mut m = BTreeMap::new();
    for e in events.iter().filter(|e| procs.is_member(e.pid)) {
        *m.entry((procs.name(e.pid), e.short_name().to_string())).or_default() += 1;
    }
    m
}

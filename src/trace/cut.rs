//! Cuts a window into sequential, non-overlapping slices: coarse phases between boundary
//! markers, then short spans seen directly in the kernel (a mount syscall, a cgroup burst)
//! laid over them. Every nanosecond of the window ends up in exactly one slice.

use crate::ground::phase::Phase;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    pub phase: Phase,
    pub detail: Option<String>,
    pub start: u64,
    pub end: u64,
}

impl Span {
    pub fn new(phase: Phase, detail: Option<String>, start: u64, end: u64) -> Self {
        Span { phase, detail, start, end }
    }

    pub fn dur(&self) -> u64 {
        self.end - self.start
    }
}

/// `markers` are the coarse phases in lifecycle order with the time each starts (None: its
/// start marker was not seen). A phase runs until the next phase that was seen; the window
/// before the first seen marker, and a phase whose marker is missing, leave their time to
/// `unattributed` (naming what was missing) rather than to a neighbour.
pub fn background(start: u64, end: u64, markers: &[(Phase, Option<u64>)]) -> Vec<Span> {
    let mut out = Vec::new();
    let mut cur: Option<(Phase, Option<String>, u64)> = None;
    let mut missing: Vec<&str> = Vec::new();
    let mut pos = start;
    for &(phase, at) in markers {
        let Some(at) = at.map(|t| t.clamp(pos, end)) else {
            missing.push(phase.name());
            continue;
        };
        let (p, d, s) = cur.take().unwrap_or((Phase::Unattributed, Some("before the first marker".into()), start));
        let (p, d) = if missing.is_empty() {
            (p, d)
        } else {
            (Phase::Unattributed, Some(format!("no {} marker seen", missing.join("/"))))
        };
        if at > s {
            out.push(Span::new(p, d, s, at));
        }
        missing.clear();
        cur = Some((phase, None, at));
        pos = at;
    }
    let (p, d, s) = cur.unwrap_or((Phase::Unattributed, Some("no marker seen".into()), start));
    let (p, d) = if missing.is_empty() { (p, d) } else { (Phase::Unattributed, Some(format!("no {} marker seen", missing.join("/")))) };
    if end > s {
        out.push(Span::new(p, d, s, end));
    }
    out
}

/// Lays `overlays` (in increasing priority) over `base`, clipped to the window; the result
/// is sorted and gap-free wherever `base` was.
pub fn overlay(base: Vec<Span>, overlays: &[Span]) -> Vec<Span> {
    let mut cur = base;
    for o in overlays.iter().filter(|o| o.end > o.start) {
        let mut next = Vec::with_capacity(cur.len() + 2);
        let (lo, hi) = (cur.first().map_or(o.start, |s| s.start), cur.last().map_or(o.end, |s| s.end));
        let (os, oe) = (o.start.max(lo), o.end.min(hi));
        if oe <= os {
            continue;
        }
        let mut placed = false;
        for s in cur {
            if s.end <= os || s.start >= oe {
                if !placed && s.start >= oe {
                    next.push(Span::new(o.phase, o.detail.clone(), os, oe));
                    placed = true;
                }
                next.push(s);
                continue;
            }
            if s.start < os {
                next.push(Span::new(s.phase, s.detail.clone(), s.start, os));
            }
            if !placed {
                next.push(Span::new(o.phase, o.detail.clone(), os, oe));
                placed = true;
            }
            if s.end > oe {
                next.push(Span::new(s.phase, s.detail, oe, s.end));
            }
        }
        if !placed {
            next.push(Span::new(o.phase, o.detail.clone(), os, oe));
        }
        cur = next;
    }
    merge_adjacent(cur)
}

fn merge_adjacent(spans: Vec<Span>) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans {
        match out.last_mut() {
            Some(l) if l.phase == s.phase && l.detail == s.detail && l.end == s.start => l.end = s.end,
            _ => out.push(s),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use Phase::*;

    fn covers(spans: &[Span], start: u64, end: u64) {
        assert_eq!(spans.first().unwrap().start, start);
        assert_eq!(spans.last().unwrap().end, end);
        for w in spans.windows(2) {
            assert_eq!(w[0].end, w[1].start, "{spans:?}");
        }
    }

    #[test]
    fn markers_make_sequential_phases() {
        let b = background(0, 100, &[(Client, Some(0)), (Engine, Some(10)), (Runtime, Some(40)), (Teardown, Some(90))]);
        covers(&b, 0, 100);
        let got: Vec<_> = b.iter().map(|s| (s.phase, s.start, s.end)).collect();
        assert_eq!(got, [(Client, 0, 10), (Engine, 10, 40), (Runtime, 40, 90), (Teardown, 90, 100)]);
    }

    #[test]
    fn missing_marker_is_unattributed_not_absorbed() {
        let b = background(0, 100, &[(Client, Some(0)), (Engine, None), (Runtime, Some(40))]);
        assert_eq!(b[0].phase, Unattributed);
        assert_eq!((b[0].start, b[0].end), (0, 40));
        assert!(b[0].detail.as_deref().unwrap().contains("engine"));
        assert_eq!(b[1].phase, Runtime);
        covers(&b, 0, 100);
    }

    #[test]
    fn late_first_marker_leaves_head_unattributed() {
        let b = background(0, 100, &[(Engine, Some(30))]);
        assert_eq!((b[0].phase, b[0].end), (Unattributed, 30));
        covers(&b, 0, 100);
    }

    #[test]
    fn overlays_cut_into_base_and_clip() {
        let base = background(0, 100, &[(Client, Some(0)), (Runtime, Some(50))]);
        let spans = overlay(
            base,
            &[
                Span::new(Cgroup, None, 40, 60),
                Span::new(Namespaces, None, 55, 58),
                Span::new(Mounts, None, 95, 120),
            ],
        );
        covers(&spans, 0, 100);
        let got: Vec<_> = spans.iter().map(|s| (s.phase, s.start, s.end)).collect();
        assert_eq!(
            got,
            [(Client, 0, 40), (Cgroup, 40, 55), (Namespaces, 55, 58), (Cgroup, 58, 60), (Runtime, 60, 95), (Mounts, 95, 100)]
        );
    }

    #[test]
    fn adjacent_equal_spans_merge() {
        let spans = overlay(background(0, 10, &[(Client, Some(0))]), &[Span::new(Mounts, None, 2, 4), Span::new(Mounts, None, 4, 6)]);
        assert_eq!(spans.len(), 3);
        assert_eq!((spans[1].start, spans[1].end), (2, 6));
    }
}

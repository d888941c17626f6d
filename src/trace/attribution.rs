//! Cuts one run's wall time into the phases of `crate::ground::phase` from the kernel events of its
//! window. The boundaries, per engine, and the evidence for them are in docs/tracing.md.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::cut::{self, Span};
use super::event::{Event, FAULTS_PER_SAMPLE, PAGE_FAULT};
use super::oncpu;
use super::procs::{Procs, RUNTIMES};
use crate::ground::phase::{Counters, Phase, PhaseRecord};
use crate::sys::cgroup::is_container_scope;

/// The rep being explained: CLOCK_MONOTONIC [start, end] and the timed CLI's pid.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Window {
    pub start: u64,
    pub end: u64,
    pub root: u32,
}

/// Which of the instruments the slice statistics come from were recording: an absent one
/// makes its figures n/a, never 0.
#[derive(Clone, Copy, Debug, Default)]
pub struct Instruments {
    pub sched_switch: bool,
    pub page_faults: bool,
}

/// What the kernel saw inside one slice, counting only the run's processes.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SliceStats {
    /// Summed on-CPU time of the run's tasks (None: sched_switch not traced).
    pub on_cpu_ns: Option<u64>,
    /// Time in the slice when none of the run's tasks was on a CPU: waiting on I/O, locks,
    /// timers, or other load.
    pub off_cpu_ns: Option<u64>,
    pub switches: Option<u64>,
    /// Estimated from samples: each sample counts for the faults its period stands for.
    pub page_faults: Option<u64>,
    pub block_io: u64,
    /// The process with the most on-CPU time in the slice, and that time.
    pub top: Option<(String, u64)>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Slice {
    pub phase: Phase,
    pub detail: Option<String>,
    /// Absolute CLOCK_MONOTONIC ns.
    pub start: u64,
    pub end: u64,
    pub stats: SliceStats,
}

/// A process of the run, for the timeline.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProcLine {
    pub tgid: u32,
    pub parent: Option<u32>,
    pub name: String,
    pub start: u64,
    pub end: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Attribution {
    pub window: Window,
    pub slices: Vec<Slice>,
    pub procs: Vec<ProcLine>,
    /// The container's cgroup path (as cgroup_mkdir reported it), when one was created.
    pub container_cgroup: Option<String>,
    /// The container's init: the process that called pivot_root and exec'd the command.
    pub init_pid: Option<u32>,
}

const CLONE_NS: &[(u64, &str)] = &[
    (0x0002_0000, "mnt"),
    (0x0200_0000, "cgroup"),
    (0x0400_0000, "uts"),
    (0x0800_0000, "ipc"),
    (0x1000_0000, "user"),
    (0x2000_0000, "pid"),
    (0x4000_0000, "net"),
    (0x0000_0080, "time"),
];

/// Namespace types in CLONE_NEW* flags; setns(fd, 0) joins "any" type.
pub fn ns_names(flags: u64) -> String {
    let names: Vec<&str> = CLONE_NS.iter().filter(|(b, _)| flags & b != 0).map(|(_, n)| *n).collect();
    if names.is_empty() {
        "any".into()
    } else {
        names.join("+")
    }
}

/// Syscall spans [enter, exit] of one thread, pairing each `sys_enter_X` with the next
/// `sys_exit_X` of the same tid. An enter without exit (exit not traced) ends at the enter.
fn syscall_spans<'a>(events: &'a [Event], name: &str, keep: impl Fn(&Event) -> bool) -> Vec<(&'a Event, u64, Option<i64>)> {
    let enter = format!("sys_enter_{name}");
    let exit = format!("sys_exit_{name}");
    let mut open: HashMap<u32, &Event> = HashMap::new();
    let mut out = Vec::new();
    for e in events {
        let n = e.short_name();
        if n == enter && keep(e) {
            if let Some(prev) = open.insert(e.tid, e) {
                out.push((prev, prev.time_ns, None));
            }
        } else if n == exit {
            if let Some(en) = open.remove(&e.tid) {
                out.push((en, e.time_ns, e.int("ret")));
            }
        }
    }
    out.extend(open.into_values().map(|e| (e, e.time_ns, None)));
    out.sort_by_key(|(e, _, _)| e.time_ns);
    out
}

/// Groups nearby spans (gap ≤ `gap` ns) into one.
fn cluster(mut spans: Vec<(u64, u64)>, gap: u64) -> Vec<(u64, u64)> {
    spans.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (s, e) in spans {
        match out.last_mut() {
            Some(l) if s <= l.1 + gap => l.1 = l.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// Container cgroups are named after the container: docker's 64-hex id, libpod-<id>.
fn is_container_cgroup(path: &str) -> bool {
    let base = path.rsplit('/').next().unwrap_or(path);
    let hex_id = base.len() >= 64 && base.chars().filter(|c| c.is_ascii_hexdigit()).count() >= 64;
    (hex_id || base.starts_with("libpod-") || base.starts_with("probe-")) && !base.contains("conmon")
}

const MS: u64 = 1_000_000;

/// `events` in time order.
pub fn attribute(events: &[Event], w: Window, instruments: Instruments, comm_of: &dyn Fn(u32) -> Option<String>) -> Attribution {
    let procs = Procs::build(events, w.root, comm_of);
    // Events come in time order: the window is a sub-slice, found without copying it.
    let ev = &events[events.partition_point(|e| e.time_ns < w.start)..events.partition_point(|e| e.time_ns <= w.end)];
    let member = |e: &Event| procs.is_member(e.pid);

    // client → engine: the CLI's final exec, then (daemon engines) the daemon's first work.
    let cli_exec = ev
        .iter()
        .rev()
        .find(|e| e.pid == w.root && e.short_name() == "sched_process_exec")
        .map(|e| e.time_ns);
    let daemon_engine = procs.by_tgid.values().any(|p| p.member && p.exe.as_deref() == Some("docker"));
    let t_engine = if daemon_engine {
        const EVIDENCE: &[&str] = &[
            "sys_enter_mount",
            "sys_enter_umount",
            "sys_enter_fsync",
            "sys_enter_fdatasync",
            "sys_enter_setns",
            "sys_enter_unshare",
            "sched_process_fork",
            "cgroup_mkdir",
        ];
        ev.iter()
            // The daemon's evidence stands on its own: without the CLI's exec it is only
            // bounded by the window start (None < Some(_)).
            .filter(|e| Some(e.time_ns) > cli_exec && procs.is_daemon(e.pid) && EVIDENCE.contains(&e.short_name()))
            .map(|e| e.time_ns)
            .next()
    } else {
        cli_exec
    };

    // The container's init: whoever pivot_root'ed; its exec after that is the command.
    let pivot = ev.iter().rev().find(|e| member(e) && e.short_name() == "sys_enter_pivot_root");
    let init = pivot.map(|e| e.pid);
    let exec_enter = pivot.and_then(|p| {
        ev.iter()
            .find(|e| e.tid == p.tid && e.time_ns > p.time_ns && e.short_name() == "sys_enter_execve")
    });
    let exec_done = exec_enter.and_then(|x| {
        ev.iter()
            .find(|e| e.pid == x.pid && e.time_ns >= x.time_ns && e.short_name() == "sched_process_exec")
    });
    // execve returns after sched_process_exec fires: the command runs from that return.
    let exec_return = exec_done.map(|x| {
        ev.iter()
            .find(|e| e.tid == x.tid && e.time_ns >= x.time_ns && e.short_name() == "sys_exit_execve")
            .map_or(x.time_ns, |e| e.time_ns)
    });
    let exit = exec_done.and_then(|x| {
        ev.iter()
            .find(|e| e.tid == x.pid && e.time_ns >= x.time_ns && e.short_name() == "sched_process_exit")
    });
    // runtime starts at the earliest shim/monitor/runtime exec among init's ancestors.
    let t_runtime = init
        .map(|i| procs.ancestry(i))
        .into_iter()
        .flatten()
        .filter(|p| p.exe.as_deref().is_some_and(|x| RUNTIMES.contains(&x)))
        .filter_map(|p| p.exec_ns.iter().copied().rev().find(|&t| t >= w.start))
        .min()
        .or_else(|| {
            ev.iter()
                .filter(|e| member(e) && e.short_name() == "sched_process_exec")
                .find(|e| e.str("filename").is_some_and(|f| RUNTIMES.contains(&f.rsplit('/').next().unwrap_or(f))))
                .map(|e| e.time_ns)
        });

    let base = cut::background(
        w.start,
        w.end,
        &[
            (Phase::Client, Some(w.start)),
            (Phase::Engine, t_engine),
            (Phase::Runtime, t_runtime),
            (Phase::Exec, exec_enter.map(|e| e.time_ns)),
            (Phase::Workload, exec_return),
            (Phase::Teardown, exit.map(|e| e.time_ns)),
        ],
    );

    let mut overlays: Vec<Span> = Vec::new();
    let before_exec = exec_enter.map_or(w.end, |e| e.time_ns);
    let engine_side = |e: &Event| member(e) && !procs.is_runtime_side(e.pid);

    // OCI hooks: processes the runtime starts that are neither itself nor the container.
    let init_chain: Vec<u32> = init.map(|i| procs.ancestry(i).iter().map(|p| p.tgid).collect()).unwrap_or_default();
    for p in procs.by_tgid.values() {
        // runc re-execs itself (/proc/self/exe, then a sealed /dev/fd/N copy) on the way
        // to becoming init: those are the init chain, not hooks.
        let hook = p.member
            && !init_chain.contains(&p.tgid)
            && !p.comm.starts_with("runc")
            && procs.is_runtime_side(p.tgid)
            && p.exe.as_deref().is_some_and(|x| !RUNTIMES.contains(&x) && !x.starts_with("runc"));
        if let (true, Some(&start)) = (hook, p.exec_ns.last()) {
            if start < before_exec {
                let exe = p.exe.as_deref().unwrap_or("?");
                let detail = format!("hook ({exe})");
                match p.exit_ns {
                    Some(end) => overlays.push(Span::new(Phase::Runtime, Some(detail), start, end)),
                    None => {
                        // Without its exit the hook is known alive only up to its last event;
                        // after that, up to the container's exec, nobody can say whose time it is.
                        let seen = ev.iter().filter(|e| e.pid == p.tgid).map(|e| e.time_ns).max().unwrap_or(start);
                        overlays.push(Span::new(Phase::Runtime, Some(detail), start, seen));
                        let why = format!("hook ({exe}) exit not seen");
                        overlays.push(Span::new(Phase::Unattributed, Some(why), seen, before_exec));
                    }
                }
            }
        }
    }
    // rootfs: the engine's own mounts before the runtime takes over, and fuse-overlayfs.
    let until_runtime = t_runtime.unwrap_or(before_exec);
    for name in ["mount", "umount"] {
        for (e, end, _) in syscall_spans(ev, name, |e| engine_side(e) && e.time_ns < until_runtime) {
            overlays.push(Span::new(Phase::Rootfs, Some(name.into()), e.time_ns, end));
        }
    }
    for p in procs.by_tgid.values().filter(|p| p.member && p.exe.as_deref() == Some("fuse-overlayfs")) {
        if let Some(&start) = p.exec_ns.last() {
            let mounted = ev
                .iter()
                .find(|e| e.pid == p.tgid && e.short_name() == "sys_exit_mount" && e.time_ns >= start)
                .map(|e| e.time_ns);
            let end = mounted.or(p.exit_ns).unwrap_or(start);
            overlays.push(Span::new(Phase::Rootfs, Some("fuse-overlayfs".into()), start, end));
        }
    }
    // cgroup: bursts of mkdir/attach by the run before the command runs, and by systemd when
    // the runtime (systemd cgroup driver) asked it for the container's scope: then systemd,
    // not a process of the run, does the mkdir and the attach, and the scope's name ties
    // them to the run.
    let by_run = |e: &Event| member(e) || e.str("path").or(e.str("dst_path")).is_some_and(is_container_scope);
    let cg_events: Vec<&Event> = ev
        .iter()
        .filter(|e| by_run(e) && e.time_ns < before_exec && matches!(e.short_name(), "cgroup_mkdir" | "cgroup_attach_task"))
        .collect();
    let container_cgroup = ev
        .iter()
        .filter(|e| by_run(e) && e.short_name() == "cgroup_mkdir")
        .filter_map(|e| e.str("path"))
        .find(|p| is_container_cgroup(p))
        .map(str::to_string);
    let cg_path = |e: &Event| e.str("path").or(e.str("dst_path")).unwrap_or("").to_string();
    // A mkdir's span runs to the attach into the same cgroup: runc writes cgroup.procs
    // right after mkdir, and the wait in between is the attach itself (it takes
    // cgroup_threadgroup_rwsem for writing, which waits out an RCU grace period).
    let cg_key = |e: &Event| (cg_path(e), e.int("root").or(e.int("dst_root")));
    let cg_spans: Vec<(u64, u64)> = cg_events
        .iter()
        .map(|e| {
            let attach = (e.short_name() == "cgroup_mkdir")
                .then(|| cg_events.iter().find(|a| a.time_ns >= e.time_ns && a.short_name() == "cgroup_attach_task" && cg_key(a) == cg_key(e)))
                .flatten();
            (e.time_ns, attach.map_or(e.time_ns, |a| a.time_ns))
        })
        .collect();
    for (s, end) in cluster(cg_spans, MS) {
        let first = cg_events.iter().find(|e| e.time_ns == s).expect("cluster starts at an event");
        let path = cg_path(first);
        let detail = if container_cgroup.as_deref() == Some(path.as_str()) {
            "container".to_string()
        } else if is_container_cgroup(&path) {
            "another container".to_string()
        } else {
            path.rsplit('/').next().unwrap_or("").to_string()
        };
        overlays.push(Span::new(Phase::Cgroup, Some(detail), s, end));
    }
    // namespaces: unshare, setns and namespace-creating clone, per type.
    for (name, field) in [("unshare", "unshare_flags"), ("setns", "flags"), ("clone", "clone_flags")] {
        let ns = |e: &Event| e.uint(field).map_or(0, |f| f & CLONE_NS.iter().fold(0, |a, (b, _)| a | b));
        let keep = |e: &Event| member(e) && (name == "setns" || ns(e) != 0);
        for (e, end, _) in syscall_spans(ev, name, keep) {
            let detail = format!("{name} {}", ns_names(e.uint(field).unwrap_or(0)));
            overlays.push(Span::new(Phase::Namespaces, Some(detail), e.time_ns, end));
        }
    }
    // mounts: the container init's own mount work (rootfs prep, pivot_root, masks).
    if let Some(init) = init {
        let mut spans = Vec::new();
        for name in ["mount", "umount", "pivot_root"] {
            for (e, end, _) in syscall_spans(ev, name, |e| e.pid == init && e.time_ns < before_exec) {
                spans.push((e.time_ns, end));
            }
        }
        for (s, e) in cluster(spans, MS) {
            overlays.push(Span::new(Phase::Mounts, None, s, e));
        }
    }

    let spans = cut::overlay(base, &overlays);
    let slices = with_stats(ev, &procs, w, instruments, spans);
    let procs_lines = proc_lines(ev, &procs, w);
    Attribution {
        window: w,
        slices,
        procs: procs_lines,
        container_cgroup,
        init_pid: init,
    }
}

fn with_stats(ev: &[Event], procs: &Procs, w: Window, instruments: Instruments, spans: Vec<Span>) -> Vec<Slice> {
    let (sched, faults) = (instruments.sched_switch, instruments.page_faults);
    let tgid = |tid: u32| *procs.tgid_of.get(&tid).unwrap_or(&tid);
    let runs: Vec<oncpu::Run> = if sched {
        oncpu::runs(ev, w.start, w.end).into_iter().filter(|r| procs.is_member(tgid(r.tid))).collect()
    } else {
        Vec::new()
    };
    spans
        .into_iter()
        .map(|s| {
            // `ev` is in time order: the span's events are a sub-slice. Scanning all of `ev` per
            // span made a cut quadratic, minutes for 50 concurrent `docker run`s.
            let within = &ev[ev.partition_point(|e| e.time_ns < s.start)..ev.partition_point(|e| e.time_ns < s.end)];
            let mine = within.iter().filter(|e| procs.is_member(e.pid));
            let (mut sw, mut pf, mut bio) = (0u64, 0u64, 0u64);
            for e in mine {
                match e.short_name() {
                    "sched_switch" => sw += 1,
                    "block_rq_issue" => bio += 1,
                    n if n == PAGE_FAULT => pf += e.uint(FAULTS_PER_SAMPLE).unwrap_or(1),
                    _ => {}
                }
            }
            let clipped: Vec<(u32, u64, u64)> = runs
                .iter()
                .filter(|r| r.end > s.start && r.start < s.end)
                .map(|r| (tgid(r.tid), r.start.max(s.start), r.end.min(s.end)))
                .collect();
            let mut per: HashMap<u32, u64> = HashMap::new();
            for &(g, a, b) in &clipped {
                *per.entry(g).or_default() += b - a;
            }
            let top = per.iter().max_by_key(|(_, &t)| t).map(|(&g, &t)| (procs.name(g), t));
            let union = oncpu::union_len(clipped.iter().map(|&(_, a, b)| (a, b)).collect());
            Slice {
                stats: SliceStats {
                    on_cpu_ns: sched.then(|| per.values().sum()),
                    off_cpu_ns: sched.then(|| s.dur() - union.min(s.dur())),
                    switches: sched.then_some(sw),
                    page_faults: faults.then_some(pf),
                    block_io: bio,
                    top,
                },
                phase: s.phase,
                detail: s.detail,
                start: s.start,
                end: s.end,
            }
        })
        .collect()
}

fn proc_lines(ev: &[Event], procs: &Procs, w: Window) -> Vec<ProcLine> {
    let active: std::collections::HashSet<u32> = ev.iter().map(|e| e.pid).collect();
    let mut lines: Vec<ProcLine> = procs
        .by_tgid
        .values()
        .filter(|p| p.member && active.contains(&p.tgid))
        .map(|p| ProcLine {
            tgid: p.tgid,
            parent: p.parent,
            name: p.comm.clone(),
            start: p.fork_ns.unwrap_or(w.start).clamp(w.start, w.end),
            end: p.exit_ns.unwrap_or(w.end).clamp(w.start, w.end),
        })
        .collect();
    lines.sort_by_key(|l| (l.start, l.tgid));
    lines
}

impl Attribution {
    /// A run timed in-process (native): its phase records as slices, with the counters
    /// they carry; no processes (the run is one container of probe's own).
    pub fn from_records(window: Window, records: &[PhaseRecord]) -> Attribution {
        let slices = records
            .iter()
            .map(|r| Slice {
                phase: r.phase,
                detail: r.detail.clone(),
                start: window.start + r.start_ns,
                end: window.start + r.start_ns + r.dur_ns,
                stats: SliceStats {
                    on_cpu_ns: r.counters.task_clock_ns,
                    switches: r.counters.context_switches,
                    page_faults: r.counters.page_faults,
                    ..Default::default()
                },
            })
            .collect();
        Attribution { window, slices, procs: Vec::new(), container_cgroup: None, init_pid: None }
    }

    /// Phase records relative to the window start, as `Sample::phases` carries them.
    pub fn records(&self) -> Vec<PhaseRecord> {
        self.slices
            .iter()
            .map(|s| PhaseRecord {
                phase: s.phase,
                detail: s.detail.clone(),
                start_ns: s.start - self.window.start,
                dur_ns: s.end - s.start,
                counters: Counters {
                    task_clock_ns: s.stats.on_cpu_ns,
                    context_switches: s.stats.switches,
                    page_faults: s.stats.page_faults,
                    // Not derivable from these events; cycles/instructions need a PMU.
                    cpu_migrations: None,
                    cycles: None,
                    instructions: None,
                },
                overhead_ns: 0,
            })
            .collect()
    }

    /// Share of the window covered by named phases.
    pub fn coverage(&self) -> f64 {
        let total = self.window.end.saturating_sub(self.window.start);
        if total == 0 {
            return 0.0;
        }
        let named: u64 = self.slices.iter().filter(|s| s.phase != Phase::Unattributed).map(|s| s.end - s.start).sum();
        named as f64 / total as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::format::Value;

    fn ev(t: u64, pid: u32, tid: u32, name: &str, fields: &[(&str, Value)]) -> Event {
        Event {
            time_ns: t * MS,
            cpu: 0,
            pid,
            tid,
            name: name.to_string(),
            fields: fields.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            callchain: Vec::new(),
        }
    }
    fn s(v: &str) -> Value {
        Value::Str(v.into())
    }
    fn i(v: i64) -> Value {
        Value::Int(v)
    }
    fn fork(t: u64, parent: u32, child: u32, comm: &str) -> Event {
        ev(t, parent, parent, "sched/sched_process_fork", &[("child_pid", i(child as i64)), ("child_comm", s(comm))])
    }
    fn exec(t: u64, pid: u32, file: &str) -> Event {
        ev(t, pid, pid, "sched/sched_process_exec", &[("filename", s(file))])
    }

    /// A docker run reduced to its markers: CLI 100, dockerd 10, containerd 20, shim 200,
    /// runc 300, runc init chain 301 → 302 → 303 (the container).
    fn docker_run() -> Vec<Event> {
        let cg = "/docker/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        vec![
            exec(1, 100, "/usr/bin/docker"),
            ev(20, 10, 11, "syscalls/sys_enter_mount", &[("flags", Value::Uint(0))]),
            ev(21, 10, 11, "syscalls/sys_exit_mount", &[("ret", i(0))]),
            fork(40, 20, 200, "containerd"),
            exec(41, 200, "/usr/bin/containerd-shim-runc-v2"),
            fork(50, 200, 300, "containerd-shim"),
            exec(51, 300, "/usr/sbin/runc"),
            fork(60, 300, 301, "runc"),
            ev(61, 300, 300, "cgroup/cgroup_mkdir", &[("path", s(cg))]),
            ev(62, 300, 300, "cgroup/cgroup_attach_task", &[("dst_path", s(cg)), ("pid", i(301))]),
            fork(63, 301, 302, "runc:[0:PARENT]"),
            ev(64, 302, 302, "syscalls/sys_enter_unshare", &[("unshare_flags", Value::Uint(0x6c02_0000))]),
            ev(65, 302, 302, "syscalls/sys_exit_unshare", &[("ret", i(0))]),
            fork(66, 302, 303, "runc:[1:CHILD]"),
            ev(70, 303, 303, "syscalls/sys_enter_pivot_root", &[]),
            ev(71, 303, 303, "syscalls/sys_exit_pivot_root", &[("ret", i(0))]),
            ev(80, 303, 303, "syscalls/sys_enter_execve", &[]),
            exec(81, 303, "/bin/true"),
            ev(81, 303, 303, "syscalls/sys_exit_execve", &[("ret", i(0))]),
            ev(82, 303, 303, "sched/sched_process_exit", &[("comm", s("true"))]),
        ]
    }

    const ALL: Instruments = Instruments { sched_switch: true, page_faults: true };

    fn names(pid: u32) -> Option<String> {
        Some(match pid { 10 => "dockerd", 20 => "containerd", _ => return None }.into())
    }

    #[test]
    fn docker_markers_cut_sequential_phases() {
        let w = Window { start: 0, end: 100 * MS, root: 100 };
        let a = attribute(&docker_run(), w, ALL, &names);
        assert!((a.coverage() - 1.0).abs() < 1e-9, "{:?}", a.slices);
        let at = |t: u64| a.slices.iter().find(|s| s.start <= t * MS && t * MS < s.end).unwrap();
        assert_eq!(at(5).phase, Phase::Client);
        assert_eq!(at(20).phase, Phase::Rootfs, "dockerd's mount before the runtime");
        assert_eq!(at(30).phase, Phase::Engine);
        assert_eq!(at(45).phase, Phase::Runtime, "from the shim's exec");
        assert_eq!((at(61).phase, at(61).detail.as_deref()), (Phase::Cgroup, Some("container")));
        assert_eq!((at(64).phase, at(64).detail.as_deref()), (Phase::Namespaces, Some("unshare mnt+uts+ipc+pid+net")));
        assert_eq!(at(70).phase, Phase::Mounts);
        assert_eq!(at(80).phase, Phase::Exec);
        assert_eq!(at(81).phase, Phase::Workload);
        assert_eq!(at(90).phase, Phase::Teardown);
        assert_eq!(a.init_pid, Some(303));
        assert!(a.container_cgroup.as_deref().unwrap().starts_with("/docker/"));
        for w in a.slices.windows(2) {
            assert_eq!(w[0].end, w[1].start);
        }
    }

    #[test]
    fn systemd_creating_the_scope_is_the_runs_cgroup_phase() {
        let scope = "/system.slice/docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope";
        let events: Vec<Event> = docker_run()
            .into_iter()
            .map(|e| match e.short_name() {
                // runc (systemd driver) asks pid 1, which does the mkdir and the attach.
                "cgroup_mkdir" => ev(61, 1, 1, "cgroup/cgroup_mkdir", &[("path", s(scope))]),
                "cgroup_attach_task" => ev(62, 1, 1, "cgroup/cgroup_attach_task", &[("dst_path", s(scope)), ("pid", i(301))]),
                _ => e,
            })
            .collect();
        let a = attribute(&events, Window { start: 0, end: 100 * MS, root: 100 }, ALL, &names);
        let at = |t: u64| a.slices.iter().find(|s| s.start <= t * MS && t * MS < s.end).unwrap();
        assert_eq!((at(61).phase, at(61).detail.as_deref()), (Phase::Cgroup, Some("container")));
        assert_eq!(a.container_cgroup.as_deref(), Some(scope));
        assert!(!is_container_scope("/system.slice/docker.service"), "the daemon's own unit is not a container");
        assert!(!is_container_scope("/docker-0123.scope"), "a short id is not a container's");
        assert!(is_container_scope("/machine.slice/libpod-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope"));
    }

    #[test]
    fn no_pivot_root_leaves_the_end_unattributed() {
        let events: Vec<Event> = docker_run().into_iter().filter(|e| !e.name.contains("pivot_root")).collect();
        let a = attribute(&events, Window { start: 0, end: 100 * MS, root: 100 }, ALL, &names);
        let last = a.slices.last().unwrap();
        assert_eq!(last.phase, Phase::Unattributed);
        assert!(a.coverage() < 0.95);
    }

    /// A podman run: CLI 100 → conmon 200 → runc 300 → init chain 301 → 303, with a
    /// prestart hook 400 forked by runc.
    fn podman_run(hook_exit: bool) -> Vec<Event> {
        let mut v = vec![
            exec(10, 100, "/usr/bin/podman"),
            fork(20, 100, 200, "podman"),
            exec(21, 200, "/usr/bin/conmon"),
            fork(22, 200, 300, "conmon"),
            exec(23, 300, "/usr/bin/runc"),
            fork(24, 300, 301, "runc"),
            fork(30, 300, 400, "runc"),
            exec(31, 400, "/usr/libexec/hook"),
            ev(35, 400, 400, "syscalls/sys_enter_fsync", &[]),
            fork(40, 301, 303, "runc:[1:CHILD]"),
            ev(50, 303, 303, "syscalls/sys_enter_pivot_root", &[]),
            ev(51, 303, 303, "syscalls/sys_exit_pivot_root", &[("ret", i(0))]),
            ev(60, 303, 303, "syscalls/sys_enter_execve", &[]),
            exec(61, 303, "/bin/true"),
            ev(61, 303, 303, "syscalls/sys_exit_execve", &[("ret", i(0))]),
            ev(70, 303, 303, "sched/sched_process_exit", &[("comm", s("true"))]),
        ];
        if hook_exit {
            v.push(ev(38, 400, 400, "sched/sched_process_exit", &[("comm", s("hook"))]));
        }
        v.sort_by_key(|e| e.time_ns);
        v
    }

    fn phase_at(a: &Attribution, t: u64) -> (Phase, Option<String>) {
        let s = a.slices.iter().find(|s| s.start <= t * MS && t * MS < s.end).unwrap();
        (s.phase, s.detail.clone())
    }

    #[test]
    fn unseen_cli_exec_leaves_engine_unattributed() {
        let w = Window { start: 0, end: 100 * MS, root: 100 };
        let seen = attribute(&podman_run(true), w, ALL, &names);
        assert_eq!(phase_at(&seen, 5).0, Phase::Client);
        assert_eq!(phase_at(&seen, 15).0, Phase::Engine);
        let events: Vec<Event> = podman_run(true).into_iter().filter(|e| !(e.pid == 100 && e.name.ends_with("exec"))).collect();
        let a = attribute(&events, w, ALL, &names);
        for t in [0, 5, 15] {
            let (p, d) = phase_at(&a, t);
            assert_eq!(p, Phase::Unattributed, "at {t} ms: {:?}", a.slices);
            assert!(d.unwrap().contains("engine"), "names the missing marker");
        }
        assert_eq!(phase_at(&a, 25).0, Phase::Runtime, "later markers still cut");
    }

    #[test]
    fn hook_without_exit_does_not_paint_runtime_to_the_end() {
        let w = Window { start: 0, end: 100 * MS, root: 100 };
        let with_exit = attribute(&podman_run(true), w, ALL, &names);
        assert_eq!(phase_at(&with_exit, 33), (Phase::Runtime, Some("hook (hook)".into())));
        assert_eq!(phase_at(&with_exit, 45).1, None, "after the hook's exit: the runtime's own time");
        let a = attribute(&podman_run(false), w, ALL, &names);
        assert_eq!(phase_at(&a, 33), (Phase::Runtime, Some("hook (hook)".into())), "alive while seen");
        let (p, d) = phase_at(&a, 45);
        assert_eq!(p, Phase::Unattributed, "{:?}", a.slices);
        assert!(d.unwrap().contains("exit not seen"));
        assert_eq!(phase_at(&a, 50).0, Phase::Mounts, "the init's own spans still show");
        assert_eq!(phase_at(&a, 65).0, Phase::Workload, "nothing after the container's exec is painted");
        assert_eq!(phase_at(&a, 80).0, Phase::Teardown);
    }

    #[test]
    fn daemons_are_not_members_of_a_podman_run() {
        let mut events = docker_run();
        events[0] = exec(1, 100, "/usr/bin/podman");
        let a = attribute(&events, Window { start: 0, end: 100 * MS, root: 100 }, ALL, &names);
        assert!(a.procs.iter().all(|p| p.tgid != 10), "dockerd is not part of a podman run");
    }

    #[test]
    fn counters_are_none_without_sched_events() {
        let a = attribute(&docker_run(), Window { start: 0, end: 100 * MS, root: 100 }, Instruments::default(), &names);
        let r = a.records();
        assert!(r.iter().all(|p| p.counters.task_clock_ns.is_none() && p.counters.cycles.is_none()));
        assert!(r.iter().all(|p| p.counters.page_faults.is_none()), "page faults not traced → n/a");
    }

    #[test]
    fn native_records_become_slices_and_back() {
        let rec = |phase, start_ns, dur_ns| PhaseRecord {
            phase,
            detail: None,
            start_ns,
            dur_ns,
            counters: Counters { page_faults: Some(3), ..Default::default() },
            overhead_ns: 0,
        };
        let records = [rec(Phase::Cgroup, 0, 200), rec(Phase::Exec, 200, 500)];
        let a = Attribution::from_records(Window { start: 1_000, end: 1_700, root: 1 }, &records);
        assert_eq!((a.slices[1].start, a.slices[1].end), (1_200, 1_700));
        assert!((a.coverage() - 1.0).abs() < 1e-9);
        let back = a.records();
        assert_eq!((back[1].phase, back[1].start_ns, back[1].dur_ns), (Phase::Exec, 200, 500));
        assert_eq!(back[0].counters.page_faults, Some(3));
    }

    #[test]
    fn sampled_page_faults_count_for_their_period() {
        let mut events = docker_run();
        let fault = |t: u64| ev(t, 303, 303, PAGE_FAULT, &[(FAULTS_PER_SAMPLE, i(16))]);
        events.extend([fault(83), fault(84), ev(85, 999, 999, PAGE_FAULT, &[(FAULTS_PER_SAMPLE, i(16))])]);
        events.sort_by_key(|e| e.time_ns);
        let a = attribute(&events, Window { start: 0, end: 100 * MS, root: 100 }, ALL, &names);
        let teardown: u64 = a.slices.iter().filter(|s| s.phase == Phase::Teardown).filter_map(|s| s.stats.page_faults).sum();
        assert_eq!(teardown, 32, "two samples of the run's init at 1 in 16; pid 999 is not in the run");
    }
}

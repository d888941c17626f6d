//! Which processes a run causes, from fork/exec/exit events: the CLI and its descendants,
//! plus the engine daemons (pre-existing, so recognised by name) and everything they fork
//! during the window. Membership is per thread group (tgid).

use std::collections::{HashMap, HashSet};

use super::event::Event;

/// Long-running engine daemons: their threads exist before the run, so only their name ties
/// them to it.
pub const DAEMONS: &[&str] = &["dockerd", "containerd"];

/// Binaries that start the container for an engine: shims, monitors and OCI runtimes.
pub const RUNTIMES: &[&str] = &["containerd-shim-runc-v2", "containerd-shim", "conmon", "runc", "crun"];

#[derive(Clone, Debug, Default)]
pub struct Proc {
    pub tgid: u32,
    /// Last known command name (exec basename, prctl name, or sched_switch comm).
    pub comm: String,
    /// Basename of the last successful exec, if one was seen.
    pub exe: Option<String>,
    pub parent: Option<u32>,
    pub fork_ns: Option<u64>,
    pub exec_ns: Vec<u64>,
    pub exit_ns: Option<u64>,
    pub member: bool,
}

#[derive(Default)]
pub struct Procs {
    pub by_tgid: HashMap<u32, Proc>,
    /// Thread id → thread group id, learnt from every event's (pid, tid).
    pub tgid_of: HashMap<u32, u32>,
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

impl Procs {
    /// Builds the table from time-ordered events. `root` is the timed CLI's pid.
    /// `comm_of` answers for tgids no event named (a daemon that stayed asleep): /proc in
    /// real use, a map in tests.
    pub fn build(events: &[Event], root: u32, comm_of: &dyn Fn(u32) -> Option<String>) -> Self {
        let mut p = Procs::default();
        for e in events {
            p.tgid_of.insert(e.tid, e.pid);
        }
        let mut member: HashSet<u32> = HashSet::from([root]);
        for e in events {
            match e.short_name() {
                "sched_process_fork" => {
                    let Some(child) = e.int("child_pid").map(|v| v as u32) else { continue };
                    let child_tgid = *p.tgid_of.get(&child).unwrap_or(&child);
                    if child_tgid == e.pid {
                        continue; // a new thread, not a new process
                    }
                    let parent = p.entry(e.pid);
                    let parent_comm = parent.comm.clone();
                    let c = p.entry(child_tgid);
                    c.parent = Some(e.pid);
                    c.fork_ns = Some(e.time_ns);
                    if c.comm.is_empty() {
                        c.comm = e.str("child_comm").unwrap_or(&parent_comm).to_string();
                    }
                    if member.contains(&e.pid) {
                        member.insert(child_tgid);
                    }
                }
                "sched_process_exec" => {
                    let exe = basename(e.str("filename").unwrap_or("")).to_string();
                    let c = p.entry(e.pid);
                    c.exec_ns.push(e.time_ns);
                    c.comm = exe.chars().take(15).collect();
                    c.exe = Some(exe);
                }
                "sched_process_exit" if e.tid == e.pid => {
                    let c = p.entry(e.pid);
                    c.exit_ns = Some(e.time_ns);
                    if let Some(comm) = e.str("comm") {
                        c.comm = comm.to_string();
                    }
                }
                "sched_switch" => {
                    // The prev task is the one the event fired in; its name is the freshest
                    // (runc renames itself runc:[0:PARENT] etc. with prctl, no event says so).
                    if let (Some(tid), Some(comm)) = (e.int("prev_pid"), e.str("prev_comm")) {
                        if tid as u32 == e.pid {
                            p.entry(e.pid).comm = comm.to_string();
                        }
                    }
                }
                _ => {
                    p.entry(e.pid);
                }
            }
        }
        // The daemons belong to the run only when it talks to them (a docker CLI ran):
        // during a podman run, dockerd's activity is someone else's.
        let uses_daemon = p.by_tgid.values().any(|x| member.contains(&x.tgid) && x.exe.as_deref() == Some("docker"));
        for (tgid, proc) in p.by_tgid.iter_mut() {
            if proc.comm.is_empty() {
                proc.comm = comm_of(*tgid).unwrap_or_default();
            }
            let daemon = uses_daemon && DAEMONS.contains(&proc.comm.as_str()) && proc.fork_ns.is_none();
            proc.member = member.contains(tgid) || daemon;
        }
        // Descendants of daemons forked in the window are members too (shim, runc, hooks).
        let mut changed = true;
        while changed {
            changed = false;
            let parents: Vec<(u32, u32)> = p.by_tgid.values().filter_map(|c| c.parent.map(|pp| (c.tgid, pp))).collect();
            for (child, parent) in parents {
                let parent_member = p.by_tgid.get(&parent).is_some_and(|x| x.member);
                if parent_member && !p.by_tgid[&child].member {
                    p.by_tgid.get_mut(&child).expect("present").member = true;
                    changed = true;
                }
            }
        }
        p
    }

    fn entry(&mut self, tgid: u32) -> &mut Proc {
        self.by_tgid.entry(tgid).or_insert_with(|| Proc { tgid, ..Default::default() })
    }

    pub fn is_member(&self, tgid: u32) -> bool {
        self.by_tgid.get(&tgid).is_some_and(|p| p.member)
    }

    pub fn get(&self, tgid: u32) -> Option<&Proc> {
        self.by_tgid.get(&tgid)
    }

    pub fn name(&self, tgid: u32) -> String {
        self.by_tgid.get(&tgid).map(|p| p.comm.clone()).unwrap_or_else(|| tgid.to_string())
    }

    pub fn is_daemon(&self, tgid: u32) -> bool {
        self.get(tgid).is_some_and(|p| DAEMONS.contains(&p.comm.as_str()))
    }

    /// The process and its ancestors, nearest first.
    pub fn ancestry(&self, tgid: u32) -> Vec<&Proc> {
        let mut out = Vec::new();
        let mut cur = self.by_tgid.get(&tgid);
        while let Some(p) = cur {
            if out.iter().any(|q: &&Proc| q.tgid == p.tgid) {
                break;
            }
            out.push(p);
            cur = p.parent.and_then(|pp| self.by_tgid.get(&pp));
        }
        out
    }

    /// True when the process, or an ancestor, exec'd a shim/monitor/OCI runtime: it works
    /// for the runtime, not the engine.
    pub fn is_runtime_side(&self, tgid: u32) -> bool {
        self.ancestry(tgid)
            .iter()
            .any(|p| p.exe.as_deref().is_some_and(|x| RUNTIMES.contains(&x)))
    }
}

/// The name /proc gives a live process (daemons outlive the rep).
pub fn proc_comm(tgid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{tgid}/comm")).ok().map(|s| s.trim().to_string())
}

/// Live processes whose /proc name is one of `names`.
pub fn pids_named(names: &[&str]) -> HashSet<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return HashSet::new() };
    dir.filter_map(|d| d.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| proc_comm(pid).is_some_and(|c| names.contains(&c.as_str())))
        .collect()
}

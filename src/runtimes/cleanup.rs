//! `probe cleanup`: finds and removes what a killed probe left behind — engine containers,
//! mounts, cgroups, container dirs — and touches nothing it does not own.
//!
//! Ownership is by name: everything probe creates is called `probe-<pid>-<...>` (engine
//! containers also carry the OWNER_LABEL), where <pid> is the probe process that made it.
//! A resource is stale when that process is gone (or the pid now belongs to something that
//! is not probe); stale resources are removed, those of a live probe are left alone unless
//! `--all` is given.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::runtimes::cli_engine::CliEngine;
use crate::ground::{RuntimeKind, NAME_PREFIX, OWNER_LABEL};
use crate::sys::mountinfo;

#[derive(Serialize, Debug, Default)]
pub struct Cleaned {
    pub containers: Vec<String>,
    pub mounts: Vec<String>,
    pub cgroups: Vec<String>,
    pub dirs: Vec<String>,
    /// What could not be removed, with why.
    pub failed: Vec<String>,
}

impl Cleaned {
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.mounts.is_empty() && self.cgroups.is_empty() && self.dirs.is_empty()
    }
}

/// The pid in a `probe-<pid>-...` name, if the name is one of ours.
pub fn owner_pid(name: &str) -> Option<i32> {
    let rest = name.strip_prefix(NAME_PREFIX)?;
    let (pid, tail) = rest.split_once('-')?;
    if tail.is_empty() {
        return None;
    }
    pid.parse().ok().filter(|p: &i32| *p > 0)
}

/// True when `pid` is a running probe (the owner of a resource is still at work).
fn probe_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim() == "probe")
        .unwrap_or(false)
}

/// Whether a resource named `name` should go: ours, and its owner is gone (or `all`).
/// Our own pid is never stale: a run does not clean up under its own feet.
fn stale(name: &str, all: bool) -> bool {
    match owner_pid(name) {
        Some(pid) if pid as u32 == std::process::id() => false,
        Some(pid) => all || !probe_alive(pid),
        None => false,
    }
}

/// The last path component that names one of our resources, e.g. the container dir in
/// /var/lib/probe/containers/probe-12-3/merged.
fn owning_component(path: &str) -> Option<&str> {
    path.split('/').find(|c| owner_pid(c).is_some())
}

pub struct Options {
    pub all: bool,
    pub dry_run: bool,
}

/// True when probe runs in a child pid namespace (inside a container): owner pids from the
/// host are not visible there, so every host resource would look stale. /proc/self/status
/// lists one NSpid per namespace level (proc(5)).
pub fn in_child_pid_namespace() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("NSpid:")).map(|v| v.split_whitespace().count() > 1))
        .unwrap_or(false)
}

pub fn run(opts: &Options) -> Cleaned {
    let mut out = Cleaned::default();
    containers(opts, &mut out);
    mounts(opts, &mut out);
    cgroups(opts, &mut out);
    dirs(opts, &mut out);
    out
}

/// What experiments do first: remove what an earlier, killed probe left (only resources whose
/// owner is gone), so a `kill -9` never leaks past the next run. Returns how many were
/// removed; nothing is tried without root or inside a container (the nested experiment's
/// worker, with the host's docker socket), where the owners' pids are invisible and
/// everything would look stale.
pub fn sweep_stale() -> usize {
    if !nix::unistd::Uid::effective().is_root() || in_child_pid_namespace() {
        return 0;
    }
    let done = run(&Options { all: false, dry_run: false });
    done.containers.len() + done.mounts.len() + done.cgroups.len() + done.dirs.len()
}

fn containers(opts: &Options, out: &mut Cleaned) {
    for kind in [RuntimeKind::Docker, RuntimeKind::Podman, RuntimeKind::PodmanRootless] {
        let Ok(engine) = CliEngine::locate(kind) else { continue };
        let stale_names = || -> Vec<String> {
            let filter = format!("label={OWNER_LABEL}");
            engine
                .query(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"])
                .map(|list| list.lines().map(str::trim).filter(|n| stale(n, opts.all)).map(str::to_string).collect())
                .unwrap_or_default()
        };
        let names = stale_names();
        if names.is_empty() {
            continue;
        }
        if opts.dry_run {
            out.containers.extend(names.iter().map(|n| format!("{kind} {n}")));
            continue;
        }
        // A killed run may leave an `rm -f` of its own in flight ("removal ... already in
        // progress"): give it a moment and judge by what is still listed.
        let mut error = None;
        for attempt in 0..3 {
            let left = if attempt == 0 { names.clone() } else { stale_names() };
            if left.is_empty() {
                error = None;
                break;
            }
            let mut args = vec!["rm", "-f"];
            args.extend(left.iter().map(String::as_str));
            match engine.query(&args) {
                Ok(_) => {
                    error = None;
                    break;
                }
                Err(e) => error = Some(e),
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        match error {
            None => out.containers.extend(names.iter().map(|n| format!("{kind} {n}"))),
            Some(e) => out.failed.push(format!("{kind} rm -f {}: {e}", names.join(" "))),
        }
    }
}

fn mounts(opts: &Options, out: &mut Cleaned) {
    let Ok(all) = mountinfo::read(Path::new("/proc/self/mountinfo")) else { return };
    let mut ours: Vec<String> = all
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| owning_component(p).is_some_and(|c| stale(c, opts.all)))
        .collect();
    // Deepest first, so /merged/proc goes before /merged.
    ours.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    for p in ours {
        if opts.dry_run {
            out.mounts.push(p);
            continue;
        }
        match nix::mount::umount2(Path::new(&p), nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) => out.mounts.push(p),
            Err(e) => out.failed.push(format!("umount {p}: {e}")),
        }
    }
}

fn cgroup_roots() -> Vec<PathBuf> {
    match crate::sys::cgroup::detect() {
        Ok(l) => l.v1.into_values().chain(l.unified).collect::<std::collections::BTreeSet<_>>().into_iter().collect(),
        Err(_) => Vec::new(),
    }
}

/// Our cgroups can sit at the root of a hierarchy or under a parent (--cgroup-parent, an
/// engine's slice): look a few levels down, not into every container's tree.
fn find_named(dir: &Path, depth: u32, all: bool, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        if owner_pid(&name).is_some() {
            if stale(&name, all) {
                found.push(e.path());
            }
        } else if depth > 0 {
            find_named(&e.path(), depth - 1, all, found);
        }
    }
}

fn cgroups(opts: &Options, out: &mut Cleaned) {
    let mut found = Vec::new();
    for root in cgroup_roots() {
        find_named(&root, 2, opts.all, &mut found);
    }
    for dir in found {
        if opts.dry_run {
            out.cgroups.push(dir.display().to_string());
            continue;
        }
        match remove_cgroup(&dir) {
            Ok(()) => out.cgroups.push(dir.display().to_string()),
            Err(e) => out.failed.push(format!("rmdir {}: {e}", dir.display())),
        }
    }
}

/// Kills what is still inside (a leaked container init, a worker), then removes the tree
/// bottom-up: a cgroup directory can only be removed once it has no tasks and no children.
fn remove_cgroup(dir: &Path) -> std::io::Result<()> {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup(&e.path())?;
            }
        }
    }
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
    }
    let mut last = Ok(());
    for _ in 0..50 {
        last = std::fs::remove_dir(dir);
        match &last {
            Ok(()) => return Ok(()),
            // EBUSY while killed tasks are still exiting.
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => std::thread::sleep(std::time::Duration::from_millis(20)),
            Err(_) => break,
        }
    }
    last
}

fn dirs(opts: &Options, out: &mut Cleaned) {
    let bases = [
        crate::native::rootfs::containers_base(false),
        PathBuf::from("/run/probe"),
        std::env::temp_dir(),
    ];
    let mounted: Vec<String> = mountinfo::read(Path::new("/proc/self/mountinfo"))
        .map(|m| m.into_iter().map(|m| m.mount_point).collect())
        .unwrap_or_default();
    for base in bases {
        let Ok(entries) = std::fs::read_dir(&base) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !stale(&name, opts.all) {
                continue;
            }
            let path = e.path();
            // Never delete through a mount: under a still-mounted bind of the image that would
            // delete the image itself.
            let prefix = format!("{}/", path.display());
            if let Some(m) = mounted.iter().find(|m| m.starts_with(&prefix) || **m == path.display().to_string()) {
                out.failed.push(format!("{}: still has a mount at {m}; left in place", path.display()));
                continue;
            }
            if opts.dry_run {
                out.dirs.push(path.display().to_string());
                continue;
            }
            // symlink_metadata: a symlink named like ours is removed as a link, never followed.
            let r = match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path),
                Ok(_) => std::fs::remove_file(&path),
                Err(e) => Err(e),
            };
            match r {
                Ok(()) => out.dirs.push(path.display().to_string()),
                Err(e) => out.failed.push(format!("remove {}: {e}", path.display())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_we_own() {
        assert_eq!(owner_pid("probe-123-4"), Some(123));
        assert_eq!(owner_pid("probe-123-docker-7"), Some(123));
        assert_eq!(owner_pid("probe-123-"), None);
        assert_eq!(owner_pid("probe-abc-1"), None);
        assert_eq!(owner_pid("probe-test:latest"), None);
        assert_eq!(owner_pid("myprobe-1-2"), None);
        assert_eq!(owner_pid("probe-0-1"), None);
    }

    #[test]
    fn owning_component_is_found_anywhere_in_a_path() {
        assert_eq!(owning_component("/var/lib/probe/containers/probe-9-1/merged/proc"), Some("probe-9-1"));
        assert_eq!(owning_component("/var/lib/docker/overlay2/abc/merged"), None);
    }

    #[test]
    fn our_own_resources_are_never_stale() {
        let me = format!("probe-{}-1", std::process::id());
        assert!(!stale(&me, true));
        assert!(!stale("not-ours", true));
        // pid 1 is init, not probe: its "resources" are stale.
        assert!(stale("probe-1-1", false));
    }
}

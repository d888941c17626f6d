//! The container's cgroup: one directory per hierarchy that carries a controller we limit or
//! account (memory, pids, cpu, cpuacct) plus the unified tree when it exists, so the v2 path
//! and CLONE_INTO_CGROUP are exercised even on a hybrid host.

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

use crate::sys::cgroup::{CgroupError, CgroupLayout};

/// Resource limits; None leaves the kernel default (unlimited).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Limits {
    pub memory_bytes: Option<u64>,
    pub pids: Option<u64>,
    /// CPU bandwidth in CPUs (1.5 = 150 ms of CPU time per 100 ms period).
    pub cpus: Option<f64>,
}

/// The CFS period the cpu limit is expressed in (the kernel's default period, 100 ms).
const CPU_PERIOD_US: u64 = 100_000;
/// cpuacct: where v1 mounts it apart from cpu, its own directory is the only counter of the
/// container's exact CPU time (cpuacct.usage); co-mounted, the cpu directory already is.
const CONTROLLERS: [&str; 4] = ["memory", "pids", "cpu", "cpuacct"];

pub struct ContainerCgroup {
    /// Directories created, in creation order (removed in reverse).
    dirs: Vec<PathBuf>,
    /// The v2 directory when there is a unified tree (target of CLONE_INTO_CGROUP).
    v2_dir: Option<(PathBuf, OwnedFd)>,
    /// `tasks` of each v1 directory, opened here so the container's init only has to write
    /// "0" (itself) to them: no parent/child round trip on the hot path.
    v1_procs: Vec<OwnedFd>,
    v1_dirs: Vec<(PathBuf, PathBuf)>, // (hierarchy mount, created dir)
}

impl ContainerCgroup {
    /// Creates `<hierarchy>/<parent>/<name>` in every hierarchy needed and applies `limits`.
    /// On error everything created so far is removed (Drop).
    pub fn create(
        layout: &CgroupLayout,
        parent: &Path,
        name: &str,
        limits: &Limits,
    ) -> Result<Self, CgroupError> {
        let mut cg = ContainerCgroup {
            dirs: Vec::new(),
            v2_dir: None,
            v1_procs: Vec::new(),
            v1_dirs: Vec::new(),
        };
        if let Some(unified) = &layout.unified {
            let base = unified.join(parent);
            let wanted: Vec<&str> = requested(limits)
                .filter(|(_, c)| layout.controller_on_v2(c) == Some(true))
                .map(|(_, c)| c)
                .collect();
            enable_v2_controllers(&base, &wanted)?;
            let dir = base.join(name);
            cg.mkdir(&dir)?;
            let fd = open(
                &dir,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| CgroupError::Open {
                path: dir.clone(),
                error: e.into(),
            })?;
            // SAFETY: open returned a fresh fd that nothing else owns.
            cg.v2_dir = Some((dir, unsafe {
                <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd)
            }));
        }
        for c in CONTROLLERS {
            let Some(mount) = layout
                .v1
                .get(c)
                .filter(|_| layout.controller_on_v2(c) == Some(false))
            else {
                continue;
            };
            if cg.v1_dirs.iter().any(|(m, _)| m == mount) {
                continue; // co-mounted with a controller already handled (cpu,cpuacct)
            }
            let dir = mount.join(parent).join(name);
            cg.mkdir(&dir)?;
            // `tasks` rather than `cgroup.procs`: moving only the calling thread skips the
            // global cgroup_threadgroup_rwsem (kernel/cgroup/cgroup.c,
            // cgroup_procs_write_start), whose write side waits for an RCU grace period —
            // 5-15 ms per attach on this kind of VM. The init is single-threaded, so moving
            // its one thread moves the whole process.
            let procs = dir.join("tasks");
            let fd =
                open(&procs, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| {
                    CgroupError::Open {
                        path: procs.clone(),
                        error: e.into(),
                    }
                })?;
            // SAFETY: as above.
            cg.v1_procs
                .push(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
            cg.v1_dirs.push((mount.clone(), dir));
        }
        cg.apply(layout, limits)?;
        Ok(cg)
    }

    fn mkdir(&mut self, dir: &Path) -> Result<(), CgroupError> {
        fs::create_dir(dir).map_err(|error| CgroupError::Mkdir {
            path: dir.to_path_buf(),
            error,
        })?;
        self.dirs.push(dir.to_path_buf());
        Ok(())
    }

    fn dir_for(
        &self,
        layout: &CgroupLayout,
        controller: &'static str,
        what: &'static str,
    ) -> Result<&Path, CgroupError> {
        let missing = || CgroupError::NoController { what, controller };
        match layout.controller_on_v2(controller).ok_or_else(missing)? {
            true => self
                .v2_dir
                .as_ref()
                .map(|(d, _)| d.as_path())
                .ok_or_else(missing),
            false => {
                let mount = &layout.v1[controller];
                self.v1_dirs
                    .iter()
                    .find(|(m, _)| m == mount)
                    .map(|(_, d)| d.as_path())
                    .ok_or_else(missing)
            }
        }
    }

    fn apply(&self, layout: &CgroupLayout, limits: &Limits) -> Result<(), CgroupError> {
        if let Some(bytes) = limits.memory_bytes {
            let on_v2 = layout.controller_on_v2("memory") == Some(true);
            let file = if on_v2 {
                "memory.max"
            } else {
                "memory.limit_in_bytes"
            };
            write_file(
                &self.dir_for(layout, "memory", "--memory")?.join(file),
                &bytes.to_string(),
            )?;
        }
        if let Some(n) = limits.pids {
            write_file(
                &self.dir_for(layout, "pids", "--pids")?.join("pids.max"),
                &n.to_string(),
            )?;
        }
        if let Some(cpus) = limits.cpus {
            let quota = (cpus * CPU_PERIOD_US as f64).round() as u64;
            let dir = self.dir_for(layout, "cpu", "--cpus")?;
            if layout.controller_on_v2("cpu") == Some(true) {
                write_file(&dir.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}"))?;
            } else {
                write_file(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                write_file(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
            }
        }
        Ok(())
    }

    /// The fd for clone3's CLONE_INTO_CGROUP, when there is a v2 directory.
    pub fn clone_into_fd(&self) -> Option<RawFd> {
        self.v2_dir.as_ref().map(|(_, fd)| fd.as_raw_fd())
    }

    /// v1 `tasks` fds the container init writes "0" to (see `attach_self`), with the file
    /// each belongs to for error messages.
    pub fn v1_attach_targets(&self) -> Vec<(RawFd, PathBuf)> {
        self.v1_procs
            .iter()
            .zip(&self.v1_dirs)
            .map(|(f, (_, d))| (f.as_raw_fd(), d.join("tasks")))
            .collect()
    }

    /// Removes every directory, deepest-created first. Called after the container is reaped.
    pub fn remove(mut self) -> Result<(), CgroupError> {
        self.remove_dirs()
    }

    fn remove_dirs(&mut self) -> Result<(), CgroupError> {
        self.v1_procs.clear();
        self.v2_dir = None;
        let mut first_err = None;
        while let Some(dir) = self.dirs.pop() {
            if let Err(e) = rmdir_retry(&dir) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl Drop for ContainerCgroup {
    fn drop(&mut self) {
        if let Err(e) = self.remove_dirs() {
            eprintln!("probe: {e}");
        }
    }
}

/// Writes "0" to a v1 `tasks` file: moves the calling thread, i.e. the single-threaded
/// container init. Runs in the init before unshare(CLONE_NEWCGROUP), so the new cgroup
/// namespace is rooted at the container's cgroup.
pub fn attach_self(procs_fd: RawFd) -> Result<(), nix::errno::Errno> {
    // SAFETY: a `tasks` file opened O_WRONLY by the parent; the buffer is static.
    match unsafe { libc::write(procs_fd, b"0".as_ptr().cast(), 1) } {
        1 => Ok(()),
        _ => Err(nix::errno::Errno::last()),
    }
}

fn requested(limits: &Limits) -> impl Iterator<Item = (bool, &'static str)> {
    [
        (limits.memory_bytes.is_some(), "memory"),
        (limits.pids.is_some(), "pids"),
        (limits.cpus.is_some(), "cpu"),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
}

/// On v2 a limit file only exists when the parent delegates the controller
/// (cgroup.subtree_control). Enabling is left in place: it is how systemd hosts already run.
fn enable_v2_controllers(base: &Path, wanted: &[&str]) -> Result<(), CgroupError> {
    if wanted.is_empty() {
        return Ok(());
    }
    let file = base.join("cgroup.subtree_control");
    let current = fs::read_to_string(&file).map_err(|error| CgroupError::Read {
        path: file.clone(),
        error,
    })?;
    for c in wanted
        .iter()
        .filter(|c| !current.split_whitespace().any(|e| e == **c))
    {
        write_file(&file, &format!("+{c}"))?;
    }
    Ok(())
}

fn write_file(path: &Path, value: &str) -> Result<(), CgroupError> {
    let err = |error| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        error,
    };
    let mut f = fs::OpenOptions::new().write(true).open(path).map_err(err)?;
    f.write_all(value.as_bytes()).map_err(err)
}

/// rmdir, retrying on EBUSY for up to 200 ms: a cgroup whose last task was just reaped can
/// still be marked populated for a moment (the css offline work is asynchronous). EBUSY also
/// means child cgroups: those a runtime inside a privileged container made and could not
/// remove (it was killed with the container). They hold no task once the container is
/// reaped, so they are removed first, deepest first.
fn rmdir_retry(dir: &Path) -> Result<(), CgroupError> {
    let deadline = Instant::now() + Duration::from_millis(200);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                let children = fs::read_dir(dir).into_iter().flatten().flatten();
                for child in children.filter(|c| c.file_type().is_ok_and(|t| t.is_dir())) {
                    rmdir_retry(&child.path())?;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(error) => {
                return Err(CgroupError::Rmdir {
                    path: dir.to_path_buf(),
                    error,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn temp_tree(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("probe-cgtest-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    /// A v2 fixture tree in a temp dir: plain directories stand in for cgroupfs, so the
    /// directory created, the limit files written and the cleanup are checked without root.
    #[test]
    fn v2_fixture_tree_limits_and_cleanup() {
        let root = temp_tree("v2");
        fs::write(root.join("cgroup.subtree_control"), "cpu").unwrap();
        let layout = CgroupLayout {
            kind: crate::sys::cgroup::LayoutKind::V2,
            v1: BTreeMap::new(),
            unified: Some(root.clone()),
            unified_controllers: vec!["cpu".into(), "memory".into(), "pids".into()],
        };
        let cg = ContainerCgroup::create(&layout, Path::new(""), "probe-t-1", &Limits::default())
            .unwrap();
        let dir = root.join("probe-t-1");
        assert!(dir.is_dir() && cg.clone_into_fd().is_some() && cg.v1_attach_targets().is_empty());
        // cgroupfs creates the interface files itself; the fixture needs them made by hand.
        let files = ["memory.max", "pids.max", "cpu.max"];
        for f in files {
            fs::write(dir.join(f), "").unwrap();
        }
        cg.apply(
            &layout,
            &Limits {
                memory_bytes: Some(1 << 20),
                pids: Some(7),
                cpus: Some(0.5),
            },
        )
        .unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("memory.max")).unwrap(),
            "1048576"
        );
        assert_eq!(fs::read_to_string(dir.join("pids.max")).unwrap(), "7");
        assert_eq!(
            fs::read_to_string(dir.join("cpu.max")).unwrap(),
            "50000 100000"
        );
        for f in files {
            fs::remove_file(dir.join(f)).unwrap();
        }
        cg.remove().unwrap();
        assert!(!dir.exists());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn missing_parent_fails_naming_path_and_leaves_nothing() {
        let root = temp_tree("v2missing");
        let layout = CgroupLayout {
            kind: crate::sys::cgroup::LayoutKind::V2,
            v1: BTreeMap::new(),
            unified: Some(root.clone()),
            unified_controllers: vec![],
        };
        let err =
            ContainerCgroup::create(&layout, Path::new("nope"), "probe-t-2", &Limits::default())
                .err()
                .unwrap()
                .to_string();
        assert!(
            err.starts_with("cgroup: mkdir")
                && err.contains("nope/probe-t-2")
                && err.contains("os error 2"),
            "{err}"
        );
        let err = ContainerCgroup::create(
            &layout,
            Path::new(""),
            "probe-t-3",
            &Limits {
                pids: Some(1),
                ..Default::default()
            },
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("--pids needs the pids controller"), "{err}");
        assert_eq!(
            fs::read_dir(&root).unwrap().count(),
            0,
            "nothing left behind"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    /// The real unified hierarchy, when this host has one and we are root.
    #[test]
    fn real_unified_tree_create_and_remove() {
        if !crate::ground::testing::require_root() {
            return;
        }
        let layout = crate::sys::cgroup::detect().unwrap();
        let unified = layout.unified.clone().expect("every host probe targets has a unified tree (hybrid or v2)");
        let v2_only = CgroupLayout {
            v1: BTreeMap::new(),
            ..layout
        };
        let name = format!("probe-unittest-{}", std::process::id());
        let cg =
            ContainerCgroup::create(&v2_only, Path::new(""), &name, &Limits::default()).unwrap();
        assert!(unified.join(&name).join("cgroup.procs").exists());
        cg.remove().unwrap();
        assert!(!unified.join(&name).exists());
    }
}

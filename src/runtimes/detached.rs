//! Detached, idle containers kept running while something else is measured (memory, exec,
//! scale), owned by a guard that removes every one of them on every way out: the normal
//! end, an error, a panic, Ctrl-C.
//!
//! Engines are driven through their CLIs (`run -d`, `inspect`, `exec`, `rm -f`); a native
//! container is a `probe run -- CMD` child process whose init we find in its process tree.
//!
//! Each start runs in its own process group, so Ctrl-C reaches probe only: a `docker run -d`
//! interrupted halfway could leave a container whose id nobody printed. Probe lets the start
//! finish, then removes it with the rest — by name, which is known before the engine is asked.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::runtimes::cli_engine::{container_name, last_line, output_with_timeout, CliEngine, StderrSink};
use crate::runtimes::spawn::NativeCli;
use crate::runtimes::EngineError;
use crate::ground::RuntimeKind;
use crate::sys::procfs;

/// How long one container may take to start or to go away before probe gives up on it.
const START_TIMEOUT: Duration = Duration::from_secs(60);
const NATIVE_STOP_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Container {
    pub name: String,
    /// The engine's id (native: the name).
    pub id: String,
    /// The container's first process as the host sees it; 0 until resolved.
    pub main_pid: u32,
    /// Where the engine mounted the container's root (None for native): a storage helper
    /// such as fuse-overlayfs is recognised by it.
    pub merged_dir: Option<String>,
    /// Wall time of the start: `run -d` until it returned, or `probe run` until its
    /// command had been exec'd.
    pub start_ns: u64,
}

// Not spawn::Spawner, whose containers end with their command: these outlive it, to be exec'd into and removed.
enum Backend {
    Cli(CliEngine),
    /// One `probe run` child per container, in the order of `containers`; their stderr
    /// goes to one memfd, read when a start fails.
    Native { cli: NativeCli, children: Vec<Child>, stderr: StderrSink },
}

pub struct Fleet {
    kind: RuntimeKind,
    backend: Backend,
    /// Unique per fleet: `probe-<pid>-<tag>-`, so leftovers are found by name.
    tag: String,
    containers: Vec<Container>,
    /// Every name handed to an engine, started or not: all are removed.
    names: Vec<String>,
}

impl Fleet {
    /// Checks the runtime can start containers here (engine answers, image present; native:
    /// root, and the image rootfs exists).
    pub fn open(kind: RuntimeKind, tag: &str) -> Result<Fleet, EngineError> {
        let unusable = |what: String, fix: &str| EngineError::Unusable { runtime: kind, what, fix: fix.into() };
        let backend = match kind {
            RuntimeKind::Docker | RuntimeKind::Podman | RuntimeKind::PodmanRootless => Backend::Cli(CliEngine::open(kind)?),
            RuntimeKind::Native => {
                let cli = NativeCli::open()?;
                let stderr = StderrSink::new().map_err(|e| unusable(format!("memfd_create: {e}"), "this kernel needs memfd support (3.17+)"))?;
                Backend::Native { cli, children: Vec::new(), stderr }
            }
            _ => return Err(unusable("cannot keep detached containers".into(), "use native, docker, podman or podman-rootless")),
        };
        Ok(Fleet { kind, backend, tag: tag.to_string(), containers: Vec::new(), names: Vec::new() })
    }

    pub fn kind(&self) -> RuntimeKind {
        self.kind
    }

    pub fn containers(&self) -> &[Container] {
        &self.containers
    }

    /// Starts one detached container running `argv` (which must keep running, e.g.
    /// `sleep 3600`) and returns it once it runs.
    pub fn start(&mut self, argv: &[String]) -> anyhow::Result<&Container> {
        let name = container_name(&self.tag);
        self.names.push(name.clone());
        let container = match &mut self.backend {
            Backend::Cli(engine) => start_cli(engine, &name, argv)?,
            Backend::Native { cli, children, stderr } => {
                let (child, c) = start_native(cli, stderr, &name, argv)?;
                children.push(child);
                c
            }
        };
        self.containers.push(container);
        Ok(self.containers.last().expect("just pushed"))
    }

    /// Fills in the main pid (and root mount) of every container that lacks one, with a
    /// single `inspect`.
    pub fn resolve_pids(&mut self) -> anyhow::Result<()> {
        let Backend::Cli(engine) = &self.backend else { return Ok(()) };
        let missing: Vec<&str> = self.containers.iter().filter(|c| c.main_pid == 0).map(|c| c.id.as_str()).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let mut args = vec!["inspect", "--format", "{{.Id}} {{.State.Pid}} {{.GraphDriver.Data.MergedDir}}"];
        args.extend(missing);
        let out = engine.query(&args).context("finding the containers' main pids")?;
        for line in out.lines() {
            let mut f = line.split_whitespace();
            let (Some(id), Some(pid)) = (f.next(), f.next().and_then(|p| p.parse::<u32>().ok())) else { continue };
            if let Some(c) = self.containers.iter_mut().find(|c| id.starts_with(&c.id) || c.id.starts_with(id)) {
                c.main_pid = pid;
                c.merged_dir = f.next().filter(|d| d.starts_with('/')).map(String::from);
            }
        }
        if let Some(c) = self.containers.iter().find(|c| c.main_pid == 0) {
            bail!("{}: container {} has no main pid (it is not running): {out}", self.kind, c.name);
        }
        Ok(())
    }

    /// A command that runs `argv` inside running container `index` as `docker exec` does:
    /// the engine's `exec`, or for native, entering the container's namespaces and cgroups.
    pub fn exec_command(&self, index: usize, argv: &[String]) -> anyhow::Result<Command> {
        let c = &self.containers[index];
        match &self.backend {
            Backend::Cli(engine) => {
                let mut args = vec!["exec".to_string(), c.id.clone()];
                args.extend(argv.iter().cloned());
                Ok(engine.command(args))
            }
            Backend::Native { .. } => Ok(crate::native::enter::command(c.main_pid, argv)?),
        }
    }

    /// Removes every container this fleet started (or tried to), then checks the engine has
    /// none left with this fleet's name prefix.
    pub fn remove_all(&mut self) -> anyhow::Result<()> {
        if self.names.is_empty() {
            return Ok(());
        }
        let prefix = format!("{}-", container_name_prefix(&self.tag));
        let result = match &mut self.backend {
            Backend::Cli(engine) => remove_cli(engine, &self.names, &prefix),
            Backend::Native { children, .. } => stop_native(children),
        };
        self.containers.clear();
        self.names.clear();
        result.with_context(|| format!("{}: removing containers {prefix}*", self.kind))
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if let Err(e) = self.remove_all() {
            eprintln!("probe: {e:#}");
        }
    }
}

/// `probe-<pid>-<tag>`: what container_name puts before the sequence number.
fn container_name_prefix(tag: &str) -> String {
    format!("{}{}-{tag}", crate::ground::NAME_PREFIX, std::process::id())
}

fn start_cli(engine: &CliEngine, name: &str, argv: &[String]) -> anyhow::Result<Container> {
    let args = engine.container_args("-d", name, &[], argv);
    let start = Instant::now();
    let out = output_with_timeout(engine.command(&args).process_group(0), START_TIMEOUT)
        .map_err(|source| EngineError::Spawn { runtime: engine.kind(), program: format!("{} run -d", engine.kind()), source })?;
    let start_ns = start.elapsed().as_nanos() as u64;
    if !out.status.success() {
        let stderr = last_line(&String::from_utf8_lossy(&out.stderr));
        return Err(EngineError::RepFailed { runtime: engine.kind(), code: out.status.code().unwrap_or(-1), stderr }.into());
    }
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    anyhow::ensure!(!id.is_empty(), "{}: `run -d` printed no container id", engine.kind());
    Ok(Container { name: name.to_string(), id, main_pid: 0, merged_dir: None, start_ns })
}

/// The comm the kernel gives a process exec'd from `argv0` (basename, 15 bytes at most).
fn comm_of(argv0: &str) -> String {
    let base = argv0.rsplit('/').next().unwrap_or(argv0);
    base.chars().take(15).collect()
}

fn start_native(cli: &NativeCli, stderr: &mut StderrSink, name: &str, argv: &[String]) -> anyhow::Result<(Child, Container)> {
    let mut cmd = cli.command(&[], argv);
    cmd.process_group(0).stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr.stdio()?);
    let comm = comm_of(&argv[0]);
    let start = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("native: starting `{} run`", cmd.get_program().to_string_lossy()))?;
    // Ready once a descendant has exec'd the command: before that it is still probe.
    loop {
        let found = procfs::tree_of(child.id())
            .into_iter()
            .skip(1)
            .find(|&p| procfs::status_of(p).map(|s| s.name == comm).unwrap_or(false));
        if let Some(pid) = found {
            let start_ns = start.elapsed().as_nanos() as u64;
            let c = Container { name: name.to_string(), id: name.to_string(), main_pid: pid, merged_dir: None, start_ns };
            return Ok((child, c));
        }
        if let Some(status) = child.try_wait()? {
            bail!("native: `probe run -- {}` exited ({status}) before its command ran: {}", argv.join(" "), stderr.last_line());
        }
        if start.elapsed() > START_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            bail!("native: `{}` did not start within {}s: {}", argv.join(" "), START_TIMEOUT.as_secs(), stderr.last_line());
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

fn remove_cli(engine: &CliEngine, names: &[String], prefix: &str) -> anyhow::Result<()> {
    let rm = |targets: &[String]| -> anyhow::Result<()> {
        let mut args = vec!["rm".to_string(), "-f".to_string()];
        if engine.kind() != RuntimeKind::Docker {
            // podman rm -f stops with the container's timeout first (10 s): a pid-namespace
            // init like `sleep` ignores SIGTERM, so every removal would wait it out.
            args.extend(["-t".to_string(), "0".to_string()]);
        }
        for chunk in targets.chunks(200) {
            let mut a = args.clone();
            a.extend(chunk.iter().cloned());
            let timeout = Duration::from_secs(60 + 2 * chunk.len() as u64);
            let out = output_with_timeout(engine.command(&a).process_group(0), timeout)
                .with_context(|| format!("running `{} rm -f`", engine.kind()))?;
            let err = String::from_utf8_lossy(&out.stderr);
            // Names that were never created are fine; anything else is a failed removal.
            let real: Vec<&str> = err
                .lines()
                .filter(|l| !l.trim().is_empty())
                .filter(|l| !l.contains("No such container") && !l.contains("no such container"))
                .collect();
            if !out.status.success() && !real.is_empty() {
                bail!("`rm -f` failed: {}", last_line(&real.join("\n")));
            }
        }
        Ok(())
    };
    rm(names)?;
    let left = |engine: &CliEngine| -> anyhow::Result<Vec<String>> {
        let out = engine.query(&["ps", "-aq", "--filter", &format!("name={prefix}")])?;
        Ok(out.split_whitespace().map(String::from).collect())
    };
    let leftovers = left(engine)?;
    if !leftovers.is_empty() {
        rm(&leftovers)?;
        let still = left(engine)?;
        if !still.is_empty() {
            bail!("{} containers named {prefix}* are still there: {}", still.len(), still.join(" "));
        }
    }
    Ok(())
}

/// SIGTERM makes each `probe run` kill its container and tear it down (cgroup, mounts,
/// directories); all are signalled first so the teardowns overlap.
fn stop_native(children: &mut Vec<Child>) -> anyhow::Result<()> {
    for c in children.iter() {
        let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGTERM);
    }
    let deadline = Instant::now() + NATIVE_STOP_TIMEOUT;
    let mut failed = Vec::new();
    for mut c in children.drain(..) {
        loop {
            match c.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
                _ => {
                    failed.push(c.id());
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
            }
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} `probe run` processes did not finish their teardown within {}s and were killed (pids {:?}); \
             `probe cleanup` removes what they left",
            failed.len(),
            NATIVE_STOP_TIMEOUT.as_secs(),
            failed
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn comm_is_basename_truncated() {
        assert_eq!(super::comm_of("sleep"), "sleep");
        assert_eq!(super::comm_of("/bin/sleep"), "sleep");
        assert_eq!(super::comm_of("containerd-shim-runc-v2"), "containerd-shim");
    }
}

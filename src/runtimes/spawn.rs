//! A runtime as a command probe spawns and waits for: `argv` run to completion in a new
//! container of each kind (bare: on the host). Startup's command runtimes, the cpu loop and
//! the io worker all build on this one dispatch.

use std::path::PathBuf;
use std::process::Command;

use crate::ground::RuntimeKind;
use crate::measure::{Runtime, Sample};
use crate::runtimes::cli_engine::{CliEngine, StderrSink};
use crate::runtimes::EngineError;

/// The native container as a child process: `probe run [FLAGS] -- CMD` of this binary.
pub struct NativeCli {
    probe: PathBuf,
}

impl NativeCli {
    /// Checks a `probe run` child can make a container here (root, the test image rootfs)
    /// and finds this binary.
    pub fn open() -> Result<Self, EngineError> {
        let unusable = |what: String, fix: &str| EngineError::Unusable { runtime: RuntimeKind::Native, what, fix: fix.into() };
        if !nix::unistd::Uid::effective().is_root() {
            return Err(unusable("needs root".into(), "run probe with sudo"));
        }
        let rootfs = crate::ground::rootfs_dir();
        if !rootfs.join("bin/sh").exists() {
            return Err(unusable(format!("the test image rootfs {} is missing", rootfs.display()), "build it with `sudo probe image build`"));
        }
        let probe = std::env::current_exe().map_err(|e| unusable(format!("cannot locate the probe binary: {e}"), "run probe from its installed path"))?;
        Ok(NativeCli { probe })
    }

    pub fn command(&self, flags: &[&str], argv: &[String]) -> Command {
        let mut c = Command::new(&self.probe);
        c.arg("run").args(flags).arg("--").args(argv);
        c
    }
}

/// What one run adds to the runtime's defaults; each kind takes the parts it has.
#[derive(Default)]
pub struct RunOpts<'a> {
    /// `HOST:CONTAINER`, bind-mounted (engines `-v`, native `--volume`).
    pub volume: Option<&'a str>,
    /// Keep stdin open into the container (engines `-i`; bare and native inherit it anyway).
    pub interactive: bool,
    /// An engine's `--cgroup-parent`.
    pub cgroup_parent: Option<&'a str>,
    /// Flags of `probe run` (storage, namespaces).
    pub native: &'a [&'a str],
    /// An engine's own flags before `run` (podman `--root DIR`: storage on another disk).
    pub engine_flags: &'a [String],
}

pub enum Spawner {
    Bare,
    Native(NativeCli),
    Engine(CliEngine),
}

impl Spawner {
    /// Checks `kind` can run here; runc and crun are measured by startup only (an OCI bundle
    /// per rep, not a command line).
    pub fn open(kind: RuntimeKind) -> Result<Self, EngineError> {
        match kind {
            RuntimeKind::Bare => Ok(Spawner::Bare),
            RuntimeKind::Native => Ok(Spawner::Native(NativeCli::open()?)),
            RuntimeKind::Docker | RuntimeKind::Podman | RuntimeKind::PodmanRootless => Ok(Spawner::Engine(CliEngine::open(kind)?)),
            RuntimeKind::Runc | RuntimeKind::Crun => Err(EngineError::Unusable {
                runtime: kind,
                what: "not part of this experiment".into(),
                fix: "use bare, native, docker, podman or podman-rootless".into(),
            }),
        }
    }

    pub fn kind(&self) -> RuntimeKind {
        match self {
            Spawner::Bare => RuntimeKind::Bare,
            Spawner::Native(_) => RuntimeKind::Native,
            Spawner::Engine(e) => e.kind(),
        }
    }

    /// The command that runs `argv` in a new container (`run --rm`, `probe run`), or for bare
    /// runs `argv` itself.
    pub fn command(&self, argv: &[String], opts: &RunOpts) -> Command {
        match self {
            Spawner::Bare => {
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..]);
                c
            }
            Spawner::Native(n) => {
                let volume = opts.volume.map(|v| ["--volume", v]);
                let flags: Vec<&str> = opts.native.iter().copied().chain(volume.into_iter().flatten()).collect();
                n.command(&flags, argv)
            }
            Spawner::Engine(e) => {
                let mut extra = Vec::new();
                if opts.interactive {
                    extra.push("-i");
                }
                if let Some(v) = opts.volume {
                    extra.extend(["-v", v]);
                }
                if let Some(cg) = opts.cgroup_parent {
                    extra.extend(["--cgroup-parent", cg]);
                }
                let mut args = opts.engine_flags.to_vec();
                args.extend(e.run_args(&extra, argv));
                e.command(args)
            }
        }
    }
}

/// Startup's runtimes that are a spawned command (bare, docker, podman): one rep is
/// spawn+wait of it, stdout to /dev/null and stderr kept for a failed rep.
pub struct Spawned {
    spawner: Spawner,
    stderr: StderrSink,
}

impl Spawned {
    pub fn open(kind: RuntimeKind) -> Result<Self, EngineError> {
        let spawner = Spawner::open(kind)?;
        let stderr = StderrSink::new().map_err(|e| EngineError::Unusable {
            runtime: kind,
            what: format!("memfd_create: {e}"),
            fix: "this kernel needs memfd support (3.17+)".into(),
        })?;
        Ok(Spawned { spawner, stderr })
    }
}

impl Runtime for Spawned {
    fn kind(&self) -> RuntimeKind {
        self.spawner.kind()
    }

    fn run(&mut self, argv: &[String]) -> anyhow::Result<Sample> {
        let mut cmd = self.spawner.command(argv, &RunOpts::default());
        match (self.stderr.time_rep(self.spawner.kind(), &mut cmd), &self.spawner) {
            (Err(EngineError::RepFailed { runtime, code, stderr }), Spawner::Engine(e)) => Err(e.stopped_or(runtime, code, stderr).into()),
            (other, _) => Ok(other?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(c: &Command) -> Vec<String> {
        std::iter::once(c.get_program()).chain(c.get_args()).map(|a| a.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn each_kind_takes_its_own_options() {
        let argv = ["sh".to_string(), "-c".into(), "true".into()];
        let opts = RunOpts { volume: Some("/h:/mnt"), interactive: true, cgroup_parent: Some("/cg"), native: &["--ns", "all"], engine_flags: &[] };
        assert_eq!(args(&Spawner::Bare.command(&argv, &opts)), ["sh", "-c", "true"]);
        let native = Spawner::Native(NativeCli { probe: "/bin/probe".into() });
        assert_eq!(args(&native.command(&argv, &opts)), ["/bin/probe", "run", "--ns", "all", "--volume", "/h:/mnt", "--", "sh", "-c", "true"]);
        assert_eq!(args(&native.command(&argv, &RunOpts::default())), ["/bin/probe", "run", "--", "sh", "-c", "true"]);
    }
}

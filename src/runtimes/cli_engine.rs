//! docker, podman and rootless podman, driven through their CLIs exactly as a user types
//! `docker run --rm --network none IMAGE CMD`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::runtimes::rootless::RootlessUser;
use crate::runtimes::EngineError;
use crate::ground::{RuntimeKind, IMAGE_TAG, NAME_PREFIX, OWNER_LABEL};
use crate::measure::{timer, Sample};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A unique container name: prefix, our pid, a sequence number. The pid lets `probe cleanup`
/// tell a dead run's leftovers from a live run's containers.
pub fn container_name(tag: &str) -> String {
    format!(
        "{NAME_PREFIX}{}-{tag}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

pub struct CliEngine {
    kind: RuntimeKind,
    program: PathBuf,
    user: Option<RootlessUser>,
}

/// Finds `name` on PATH the way a shell would.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Runs a command to completion with a deadline, killing it if it overruns (a hung daemon
/// socket must not hang probe).
pub fn output_with_timeout(cmd: &mut Command, timeout: Duration) -> std::io::Result<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let start = Instant::now();
    let mut poll = Duration::from_millis(1);
    loop {
        if child.try_wait()?.is_some() {
            return child.wait_with_output();
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {}s", timeout.as_secs()),
            ));
        }
        // Back off from 1 ms: engine queries take tens of ms, and a fixed 10 ms poll would
        // add up to 10 ms to every timed step built on this.
        std::thread::sleep(poll);
        poll = (poll * 2).min(Duration::from_millis(10));
    }
}

/// Where a rep's stderr goes: a memfd, read only when the rep fails, so a healthy rep costs
/// no pipe and no reader thread.
pub struct StderrSink(File);

impl StderrSink {
    pub fn new() -> std::io::Result<Self> {
        crate::sys::memfd::create("probe-stderr").map(StderrSink)
    }

    /// Empties the sink and returns a handle for the next child's stderr.
    pub fn stdio(&mut self) -> std::io::Result<Stdio> {
        self.0.set_len(0)?;
        self.0.seek(SeekFrom::Start(0))?;
        Ok(Stdio::from(self.0.try_clone()?))
    }

    pub fn last_line(&mut self) -> String {
        let mut s = String::new();
        let _ = self.0.seek(SeekFrom::Start(0));
        let _ = self.0.read_to_string(&mut s);
        last_line(&s)
    }

    /// Times one rep of `cmd` (stdin and stdout to /dev/null, stderr here); a non-zero exit
    /// becomes RepFailed carrying the last line the command printed on stderr.
    pub fn time_rep(&mut self, runtime: RuntimeKind, cmd: &mut Command) -> Result<Sample, EngineError> {
        let program = cmd.get_program().to_string_lossy().into_owned();
        let spawn = |source| EngineError::Spawn { runtime, program: program.clone(), source };
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(self.stdio().map_err(spawn)?);
        let sample = timer::time_command(cmd).map_err(spawn)?;
        if sample.exit_code != 0 {
            return Err(EngineError::RepFailed {
                runtime,
                code: sample.exit_code,
                stderr: self.last_line(),
            });
        }
        Ok(sample)
    }
}

impl CliEngine {
    pub fn open(kind: RuntimeKind) -> Result<Self, EngineError> {
        let engine = Self::locate(kind)?;
        engine.check_answers()?;
        engine.check_image()?;
        Ok(engine)
    }

    /// The engine binary and (for rootless) the user, without asking the engine anything.
    pub fn locate(kind: RuntimeKind) -> Result<Self, EngineError> {
        let bin = match kind {
            RuntimeKind::Docker => "docker",
            _ => "podman",
        };
        let unusable = |what: String, fix: &str| EngineError::Unusable {
            runtime: kind,
            what,
            fix: fix.to_string(),
        };
        let program = which(bin).ok_or_else(|| {
            unusable(
                format!("`{bin}` is not installed (not on PATH)"),
                "install it with `sudo bash scripts/setup-engines.sh`, or leave it out of --runtimes",
            )
        })?;
        let user = if kind == RuntimeKind::PodmanRootless {
            Some(RootlessUser::find().map_err(|e| unusable(e.to_string(), "run `sudo bash scripts/setup-engines.sh` to create and configure the rootless user"))?)
        } else {
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } != 0 {
                return Err(unusable(
                    "needs root".into(),
                    "run probe with sudo, or use podman-rootless",
                ));
            }
            None
        };
        Ok(CliEngine { kind, program, user })
    }

    pub fn kind(&self) -> RuntimeKind {
        self.kind
    }

    /// A command for this engine, run as the rootless user when there is one.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new(&self.program);
        cmd.args(args);
        if let Some(u) = &self.user {
            u.apply(&mut cmd);
        }
        cmd
    }

    /// Runs an engine command to completion (30 s deadline), returning stdout on success and
    /// an error carrying stderr otherwise.
    pub fn query(&self, args: &[&str]) -> Result<String, EngineError> {
        let out = output_with_timeout(&mut self.command(args), Duration::from_secs(30)).map_err(|source| {
            EngineError::Spawn {
                runtime: self.kind,
                program: format!("{} {}", self.program.display(), args.join(" ")),
                source,
            }
        })?;
        if !out.status.success() {
            return Err(EngineError::RepFailed {
                runtime: self.kind,
                code: out.status.code().unwrap_or(-1),
                stderr: last_line(&String::from_utf8_lossy(&out.stderr)),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn check_answers(&self) -> Result<(), EngineError> {
        // `version` needs the daemon (docker) / the storage and runtime config (podman)
        // without the cost of a full `info`.
        let server = if self.kind == RuntimeKind::Docker { "{{.Server.Version}}" } else { "{{.Version}}" };
        self.query(&["version", "--format", server]).map(|_| ()).map_err(|e| EngineError::Unusable {
            runtime: self.kind,
            what: format!("`{} info` fails ({e})", self.program.display()),
            fix: match self.kind {
                RuntimeKind::Docker => "start dockerd (`sudo bash scripts/setup-engines.sh` starts it)".into(),
                _ => "check the podman setup with `sudo bash scripts/setup-engines.sh`".into(),
            },
        })
    }

    pub fn has_image(&self) -> bool {
        self.query(&["image", "inspect", "--format", "{{.Id}}", IMAGE_TAG]).is_ok()
    }

    fn check_image(&self) -> Result<(), EngineError> {
        if self.has_image() {
            return Ok(());
        }
        Err(EngineError::Unusable {
            runtime: self.kind,
            what: format!("test image {IMAGE_TAG} is missing"),
            fix: "build it with `sudo probe image build`".into(),
        })
    }

    /// `run --rm --network none` plus probe's name and label, then `extra` engine flags.
    pub fn run_args(&self, extra: &[&str], argv: &[String]) -> Vec<String> {
        self.container_args("--rm", &container_name(self.kind.name()), extra, argv)
    }

    /// `run <how>` (`--rm`, `-d`) of container `name` with `--network none` and probe's label,
    /// then `extra` engine flags, the test image and `argv`.
    pub fn container_args(&self, how: &str, name: &str, extra: &[&str], argv: &[String]) -> Vec<String> {
        let mut args: Vec<String> = ["run", how, "--network", "none", "--label", OWNER_LABEL, "--name", name].map(String::from).to_vec();
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(IMAGE_TAG.into());
        args.extend(argv.iter().cloned());
        args
    }
}

/// The last meaningful line of an engine's stderr: where engines put the actual error. The
/// pointer docker prints after it ("See 'docker run --help'.", "Run 'docker run --help' for
/// more information") says nothing about what went wrong, so it is passed over.
pub fn last_line(s: &str) -> String {
    let lines = || s.lines().rev().map(str::trim).filter(|l| !l.is_empty());
    let help_hint = |l: &&str| (l.starts_with("See '") || l.starts_with("Run '")) && l.contains("--help");
    lines()
        .find(|l| !help_hint(l))
        .or_else(|| lines().next())
        .unwrap_or("(no output on stderr)")
        .to_string()
}

impl CliEngine {
    /// A failed rep of an engine that answered when the run began (open checks it): asked
    /// again, an engine that no longer answers has stopped during this rep, and that is what
    /// the error says, with the engine's own line as evidence. podman is asked for `info`,
    /// which reads its storage, so a broken store counts as stopped too.
    pub fn stopped_or(&self, runtime: RuntimeKind, code: i32, stderr: String) -> EngineError {
        let (ask, what, fix): (&[&str], String, &str) = match self.kind {
            RuntimeKind::Docker => (
                &["version", "--format", "{{.Server.Version}}"],
                "the daemon stopped answering during this rep; it answered before".into(),
                "start dockerd (`sudo bash scripts/setup-engines.sh` starts it) and run again",
            ),
            _ => (
                &["info", "--format", "{{.Store.GraphDriverName}}"],
                format!("{} stopped working during this rep (`podman info` now fails); it worked before", self.kind),
                "check podman's storage and runtime with `podman info`, then run again",
            ),
        };
        match self.query(ask) {
            Ok(_) => EngineError::RepFailed { runtime, code, stderr },
            Err(_) => EngineError::Stopped { runtime, what, stderr, fix: fix.into() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engines_own_error_line_not_its_help_pointer() {
        let docker = "docker: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?.\nSee 'docker run --help'.\n";
        assert!(last_line(docker).starts_with("docker: Cannot connect to the Docker daemon"));
        let newer = "docker: Error response from daemon: oci runtime error.\n\nRun 'docker run --help' for more information\n";
        assert_eq!(last_line(newer), "docker: Error response from daemon: oci runtime error.");
        assert_eq!(last_line("Error: crun: open: No such file\n"), "Error: crun: open: No such file");
        assert_eq!(last_line("See 'docker run --help'.\n"), "See 'docker run --help'.");
        assert_eq!(last_line(""), "(no output on stderr)");
    }
}

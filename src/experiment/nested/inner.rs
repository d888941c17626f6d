//! The worker: what `probe nested inside` does in the outer container. It probes the
//! container (probes.rs), then walks the inner engine's steps — start dockerd or reach the
//! host's, import the test image from the read-only mounted rootfs, run `echo ok` in it —
//! timing each against CLOCK_MONOTONIC, which containers share with the host, so the host
//! can place every step on its own clock. It prints one JSON line and nothing else on stdout.

use std::fs::{self, File};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use super::probes::{self, Probes};
use crate::runtimes::cli_engine::{last_line, output_with_timeout};
use crate::ground::{IMAGE_TAG, OWNER_LABEL};
use crate::runtimes::image::nested::TEST_ROOTFS_IN_IMAGE;

/// Which engine runs the innermost container, and how it is reached.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Inner {
    /// dockerd started inside the outer container (Docker-in-Docker).
    DockerDaemon,
    /// The docker CLI against the host's daemon through its mounted socket.
    DockerHostSocket,
    /// Podman inside, storage as configured in the image (overlay via fuse-overlayfs).
    Podman,
    /// Podman inside with the vfs storage driver (plain copies, no overlay mount).
    PodmanVfs,
    /// probe's own runtime inside a native container (`probe run` over the container's root).
    Native,
}

impl Inner {
    fn program(self) -> &'static str {
        match self {
            Inner::DockerDaemon | Inner::DockerHostSocket => "docker",
            Inner::Podman | Inner::PodmanVfs => "podman",
            Inner::Native => "probe",
        }
    }

    /// Where the inner engine keeps its layers (a volume of the nested image).
    pub fn storage(self) -> &'static Path {
        Path::new(match self {
            Inner::DockerDaemon | Inner::DockerHostSocket => "/var/lib/docker",
            Inner::Podman | Inner::PodmanVfs => "/var/lib/containers",
            Inner::Native => "/tmp",
        })
    }

    /// Global engine options that come before the subcommand.
    fn global_args(self) -> &'static [&'static str] {
        match self {
            Inner::PodmanVfs => &["--storage-driver", "vfs"],
            _ => &[],
        }
    }

    /// True when the innermost container goes through the overlay driver's mount helper.
    pub fn uses_fuse(self) -> bool {
        self == Inner::Podman
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StepName {
    /// The inner daemon answers (started here, or the host's through the socket).
    Daemon,
    /// The test image is in the inner engine's store.
    Import,
    /// `run --rm --network none IMAGE echo ok` printed ok.
    Run,
}

impl StepName {
    pub fn describe(self, inner: Inner) -> &'static str {
        match (self, inner) {
            (StepName::Daemon, Inner::DockerHostSocket) => "reach the host's dockerd through the socket",
            (StepName::Daemon, _) => "start the inner dockerd",
            (StepName::Import, _) => "import the test image into the inner engine",
            (StepName::Run, _) => "run `echo ok` in an inner container",
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Step {
    pub name: StepName,
    pub ok: bool,
    /// CLOCK_MONOTONIC, nanoseconds.
    pub start_ns: u64,
    pub end_ns: u64,
    /// The engine's last stderr line on failure: evidence to show, not what is classified.
    pub detail: String,
}

impl Step {
    pub fn ms(&self) -> f64 {
        self.end_ns.saturating_sub(self.start_ns) as f64 / 1e6
    }
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct WorkerReport {
    /// When the worker started (CLOCK_MONOTONIC ns): the end of the outer container's startup.
    pub started_ns: u64,
    pub probes: Probes,
    pub steps: Vec<Step>,
}

pub fn monotonic_ns() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC exists");
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

const DOCKERD_LOG: &str = "/var/log/probe-dockerd.log";

pub struct Worker {
    pub inner: Inner,
    /// Name for the innermost container, chosen by the host so its cleanup can find it.
    pub name: String,
    pub daemon_timeout: Duration,
    /// `probe run` options for a native inner level.
    pub native_flags: Vec<String>,
}

impl Worker {
    fn engine(&self) -> Command {
        let mut c = Command::new(self.inner.program());
        c.args(self.inner.global_args());
        c
    }

    pub fn run(&self) -> anyhow::Result<WorkerReport> {
        let started_ns = monotonic_ns();
        let probes = probes::run_all(self.inner.storage());
        let mut steps = Vec::new();
        let mut daemon = None;
        if matches!(self.inner, Inner::DockerDaemon | Inner::DockerHostSocket) {
            let (step, child) = self.daemon_step();
            daemon = child;
            steps.push(step);
        }
        if steps.iter().all(|s| s.ok) && !matches!(self.inner, Inner::DockerHostSocket | Inner::Native) {
            // The host's daemon already has the test image: importing through the socket
            // would replace the host's own copy. A native level runs its own root as image.
            steps.push(self.import_step());
        }
        if steps.iter().all(|s| s.ok) {
            steps.push(self.run_step());
        }
        if let Some(child) = daemon {
            stop(child);
        }
        Ok(WorkerReport { started_ns, probes, steps })
    }

    /// Waits until `docker version` reaches a server: started here (dind), or the host's.
    fn daemon_step(&self) -> (Step, Option<Child>) {
        let start_ns = monotonic_ns();
        let mut child = None;
        if self.inner == Inner::DockerDaemon {
            let spawned = File::create(DOCKERD_LOG).and_then(|log| {
                Command::new("dockerd")
                    .stdin(Stdio::null())
                    .stdout(log.try_clone()?)
                    .stderr(log)
                    .spawn()
            });
            match spawned {
                Ok(c) => child = Some(c),
                Err(e) => return (step(StepName::Daemon, false, start_ns, format!("spawning dockerd: {e}")), None),
            }
        }
        let deadline = Instant::now() + self.daemon_timeout;
        loop {
            let answered = output_with_timeout(
                Command::new("docker").args(["version", "--format", "{{.Server.Version}}"]),
                Duration::from_secs(5),
            )
            .map(|o| o.status.success())
            .unwrap_or(false);
            if answered {
                return (step(StepName::Daemon, true, start_ns, String::new()), child);
            }
            let exited = child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                let why = match (exited, &child) {
                    (Some(status), _) => format!("dockerd exited ({status}): {}", dockerd_log_tail()),
                    (None, Some(_)) => format!("no answer within {}s: {}", self.daemon_timeout.as_secs(), dockerd_log_tail()),
                    (None, None) => format!("no daemon answers on /var/run/docker.sock within {}s", self.daemon_timeout.as_secs()),
                };
                return (step(StepName::Daemon, false, start_ns, why), child);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `tar -C TEST_ROOTFS -c . | ENGINE import - IMAGE`, the way `probe image build` imports.
    fn import_step(&self) -> Step {
        let start_ns = monotonic_ns();
        let result = (|| -> anyhow::Result<String> {
            let mut tar = Command::new("tar")
                .args(["--numeric-owner", "-C", TEST_ROOTFS_IN_IMAGE, "-cf", "-", "."])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .context("running tar")?;
            let out = self
                .engine()
                .args(["import", "-", IMAGE_TAG])
                .stdin(tar.stdout.take().expect("piped"))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .context("running the inner engine's import")?;
            tar.wait()?;
            Ok(if out.status.success() { String::new() } else { engine_error(&String::from_utf8_lossy(&out.stderr)) })
        })();
        match result {
            Ok(err) => step(StepName::Import, err.is_empty(), start_ns, err),
            Err(e) => step(StepName::Import, false, start_ns, format!("{e:#}")),
        }
    }

    fn run_command(&self) -> Command {
        let mut cmd = self.engine();
        if self.inner == Inner::Native {
            cmd.arg("run").args(native_level_args(&self.native_flags)).args(["--", "echo", "ok"]);
        } else {
            cmd.args(["run", "--rm", "--network", "none", "--label", OWNER_LABEL, "--name", &self.name, IMAGE_TAG, "echo", "ok"]);
        }
        cmd
    }

    fn run_step(&self) -> Step {
        let start_ns = monotonic_ns();
        let mut cmd = self.run_command();
        match output_with_timeout(&mut cmd, Duration::from_secs(60)) {
            Ok(o) if o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "ok" => {
                step(StepName::Run, true, start_ns, String::new())
            }
            Ok(o) => step(StepName::Run, false, start_ns, engine_error(&String::from_utf8_lossy(&o.stderr))),
            Err(e) => step(StepName::Run, false, start_ns, e.to_string()),
        }
    }
}

/// An engine's error line: the last one naming an error (docker follows it with a usage
/// hint, fuse-overlayfs with ": exit status 1"), else the last line. Evidence for the
/// reader only: causes come from the probes.
pub fn engine_error(stderr: &str) -> String {
    stderr
        .lines()
        .rev()
        .find(|l| l.contains("Error") || l.contains("error"))
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| last_line(stderr))
}

/// Options of a `probe run` nested in a native container: its own root as the image, bound
/// rather than overlaid (overlayfs stacks at most two deep), plus the configured `flags`.
pub fn native_level_args(flags: &[String]) -> Vec<String> {
    let mut args: Vec<String> = ["--rootfs", "/", "--storage", "bind"].map(String::from).to_vec();
    args.extend(flags.iter().cloned());
    args
}

fn step(name: StepName, ok: bool, start_ns: u64, detail: String) -> Step {
    Step { name, ok, start_ns, end_ns: monotonic_ns(), detail }
}

/// The last error dockerd logged, else its last line.
fn dockerd_log_tail() -> String {
    let log = fs::read_to_string(DOCKERD_LOG).unwrap_or_default();
    log.lines()
        .rev()
        .find(|l| l.contains("level=error") || l.contains("level=fatal"))
        .map(str::to_string)
        .unwrap_or_else(|| last_line(&log))
}

/// SIGTERM, then SIGKILL after 10 s: dockerd stops its containerd and shims on SIGTERM.
fn stop(mut child: Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

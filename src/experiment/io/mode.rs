//! The storage modes `probe io` compares, and the command that runs the worker in each —
//! every engine run the way the chapter ran it (`run --rm IMAGE dd ...`, `-v TMPDIR:/mnt`),
//! plus probe's rules: `--network none`, the owner label, a probe name, and `-i` so the
//! worker's stdin reaches it for the phase handshake.

use std::fmt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::runtimes::spawn::{RunOpts, Spawner};
use crate::runtimes::rootless::RootlessUser;
use crate::runtimes::EngineError;
use crate::ground::{RuntimeKind, NAME_PREFIX};

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Bare,
    Tmpfs,
    DockerOverlay,
    DockerVolume,
    PodmanOverlay,
    PodmanVolume,
    RootlessFuseOverlayfs,
    RootlessVolume,
    /// `probe run --storage overlay-disk`: the native container's root is a kernel overlay
    /// with its upper on disk, mounted as overlay2 mounts it.
    NativeOverlay,
    /// The same mounted `volatile` (`--storage overlay-disk-volatile`), as podman mounts a
    /// `run --rm` container's root.
    NativeOverlayVolatile,
    NativeFuseOverlayfs,
    NativeBind,
    /// Kernel overlayfs mounted by probe on the host, upper and work in --dir, the worker
    /// writing through it: the native container's overlay without the container, so the
    /// upper layer can sit on any disk (the crash check's scratch disk).
    Overlay,
    /// The same with `volatile`, what podman mounts for `run --rm` containers.
    OverlayVolatile,
}

/// Where the worker writes inside a container: the chapter's paths.
const ROOTFS_FILE: &str = "/tmp/testfile";
const VOLUME_MOUNT: &str = "/mnt";
const FILE_NAME: &str = "testfile";
/// The probe binary inside the test image.
const IMAGE_PROBE: &str = "/usr/local/bin/probe";
/// Memory-backed filesystem every Linux host mounts; the tmpfs control writes there.
pub const SHM_DIR: &str = "/dev/shm";

impl Mode {
    pub const ALL: [Mode; 14] = [
        Mode::Bare,
        Mode::Tmpfs,
        Mode::DockerOverlay,
        Mode::DockerVolume,
        Mode::PodmanOverlay,
        Mode::PodmanVolume,
        Mode::RootlessFuseOverlayfs,
        Mode::RootlessVolume,
        Mode::NativeOverlay,
        Mode::NativeOverlayVolatile,
        Mode::NativeFuseOverlayfs,
        Mode::NativeBind,
        Mode::Overlay,
        Mode::OverlayVolatile,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Bare => "bare",
            Mode::Tmpfs => "tmpfs",
            Mode::DockerOverlay => "docker-overlay",
            Mode::DockerVolume => "docker-volume",
            Mode::PodmanOverlay => "podman-overlay",
            Mode::PodmanVolume => "podman-volume",
            Mode::RootlessFuseOverlayfs => "rootless-fuse-overlayfs",
            Mode::RootlessVolume => "rootless-volume",
            Mode::NativeOverlay => "native-overlay",
            Mode::NativeOverlayVolatile => "native-overlay-volatile",
            Mode::NativeFuseOverlayfs => "native-fuse-overlayfs",
            Mode::NativeBind => "native-bind",
            Mode::Overlay => "overlay",
            Mode::OverlayVolatile => "overlay-volatile",
        }
    }

    pub fn runtime(self) -> RuntimeKind {
        match self {
            Mode::Bare | Mode::Tmpfs | Mode::Overlay | Mode::OverlayVolatile => RuntimeKind::Bare,
            Mode::DockerOverlay | Mode::DockerVolume => RuntimeKind::Docker,
            Mode::PodmanOverlay | Mode::PodmanVolume => RuntimeKind::Podman,
            Mode::RootlessFuseOverlayfs | Mode::RootlessVolume => RuntimeKind::PodmanRootless,
            Mode::NativeOverlay | Mode::NativeOverlayVolatile | Mode::NativeFuseOverlayfs | Mode::NativeBind => RuntimeKind::Native,
        }
    }

    /// The chapter's `metric` column: `bare,io_write`, `docker,io_overlay`, `docker,io_volume`.
    pub fn chapter_metric(self) -> &'static str {
        match self {
            Mode::Bare => "io_write",
            Mode::Tmpfs => "io_tmpfs",
            Mode::DockerOverlay | Mode::PodmanOverlay | Mode::RootlessFuseOverlayfs | Mode::NativeOverlay => "io_overlay",
            Mode::NativeOverlayVolatile => "io_overlay_volatile",
            Mode::NativeFuseOverlayfs => "io_fuse_overlayfs",
            Mode::DockerVolume | Mode::PodmanVolume | Mode::RootlessVolume => "io_volume",
            Mode::NativeBind => "io_bind",
            Mode::Overlay => "io_kernel_overlay",
            Mode::OverlayVolatile => "io_kernel_overlay_volatile",
        }
    }

    /// The host directory the worker writes into, for modes that write to one: a volume
    /// bind-mounted at /mnt (native-bind: `probe run --volume`, the analogue of docker's), or
    /// the host itself.
    fn host_dir(self) -> Option<HostDir> {
        match self {
            Mode::Bare
            | Mode::DockerVolume
            | Mode::PodmanVolume
            | Mode::RootlessVolume
            | Mode::NativeBind
            | Mode::Overlay
            | Mode::OverlayVolatile => Some(HostDir::Disk),
            Mode::Tmpfs => Some(HostDir::Shm),
            _ => None,
        }
    }
}

enum HostDir {
    /// Under --dir (default /var/tmp, which distributions keep on disk, unlike /tmp).
    Disk,
    Shm,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The rep loop keys io's units by mode and records a stopped run's runtime from it.
impl From<Mode> for RuntimeKind {
    fn from(m: Mode) -> RuntimeKind {
        m.runtime()
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mode::ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| {
            let names: Vec<_> = Mode::ALL.iter().map(|m| m.name()).collect();
            format!("unknown storage mode '{s}': choose from {}", names.join(", "))
        })
    }
}

/// A host directory made for one rep, removed (with whatever is in it) when dropped.
pub struct TempDir(PathBuf);

static SEQ: AtomicU32 = AtomicU32::new(0);

impl TempDir {
    /// `<base>/probe-io-<pid>-<n>`, mode 0700, owned by `owner` when given (a rootless
    /// container's root is that user on the host, and must be able to write its volume).
    pub fn create(base: &Path, owner: Option<&RootlessUser>) -> Result<TempDir> {
        let dir = base.join(format!("{NAME_PREFIX}io-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating {} (pass --dir DIR on a writable disk filesystem)", dir.display()))?;
        let made = TempDir(dir);
        if let Some(u) = owner {
            std::os::unix::fs::chown(&made.0, Some(u.uid), Some(u.gid))
                .with_context(|| format!("giving {} to the rootless user {}", made.0.display(), u.name))?;
        }
        Ok(made)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            if e.kind() != std::io::ErrorKind::NotFound {
                eprintln!("probe: could not remove {}: {e}", self.0.display());
            }
        }
    }
}

/// One rep's command, and what to undo after it: the overlay first, then its directory.
pub struct Launch {
    pub cmd: Command,
    pub overlay: Option<OverlayMount>,
    pub dir: Option<TempDir>,
}

/// A kernel overlay probe mounted in a rep's directory, unmounted when dropped.
pub struct OverlayMount(PathBuf);

impl OverlayMount {
    /// lower (empty), upper and work in `dir`, mounted on `dir`/merged.
    fn mount(dir: &Path, volatile: bool) -> Result<OverlayMount> {
        let sub = |n: &str| dir.join(n);
        for d in ["lower", "upper", "work", "merged"] {
            std::fs::create_dir(sub(d)).with_context(|| format!("creating {}", sub(d).display()))?;
        }
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}{}",
            sub("lower").display(),
            sub("upper").display(),
            sub("work").display(),
            if volatile { ",volatile" } else { "" }
        );
        nix::mount::mount(Some("overlay"), &sub("merged"), Some("overlay"), nix::mount::MsFlags::empty(), Some(opts.as_str()))
            .with_context(|| format!("mounting overlay on {} ({opts})", sub("merged").display()))?;
        Ok(OverlayMount(sub("merged")))
    }

    pub fn merged(&self) -> &Path {
        &self.0
    }
}

impl Drop for OverlayMount {
    fn drop(&mut self) {
        if let Err(e) = nix::mount::umount2(&self.0, nix::mount::MntFlags::empty()) {
            eprintln!("probe: could not unmount the overlay on {}: {e}", self.0.display());
        }
    }
}

/// Podman's container storage moved to another disk (`--root`, `--runroot`), its images
/// still read from the default store (`overlay.imagestore`), so only the containers' layers
/// land there.
#[derive(Clone, Debug)]
pub struct PodmanStorage {
    pub root: PathBuf,
    pub runroot: PathBuf,
    pub image_store: String,
}

/// Builds each mode's command. Holds the runtimes it has checked, so a missing daemon or
/// image fails before any measurement.
pub struct Launcher {
    runtimes: Vec<Spawner>,
    exe: PathBuf,
    disk_dir: PathBuf,
    podman_storage: Option<PodmanStorage>,
    /// `probe run --storage-dir`: where the native container's upper layer goes.
    native_storage: Option<PathBuf>,
}

impl Launcher {
    pub fn new(disk_dir: PathBuf) -> Result<Launcher> {
        let exe = std::env::current_exe().context("locating the probe binary")?;
        Ok(Launcher { runtimes: vec![Spawner::Bare], exe, disk_dir, podman_storage: None, native_storage: None })
    }

    /// Rootful podman's containers go to `storage` from now on.
    pub fn set_podman_storage(&mut self, storage: PodmanStorage) {
        self.podman_storage = Some(storage);
    }

    /// The native container's upper and work directories go under `dir` from now on.
    pub fn set_native_storage(&mut self, dir: PathBuf) {
        self.native_storage = Some(dir);
    }

    /// Rootful podman's image store (its graph root), for `PodmanStorage::image_store`.
    pub fn podman_graph_root(&mut self) -> Result<String> {
        self.check(Mode::PodmanOverlay)?;
        match self.runtime(RuntimeKind::Podman) {
            Spawner::Engine(e) => Ok(e.query(&["info", "--format", "{{.Store.GraphRoot}}"])?),
            _ => unreachable!("podman-overlay runs on the podman engine"),
        }
    }

    /// Checks that `mode` can run here (engine answers, test image present, native runtime
    /// usable, tmpfs present), or says why not and how to fix it.
    pub fn check(&mut self, mode: Mode) -> Result<(), EngineError> {
        let rt = mode.runtime();
        let unusable = |what: String, fix: &str| EngineError::Unusable { runtime: rt, what, fix: fix.into() };
        if !self.runtimes.iter().any(|s| s.kind() == rt) {
            self.runtimes.push(Spawner::open(rt)?);
        }
        if mode == Mode::NativeFuseOverlayfs && !Path::new(crate::native::rootfs::FUSE_OVERLAYFS).exists() {
            return Err(unusable("fuse-overlayfs is not installed".into(), "install the fuse-overlayfs package"));
        }
        if mode == Mode::Tmpfs && !is_tmpfs(Path::new(SHM_DIR)) {
            return Err(unusable(format!("{SHM_DIR} is not a tmpfs"), "mount one: mount -t tmpfs tmpfs /dev/shm"));
        }
        Ok(())
    }

    fn runtime(&self, rt: RuntimeKind) -> &Spawner {
        self.runtimes.iter().find(|s| s.kind() == rt).expect("check() opened every runtime a mode uses")
    }

    /// The command that runs `probe worker io <worker_args> --path P` in `mode`'s container.
    pub fn launch(&self, mode: Mode, worker_args: &[String]) -> Result<Launch> {
        let rt = mode.runtime();
        let owner = if rt == RuntimeKind::PodmanRootless { Some(RootlessUser::find()?) } else { None };
        let dir = match mode.host_dir() {
            Some(HostDir::Disk) => Some(TempDir::create(&self.disk_dir, owner.as_ref())?),
            Some(HostDir::Shm) => Some(TempDir::create(Path::new(SHM_DIR), None)?),
            None => None,
        };
        let overlay = match mode {
            Mode::Overlay | Mode::OverlayVolatile => {
                Some(OverlayMount::mount(dir.as_ref().expect("overlay modes have a dir").path(), mode == Mode::OverlayVolatile)?)
            }
            _ => None,
        };
        let in_container_dir = match mode {
            Mode::Bare | Mode::Tmpfs => dir.as_ref().expect("host modes have a dir").path().display().to_string(),
            Mode::Overlay | Mode::OverlayVolatile => overlay.as_ref().expect("mounted above").merged().display().to_string(),
            _ if dir.is_some() => VOLUME_MOUNT.to_string(),
            _ => Path::new(ROOTFS_FILE).parent().expect("absolute").display().to_string(),
        };
        let mut worker: Vec<String> = vec!["worker".into(), "io".into()];
        worker.extend(worker_args.iter().cloned());
        worker.extend(["--path".into(), format!("{in_container_dir}/{FILE_NAME}")]);
        let volume = dir.as_ref().filter(|_| rt != RuntimeKind::Bare).map(|d| format!("{}:{VOLUME_MOUNT}", d.path().display()));
        let storage = match mode {
            // overlay-disk: upper and work on disk as Docker's overlay2 (plain `overlay`
            // keeps them on a tmpfs, which would make this a second tmpfs control).
            Mode::NativeOverlay => "overlay-disk",
            Mode::NativeOverlayVolatile => "overlay-disk-volatile",
            Mode::NativeFuseOverlayfs => "fuse-overlayfs",
            // native-bind writes to its volume; the root is the default, as docker's
            // volume mode keeps its overlay2 root.
            _ => "overlay",
        };
        let storage_dir = self.native_storage.as_ref().map(|d| d.display().to_string());
        let mut native = vec!["--storage", storage, "--ns", "all"];
        if let Some(d) = storage_dir.as_deref() {
            native.extend(["--storage-dir", d]);
        }
        // The worker is this binary on the host, the image's copy in a container.
        let program = if rt == RuntimeKind::Bare { self.exe.display().to_string() } else { IMAGE_PROBE.to_string() };
        let argv: Vec<String> = std::iter::once(program).chain(worker).collect();
        let mut engine_flags = Vec::new();
        if let Some(s) = self.podman_storage.as_ref().filter(|_| rt == RuntimeKind::Podman) {
            engine_flags.extend(["--root".into(), s.root.display().to_string(), "--runroot".into(), s.runroot.display().to_string()]);
            engine_flags.extend(["--storage-opt".into(), format!("overlay.imagestore={}", s.image_store)]);
        }
        let opts = RunOpts { volume: volume.as_deref(), interactive: true, cgroup_parent: None, native: &native, engine_flags: &engine_flags };
        let cmd = self.runtime(rt).command(&argv, &opts);
        Ok(Launch { cmd, overlay, dir })
    }
}

fn is_tmpfs(p: &Path) -> bool {
    nix::sys::statfs::statfs(p).is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_map_to_the_chapter() {
        for m in Mode::ALL {
            assert_eq!(m.name().parse::<Mode>().unwrap(), m);
        }
        assert!("zfs".parse::<Mode>().unwrap_err().contains("docker-volume"));
        assert_eq!((Mode::Bare.runtime().name(), Mode::Bare.chapter_metric()), ("bare", "io_write"));
        assert_eq!((Mode::DockerOverlay.runtime().name(), Mode::DockerOverlay.chapter_metric()), ("docker", "io_overlay"));
        assert_eq!(Mode::RootlessVolume.runtime().name(), "podman-rootless");
    }

    #[test]
    fn temp_dirs_are_removed() {
        let d = TempDir::create(&std::env::temp_dir(), None).unwrap();
        let p = d.path().to_path_buf();
        std::fs::write(p.join("f"), b"x").unwrap();
        drop(d);
        assert!(!p.exists());
    }

    #[test]
    fn bare_runs_this_binary_with_the_worker_args() {
        let l = Launcher::new(std::env::temp_dir()).unwrap();
        let launch = l.launch(Mode::Bare, &["--size".into(), "4096".into()]).unwrap();
        let args: Vec<_> = launch.cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        let dir = launch.dir.as_ref().unwrap().path().display().to_string();
        assert_eq!(args, vec!["worker", "io", "--size", "4096", "--path", &format!("{dir}/testfile")]);
    }
}

//! The container's root filesystem. The parent makes a fresh per-container directory; the
//! container's init mounts the storage inside its own mount namespace, so the mount dies with
//! that namespace when the container exits (no umount on the teardown path, and nothing can
//! leak into the host's mount table even if probe is killed).

use std::ffi::CString;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use serde::Serialize;

/// How the rootfs is put together.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Storage {
    /// Kernel overlayfs: lower = the image, fresh upper/work in /run/probe/<name> on a tmpfs
    /// (what /run is on a standard host; here the init mounts one privately so that holds
    /// even where /run is on disk). Nothing touches the host's disk or mount table.
    #[default]
    Overlay,
    /// Kernel overlayfs with upper/work on disk, in /var/lib/probe/containers/<name>: what
    /// Docker's overlay2 does, and what a disk experiment inside the container needs.
    OverlayDisk,
    /// overlay-disk mounted `volatile`, as podman mounts a `run --rm` container's root: the
    /// upper layer is on disk, but fsync inside the container is a no-op.
    OverlayDiskVolatile,
    /// The overlay done in user space by /usr/bin/fuse-overlayfs (rootless podman's way),
    /// upper/work on disk like overlay-disk.
    FuseOverlayfs,
    /// The image directory itself, bind-mounted read-only (no copy-up layer at all), on a
    /// mount point in the private tmpfs: nothing is written anywhere, so it also works where
    /// no directory is writable (the read-only root of a nested container).
    Bind,
    /// The image copied into a tmpfs: no overlay, a fully writable root in memory, the whole
    /// copy paid up front (what overlay's copy-on-write saves).
    Tmpfs,
}

pub const FUSE_OVERLAYFS: &str = "/usr/bin/fuse-overlayfs";

impl Storage {
    pub const ALL: [Storage; 6] = [
        Storage::Overlay,
        Storage::OverlayDisk,
        Storage::OverlayDiskVolatile,
        Storage::FuseOverlayfs,
        Storage::Bind,
        Storage::Tmpfs,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Storage::Overlay => "overlay",
            Storage::OverlayDisk => "overlay-disk",
            Storage::OverlayDiskVolatile => "overlay-disk-volatile",
            Storage::FuseOverlayfs => "fuse-overlayfs",
            Storage::Bind => "bind",
            Storage::Tmpfs => "tmpfs",
        }
    }
}

impl fmt::Display for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Storage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Storage::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Storage::ALL.iter().map(|k| k.name()).collect();
                format!("unknown storage '{s}': choose from {}", names.join(", "))
            })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("rootfs: {path} is not usable as a root filesystem: {error}")]
    BadRootfs {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("rootfs: {path} is not a directory")]
    NotDir { path: PathBuf },
    #[error("rootfs: path {path} contains ',' or ':', which overlay mount options cannot carry")]
    BadPath { path: PathBuf },
    #[error("rootfs: mkdir {path}: {error}")]
    Mkdir {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("rootfs: {FUSE_OVERLAYFS} not found: install the fuse-overlayfs package or use --storage overlay")]
    NoFuseOverlayfs,
    #[error("rootfs: mount {fstype} on {target}: {errno}")]
    Mount {
        fstype: &'static str,
        target: String,
        errno: Errno,
    },
    #[error("rootfs: {FUSE_OVERLAYFS} on {target} failed ({status}): {stderr}")]
    Fuse {
        target: String,
        status: String,
        stderr: String,
    },
    #[error("rootfs: remove {path}: {error}")]
    Remove {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("rootfs: the image {path} is under {RAM_BASE}, which the container's private tmpfs hides; use --storage overlay-disk")]
    UnderRun { path: PathBuf },
    #[error("rootfs: copy {path} into the tmpfs: {error}")]
    Copy {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// Where the RAM-backed modes mount their private tmpfs (inside the container's mount
/// namespace only; the host's /run is untouched).
const RAM_BASE: &str = "/run";

/// The per-container directory and what the init has to mount there.
pub struct Prepared {
    /// The per-container directory on the host's disk, for the disk-backed modes.
    dir: Option<PathBuf>,
    /// The future root, where pivot_root goes.
    pub merged: PathBuf,
    merged_c: CString,
    plan: Plan,
    rootless: bool,
}

enum Plan {
    /// `ram`: mount a tmpfs on /run and make these directories first (upper, work, merged).
    Overlay {
        ram: Option<Vec<CString>>,
        opts: CString,
    },
    Fuse {
        opts: String,
    },
    /// tmpfs on /run, `dirs` (down to `merged`) made there, the image bind-mounted on
    /// `merged`, read-only.
    Bind {
        src: CString,
        dirs: Vec<CString>,
    },
    /// tmpfs on /run, `merged` made there and bind-mounted on itself (pivot_root wants a
    /// mount point), then the image copied in.
    Copy {
        src: PathBuf,
        dirs: Vec<CString>,
    },
}

fn cstring(p: &Path) -> CString {
    // Paths come from the filesystem or from argv, neither of which can hold a NUL.
    CString::new(p.as_os_str().as_bytes()).expect("path without NUL")
}

/// Where per-container directories live: under /var/lib/probe for root (next to the image,
/// on the same disk engines use), under the user's runtime dir when rootless.
pub fn containers_base(rootless: bool) -> PathBuf {
    if !rootless {
        return PathBuf::from("/var/lib/probe/containers");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) => PathBuf::from(d).join("probe-containers"),
        None => std::env::temp_dir()
            .join(format!("probe-{}", nix::unistd::Uid::effective()))
            .join("containers"),
    }
}

/// `volatile` where the upper layer is thrown-away RAM anyway, or where asked for
/// (overlay-disk-volatile: see `prepare`).
fn overlay_opts(
    lower: &Path,
    upper: &Path,
    work: &Path,
    rootless: bool,
    volatile: bool,
) -> Result<String, RootfsError> {
    for p in [lower, upper, work] {
        if p.as_os_str()
            .as_bytes()
            .iter()
            .any(|b| *b == b',' || *b == b':')
        {
            return Err(RootfsError::BadPath {
                path: p.to_path_buf(),
            });
        }
    }
    // `volatile` turns every fsync/fdatasync/syncfs inside the container into a no-op (and
    // skips the syncfs at umount): right for an upper layer on a tmpfs, which no sync can make
    // durable anyway, wrong for one on disk, whose syncs must reach the disk as overlay2's do
    // (overlay-disk-volatile asks for it on disk only to show what podman's `--rm` does).
    let volatile = if volatile { ",volatile" } else { "" };
    // `userxattr` is what makes overlay mountable inside a user namespace (kernel ≥ 5.11).
    let userxattr = if rootless { ",userxattr" } else { "" };
    Ok(format!(
        "lowerdir={},upperdir={},workdir={}{volatile}{userxattr}",
        lower.display(),
        upper.display(),
        work.display()
    ))
}

/// Parent side: checks the image rootfs and, for the disk-backed modes, makes the container
/// directory (under `storage_dir`, default `containers_base`). Runs before the clone; the
/// returned guard removes the directory when dropped.
pub fn prepare(
    storage: Storage,
    rootfs: &Path,
    name: &str,
    rootless: bool,
    storage_dir: Option<&Path>,
) -> Result<Prepared, RootfsError> {
    let meta = std::fs::metadata(rootfs).map_err(|error| RootfsError::BadRootfs {
        path: rootfs.to_path_buf(),
        error,
    })?;
    if !meta.is_dir() {
        return Err(RootfsError::NotDir {
            path: rootfs.to_path_buf(),
        });
    }
    if storage == Storage::FuseOverlayfs && !Path::new(FUSE_OVERLAYFS).exists() {
        return Err(RootfsError::NoFuseOverlayfs);
    }
    let in_ram = matches!(storage, Storage::Overlay | Storage::Tmpfs | Storage::Bind);
    if in_ram && rootfs.starts_with(RAM_BASE) {
        return Err(RootfsError::UnderRun {
            path: rootfs.to_path_buf(),
        });
    }
    let base = storage_dir.map_or_else(|| containers_base(rootless), Path::to_path_buf);
    let dir = if in_ram {
        Path::new(RAM_BASE).join("probe").join(name)
    } else {
        base.join(name)
    };
    let (merged, upper, work) = (dir.join("merged"), dir.join("upper"), dir.join("work"));
    // The guard exists before any directory is made, so a failed mkdir removes the rest;
    // its plan is replaced below.
    let mut prepared = Prepared {
        dir: None,
        merged_c: cstring(&merged),
        merged: merged.clone(),
        plan: Plan::Bind {
            src: cstring(rootfs),
            dirs: Vec::new(),
        },
        rootless,
    };
    // The directories the init makes in its private tmpfs, parents first, `merged` last.
    let ram_dirs = |layers: &[&PathBuf]| -> Vec<CString> {
        let base = [Path::new(RAM_BASE).join("probe"), dir.clone()];
        let layers = layers.iter().map(|p| p.to_path_buf());
        base.into_iter()
            .chain(layers)
            .chain([merged.clone()])
            .map(|d| cstring(&d))
            .collect()
    };
    prepared.plan = match storage {
        Storage::Overlay => Plan::Overlay {
            ram: Some(ram_dirs(&[&upper, &work])),
            // Upper on the private tmpfs: RAM, discarded with the mount namespace.
            opts: CString::new(overlay_opts(rootfs, &upper, &work, rootless, true)?)
                .expect("no NUL"),
        },
        Storage::Tmpfs => Plan::Copy {
            src: rootfs.to_path_buf(),
            dirs: ram_dirs(&[]),
        },
        Storage::Bind => Plan::Bind {
            src: cstring(rootfs),
            dirs: ram_dirs(&[]),
        },
        Storage::OverlayDisk | Storage::OverlayDiskVolatile | Storage::FuseOverlayfs => {
            let mkdir = |p: &Path| {
                std::fs::create_dir(p).map_err(|error| RootfsError::Mkdir {
                    path: p.to_path_buf(),
                    error,
                })
            };
            if let Err(e) = mkdir(&dir) {
                std::fs::create_dir_all(&base).map_err(|error| RootfsError::Mkdir {
                    path: base.clone(),
                    error,
                })?;
                mkdir(&dir).map_err(|_| e)?;
            }
            prepared.dir = Some(dir.clone());
            for d in [&upper, &work, &merged] {
                mkdir(d)?;
            }
            if storage == Storage::FuseOverlayfs {
                // fuse-overlayfs runs as the caller, not in a user namespace, and has no
                // `volatile`: plain options.
                Plan::Fuse {
                    opts: format!(
                        "lowerdir={},upperdir={},workdir={}",
                        rootfs.display(),
                        upper.display(),
                        work.display()
                    ),
                }
            } else {
                // Upper on disk, like overlay2: fsync inside stays real unless asked otherwise.
                let volatile = storage == Storage::OverlayDiskVolatile;
                Plan::Overlay {
                    ram: None,
                    opts: CString::new(overlay_opts(rootfs, &upper, &work, rootless, volatile)?)
                        .expect("no NUL"),
                }
            }
        }
    };
    Ok(prepared)
}

/// Mounts the private tmpfs on /run and makes `dirs` in it.
fn ram_dirs(dirs: &[CString]) -> Result<(), RootfsError> {
    let base = c"/run";
    // The root probe itself runs in may lack it (nested in a container whose image has no /run).
    match nix::unistd::mkdir(base, nix::sys::stat::Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(errno) => {
            return Err(RootfsError::Mount {
                fstype: "tmpfs (mkdir)",
                target: RAM_BASE.into(),
                errno,
            })
        }
    }
    mount(
        Some(c"tmpfs"),
        base,
        Some(c"tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(c"mode=0755"),
    )
    .map_err(|errno| RootfsError::Mount {
        fstype: "tmpfs",
        target: RAM_BASE.into(),
        errno,
    })?;
    for d in dirs {
        nix::unistd::mkdir(
            d.as_c_str(),
            nix::sys::stat::Mode::from_bits_truncate(0o755),
        )
        .map_err(mount_err("tmpfs (mkdir)", d))?;
    }
    Ok(())
}

/// Copies the image tree: directories, regular files and symlinks, with modes, and with
/// owners when `owners` (rootless: the image's owners are not mapped in the user namespace,
/// so the copy belongs to the container's root).
fn copy_tree(src: &Path, dst: &Path, owners: bool) -> Result<(), RootfsError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    fn err(path: &Path) -> impl FnOnce(std::io::Error) -> RootfsError + '_ {
        move |error| RootfsError::Copy {
            path: path.to_path_buf(),
            error,
        }
    }
    for entry in std::fs::read_dir(src).map_err(err(src))? {
        let entry = entry.map_err(err(src))?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        let meta = std::fs::symlink_metadata(&from).map_err(err(&from))?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from).map_err(err(&from))?, &to)
                .map_err(err(&to))?;
        } else if ft.is_dir() {
            std::fs::create_dir(&to).map_err(err(&to))?;
            copy_tree(&from, &to, owners)?;
        } else if ft.is_file() {
            std::fs::copy(&from, &to).map_err(err(&from))?;
        } else {
            continue; // device nodes, fifos, sockets: /dev is made fresh by the mounts phase
        }
        if !ft.is_symlink() {
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
                .map_err(err(&to))?;
        }
        if owners {
            std::os::unix::fs::lchown(&to, Some(meta.uid()), Some(meta.gid())).map_err(err(&to))?;
        }
    }
    Ok(())
}

fn mount_err<'a>(
    fstype: &'static str,
    target: &'a CString,
) -> impl FnOnce(Errno) -> RootfsError + 'a {
    move |errno| RootfsError::Mount {
        fstype,
        target: target.to_string_lossy().into_owned(),
        errno,
    }
}

impl Prepared {
    /// Init side, in the new mount namespace (already made private): mounts the storage on
    /// `merged`.
    pub fn mount(&self) -> Result<(), RootfsError> {
        let m = &self.merged_c;
        match &self.plan {
            Plan::Overlay { ram, opts } => {
                if let Some(dirs) = ram {
                    ram_dirs(dirs)?;
                }
                mount(
                    Some(c"overlay"),
                    m.as_c_str(),
                    Some(c"overlay"),
                    MsFlags::empty(),
                    Some(opts.as_c_str()),
                )
                .map_err(mount_err("overlay", m))
            }
            Plan::Bind { src, dirs } => {
                ram_dirs(dirs)?;
                // Not recursive: the image's own filesystem, not whatever is mounted below it
                // (for `--rootfs /` in a nested container: the outer /proc, /dev, /sys).
                mount(
                    Some(src.as_c_str()),
                    m.as_c_str(),
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(mount_err("bind", m))?;
                // A bind mount ignores MS_RDONLY on creation; read-only takes a remount (mount(2)).
                let ro = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
                mount(None::<&str>, m.as_c_str(), None::<&str>, ro, None::<&str>)
                    .map_err(mount_err("bind (read-only remount)", m))
            }
            Plan::Copy { src, dirs } => {
                ram_dirs(dirs)?;
                mount(
                    Some(m.as_c_str()),
                    m.as_c_str(),
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(mount_err("bind (self)", m))?;
                copy_tree(src, &self.merged, !self.rootless)
            }
            Plan::Fuse { opts } => {
                // fuse-overlayfs daemonizes once the mount is up. Its daemon stays in the
                // container's pid namespace, so it is killed when the container's init exits.
                let out = std::process::Command::new(FUSE_OVERLAYFS)
                    .args(["-o", opts])
                    .arg(&self.merged)
                    .stdin(std::process::Stdio::null())
                    .output();
                let target = self.merged.display().to_string();
                match out {
                    Ok(o) if o.status.success() => Ok(()),
                    Ok(o) => Err(RootfsError::Fuse {
                        target,
                        status: o.status.to_string(),
                        stderr: String::from_utf8_lossy(&o.stderr).trim().to_string(),
                    }),
                    Err(e) => Err(RootfsError::Fuse {
                        target,
                        status: "not started".into(),
                        stderr: e.to_string(),
                    }),
                }
            }
        }
    }

    /// Parent side, after the container is reaped: removes the per-container directory.
    pub fn remove(mut self) -> Result<(), RootfsError> {
        self.remove_dir()
    }

    fn remove_dir(&mut self) -> Result<(), RootfsError> {
        let Some(dir) = self.dir.take() else {
            return Ok(());
        };
        if self.rootless {
            // overlayfs makes work/work with mode 0; without CAP_DAC_OVERRIDE their owner cannot list them, so give the
            // owner access back before removing.
            open_up(&dir.join("work"));
        }
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(RootfsError::Remove {
                path: dir,
                error: e,
            }),
            _ => Ok(()),
        }
    }
}

fn open_up(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).is_err() {
        return;
    }
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            open_up(&e.path());
        }
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if let Err(e) = self.remove_dir() {
            eprintln!("probe: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_names_round_trip() {
        for s in Storage::ALL {
            assert_eq!(s.name().parse::<Storage>().unwrap(), s);
        }
        assert!("zfs"
            .parse::<Storage>()
            .unwrap_err()
            .contains("choose from"));
    }

    #[test]
    fn overlay_options() {
        let o = overlay_opts(
            Path::new("/img"),
            Path::new("/c/upper"),
            Path::new("/c/work"),
            false,
            true,
        )
        .unwrap();
        assert_eq!(
            o,
            "lowerdir=/img,upperdir=/c/upper,workdir=/c/work,volatile"
        );
        let disk = overlay_opts(Path::new("/i"), Path::new("/u"), Path::new("/w"), false, false);
        assert_eq!(disk.unwrap(), "lowerdir=/i,upperdir=/u,workdir=/w");
        let o = overlay_opts(Path::new("/img"), Path::new("/u"), Path::new("/w"), true, true)
            .unwrap();
        assert!(matches!(
            prepare(Storage::Overlay, Path::new("/run"), "probe-y", false, None),
            Err(RootfsError::UnderRun { .. })
        ));
        assert!(o.ends_with(",userxattr"));
        assert!(matches!(
            overlay_opts(Path::new("/a,b"), Path::new("/u"), Path::new("/w"), false, true),
            Err(RootfsError::BadPath { .. })
        ));
    }

    #[test]
    fn missing_rootfs_names_path_and_errno() {
        let e = prepare(
            Storage::Overlay,
            Path::new("/nonexistent-probe-rootfs"),
            "probe-x",
            false,
            None,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            e.starts_with("rootfs: /nonexistent-probe-rootfs") && e.contains("os error 2"),
            "{e}"
        );
    }
}

//! `--volume HOST:CONTAINER[:ro]`: host directories or files bind-mounted into the container,
//! read-write unless `:ro`, like `docker -v`. Mounted by the init after the rootfs and the
//! system mounts, before pivot_root (the host path is only reachable until then). The parent
//! resolves every path first, so the init only issues mkdir and mount.

use std::ffi::CString;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;
use nix::sys::statvfs::{statvfs, FsFlags};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    pub host: PathBuf,
    /// Absolute, without `..`: where it appears inside the container.
    pub container: PathBuf,
    pub read_only: bool,
}

impl FromStr for Volume {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(':').collect();
        let (host, container, read_only) = match parts[..] {
            [h, c] => (h, c, false),
            [h, c, "ro"] => (h, c, true),
            [h, c, "rw"] => (h, c, false),
            _ => {
                return Err(format!(
                    "bad volume '{s}': use HOST:CONTAINER or HOST:CONTAINER:ro"
                ))
            }
        };
        let container = Path::new(container);
        let plain = container
            .components()
            .skip(1)
            .all(|c| matches!(c, Component::Normal(_)));
        if host.is_empty() || !container.is_absolute() || !plain || container == Path::new("/") {
            return Err(format!(
                "bad volume '{s}': HOST must be given and CONTAINER must be an absolute path other than / without '..'"
            ));
        }
        Ok(Volume {
            host: host.into(),
            container: container.to_path_buf(),
            read_only,
        })
    }
}

impl fmt::Display for Volume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ro = if self.read_only { ":ro" } else { "" };
        write!(f, "{}:{}{ro}", self.host.display(), self.container.display())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("mounts: volume {volume}: host path {path}: {error}")]
    Host {
        volume: String,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("mounts: volume: {what} {path}: {errno}")]
    Mount {
        what: &'static str,
        path: String,
        errno: Errno,
    },
}

/// One volume, every path already a C string under the future root.
struct Bind {
    source: CString,
    /// Directories from just below the new root down to the target's parent, made if missing.
    parents: Vec<CString>,
    target: CString,
    /// A file volume needs a file to mount on, a directory volume a directory.
    is_dir: bool,
    /// Flags of the read-only remount, or None for read-write.
    remount: Option<MsFlags>,
}

pub struct Plan(Vec<Bind>);

fn c(p: &Path) -> CString {
    // Paths from argv or the filesystem cannot hold a NUL.
    CString::new(p.as_os_str().as_bytes()).expect("path without NUL")
}

impl Plan {
    /// Parent side: checks each host path and builds the init's paths under `root`.
    pub fn new(volumes: &[Volume], root: &Path) -> Result<Plan, VolumeError> {
        let mut binds = Vec::new();
        for v in volumes {
            let host_err = |error| VolumeError::Host {
                volume: v.to_string(),
                path: v.host.clone(),
                error,
            };
            let host = std::fs::canonicalize(&v.host).map_err(host_err)?;
            let is_dir = std::fs::metadata(&host).map_err(host_err)?.is_dir();
            // A read-only remount must keep the flags the host mount already locks (in a user
            // namespace nosuid/nodev/noexec cannot be cleared: EPERM), as runc does.
            let remount = if v.read_only {
                let st = statvfs(&host).map_err(|e| host_err(e.into()))?;
                let mut fl = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
                for (has, keep) in [
                    (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
                    (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
                    (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
                ] {
                    if st.flags().contains(has) {
                        fl |= keep;
                    }
                }
                Some(fl)
            } else {
                None
            };
            let inside = root.join(v.container.strip_prefix("/").expect("checked absolute"));
            let parents = inside
                .ancestors()
                .skip(1)
                .take_while(|a| *a != root)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .map(c)
                .collect();
            binds.push(Bind {
                source: c(&host),
                parents,
                target: c(&inside),
                is_dir,
                remount,
            });
        }
        Ok(Plan(binds))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Init side, before pivot_root: makes each mount point and bind-mounts the host path.
    pub fn mount(&self) -> Result<(), VolumeError> {
        for b in &self.0 {
            for d in &b.parents {
                mkdir(d).map_err(err("mkdir", d))?;
            }
            if b.is_dir {
                mkdir(&b.target).map_err(err("mkdir", &b.target))?;
            } else {
                // SAFETY: open(2) of a path built by the parent; the fd is closed at once.
                let fd = unsafe {
                    libc::open(
                        b.target.as_ptr(),
                        libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                        0o644,
                    )
                };
                if fd < 0 {
                    return Err(err("create file", &b.target)(Errno::last()));
                }
                // SAFETY: fd was just returned by open.
                unsafe { libc::close(fd) };
            }
            let rbind = MsFlags::MS_BIND | MsFlags::MS_REC;
            mount(
                Some(b.source.as_c_str()),
                b.target.as_c_str(),
                None::<&str>,
                rbind,
                None::<&str>,
            )
            .map_err(err("bind-mount on", &b.target))?;
            if let Some(fl) = b.remount {
                // A bind mount ignores MS_RDONLY on creation: read-only takes a remount.
                mount(None::<&str>, b.target.as_c_str(), None::<&str>, fl, None::<&str>)
                    .map_err(err("remount read-only", &b.target))?;
            }
        }
        Ok(())
    }
}

fn err<'a>(what: &'static str, path: &'a CString) -> impl FnOnce(Errno) -> VolumeError + 'a {
    move |errno| VolumeError::Mount {
        what,
        path: path.to_string_lossy().into_owned(),
        errno,
    }
}

fn mkdir(d: &CString) -> Result<(), Errno> {
    match nix::unistd::mkdir(d.as_c_str(), Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_docker_v() {
        let v: Volume = "/srv/data:/data".parse().unwrap();
        assert_eq!((v.host.as_path(), v.container.as_path(), v.read_only), (Path::new("/srv/data"), Path::new("/data"), false));
        assert!("/a:/b:ro".parse::<Volume>().unwrap().read_only);
        assert!(!"/a:/b:rw".parse::<Volume>().unwrap().read_only);
        for bad in ["/a", "/a:b", "/a:/", "/a:/b/../c", ":/b", "/a:/b:rx", "/a:/b:ro:x"] {
            assert!(bad.parse::<Volume>().is_err(), "{bad}");
        }
    }

    #[test]
    fn plan_resolves_paths_under_the_new_root() {
        let host = std::env::temp_dir();
        let v = Volume {
            host: host.clone(),
            container: "/mnt/a/b".into(),
            read_only: true,
        };
        let p = Plan::new(&[v], Path::new("/r/merged")).unwrap();
        let b = &p.0[0];
        assert_eq!(b.target.to_str().unwrap(), "/r/merged/mnt/a/b");
        let parents: Vec<_> = b.parents.iter().map(|c| c.to_str().unwrap()).collect();
        assert_eq!(parents, ["/r/merged/mnt", "/r/merged/mnt/a"]);
        assert!(b.is_dir && b.remount.is_some_and(|f| f.contains(MsFlags::MS_RDONLY)));
        let missing = Volume {
            host: "/nonexistent-probe-volume".into(),
            container: "/x".into(),
            read_only: false,
        };
        let e = Plan::new(&[missing], Path::new("/r")).err().unwrap().to_string();
        assert!(e.starts_with("mounts: volume /nonexistent-probe-volume:/x") && e.contains("os error 2"), "{e}");
    }
}

//! Where results go: one new folder per run, files written atomically, nothing overwritten.
//!
//! A benchmark that takes minutes must not lose or corrupt the previous run's data when it is
//! interrupted or started twice, so every file appears complete or not at all (temp + fsync +
//! rename) and every name is claimed with an exclusive create (mkdir, O_EXCL, RENAME_NOREPLACE).

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Result};

/// Suffixes tried after the bare name; far more runs per second than any real use.
const MAX_SAME_SECOND_RUNS: u32 = 999;
const LATEST: &str = "latest";

pub struct RunDir {
    base: PathBuf,
    name: String,
    path: PathBuf,
}

impl RunDir {
    /// Creates a new unique run folder `<base>/<UTC YYYYmmdd-HHMMSS>-<label>[-N]` (mkdir, not
    /// create_dir_all on the leaf, so two concurrent runs never share one); base is created if
    /// missing. `label` is reduced to `[A-Za-z0-9._-]` so the name is one shell-safe component.
    /// Errors name the path and the errno and say how to fix.
    pub fn create(base: &Path, label: &str) -> Result<RunDir> {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Self::create_stamped(base, label, &utc_stamp(secs))
    }

    fn create_stamped(base: &Path, label: &str, stamp: &str) -> Result<RunDir> {
        ensure_base(base)?;
        let stem = format!("{stamp}-{}", sanitize_label(label));
        for n in 1..=MAX_SAME_SECOND_RUNS {
            let name = if n == 1 {
                stem.clone()
            } else {
                format!("{stem}-{n}")
            };
            let path = base.join(&name);
            match fs::create_dir(&path) {
                Ok(()) => {
                    // The new entry must survive a crash along with the files later put in it.
                    sync_dir(base)?;
                    return Ok(RunDir {
                        base: base.to_path_buf(),
                        name,
                        path,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => bail!(
                    "cannot create run folder {} ({}): {}",
                    path.display(),
                    errno_text(&e),
                    fix_hint(&e)
                ),
            }
        }
        bail!(
            "cannot create run folder in {}: {stem} and {stem}-2 … -{MAX_SAME_SECOND_RUNS} all exist; \
             remove old runs or pass --results DIR",
            base.display()
        )
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `name` inside the run folder atomically: temp file in the same dir (O_EXCL,
    /// name starting with '.'), write, fsync, rename; refuses if `name` exists already (never
    /// overwrites). Also fsyncs the directory. `name` must be a plain file name not starting
    /// with '.', so it can never collide with a temp file or escape the run folder.
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        if name.is_empty() || name.starts_with('.') || name.contains('/') || name.contains('\0') {
            bail!("invalid result file name {name:?}: must be a plain name not starting with '.'");
        }
        let dest = self.path.join(name);
        // Checked up front too, so a clash fails before a possibly large write; the
        // no-replace rename below is what actually guarantees it under races.
        if fs::symlink_metadata(&dest).is_ok() {
            bail!(
                "{} already exists: refusing to overwrite a result",
                dest.display()
            );
        }
        let (tmp, mut file) = create_temp_file(&self.path, name)?;
        let written = file
            .write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| {
                anyhow!(
                    "cannot write {} ({}): {}",
                    tmp.display(),
                    errno_text(&e),
                    fix_hint(&e)
                )
            });
        drop(file);
        let placed = written.and_then(|()| rename_noreplace(&tmp, &dest));
        if let Err(e) = placed {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        sync_dir(&self.path)?;
        Ok(dest)
    }

    /// Points `<base>/latest` at this run (symlink to a relative path, so the results folder
    /// can be moved or copied whole; replaced atomically via a temp symlink + rename). Refuses
    /// to replace a `latest` that is not a symlink: that is someone's data.
    pub fn mark_latest(&self) -> Result<()> {
        let link = self.base.join(LATEST);
        if let Ok(meta) = fs::symlink_metadata(&link) {
            if !meta.file_type().is_symlink() {
                bail!(
                    "{} exists and is not a symlink: refusing to replace it; move it away to let \
                     probe point it at the newest run",
                    link.display()
                );
            }
        }
        let tmp = loop {
            let tmp = self.base.join(temp_name(LATEST));
            match std::os::unix::fs::symlink(&self.name, &tmp) {
                Ok(()) => break tmp,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => bail!(
                    "cannot create symlink {} ({}): {}",
                    tmp.display(),
                    errno_text(&e),
                    fix_hint(&e)
                ),
            }
        };
        if let Err(e) = fs::rename(&tmp, &link) {
            let _ = fs::remove_file(&tmp);
            bail!(
                "cannot update {} ({}): {}",
                link.display(),
                errno_text(&e),
                fix_hint(&e)
            );
        }
        sync_dir(&self.base)
    }
}

/// Checks that `base` can be written before any measurement starts: creates it if missing,
/// probes writability (create+remove a temp file) — so bad results dirs fail fast and nothing
/// is half-written. A permission check alone would miss read-only mounts, full disks and
/// root-squashed NFS, hence the real write.
pub fn check_writable(base: &Path) -> Result<()> {
    ensure_base(base)?;
    let (tmp, file) = create_temp_file(base, "probe-write-check")?;
    drop(file);
    fs::remove_file(&tmp).map_err(|e| {
        anyhow!(
            "cannot remove probe file {} ({}): {}",
            tmp.display(),
            errno_text(&e),
            fix_hint(&e)
        )
    })
}

fn ensure_base(base: &Path) -> Result<()> {
    // Running as root, a results path that is a symlink (say one planted in a shared dir)
    // would make probe write wherever it points: refuse rather than follow.
    if let Ok(m) = fs::symlink_metadata(base) {
        if m.file_type().is_symlink() {
            let target = fs::read_link(base).map(|t| t.display().to_string()).unwrap_or_default();
            return Err(anyhow!(
                "results dir {} is a symlink (to {target}): probe writes only into real directories; pass the target path itself",
                base.display()
            ));
        }
    }
    fs::create_dir_all(base).map_err(|e| {
        anyhow!(
            "results dir {} not writable ({}): {}",
            base.display(),
            errno_text(&e),
            fix_hint(&e)
        )
    })
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// `.<stem>.<pid>.<n>.tmp`: hidden, so `ls` and globbing readers skip half-written files, and
/// unique per process and call so concurrent writers never pick the same one.
fn temp_name(stem: &str) -> String {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(".{stem}.{}.{n}.tmp", std::process::id())
}

fn create_temp_file(dir: &Path, stem: &str) -> Result<(PathBuf, File)> {
    loop {
        let tmp = dir.join(temp_name(stem));
        // O_EXCL and O_NOFOLLOW: a symlink planted at the temp name must make us fail, not
        // write through it (the results dir may be shared, and probe often runs as root).
        let opened = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp);
        match opened {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => bail!(
                "results dir {} not writable ({}): {}",
                dir.display(),
                errno_text(&e),
                fix_hint(&e)
            ),
        }
    }
}

/// rename(2) would silently replace an existing `to`; RENAME_NOREPLACE makes the check and the
/// move one atomic step. Filesystems without it (EINVAL) get link + unlink, also exclusive.
fn rename_noreplace(from: &Path, to: &Path) -> Result<()> {
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).expect("paths hold no NUL");
    let (cfrom, cto) = (c(from), c(to));
    // SAFETY: both pointers are valid NUL-terminated strings for the duration of the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            cfrom.as_ptr(),
            libc::AT_FDCWD,
            cto.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    let err = match err.raw_os_error() {
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP) => match fs::hard_link(from, to) {
            Ok(()) => {
                return fs::remove_file(from).map_err(|e| {
                    anyhow!(
                        "cannot remove temp file {} ({})",
                        from.display(),
                        errno_text(&e)
                    )
                })
            }
            Err(e) => e,
        },
        _ => err,
    };
    if err.kind() == io::ErrorKind::AlreadyExists {
        bail!(
            "{} already exists: refusing to overwrite a result",
            to.display()
        );
    }
    bail!(
        "cannot create {} ({}): {}",
        to.display(),
        errno_text(&err),
        fix_hint(&err)
    )
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| {
        anyhow!(
            "cannot fsync directory {} ({})",
            dir.display(),
            errno_text(&e)
        )
    })
}

/// "Permission denied, os error 13" — the words for the user, the number for a search engine.
fn errno_text(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            let full = e.to_string();
            let words = full
                .strip_suffix(&format!(" (os error {code})"))
                .unwrap_or(&full);
            format!("{words}, os error {code}")
        }
        None => e.to_string(),
    }
}

fn fix_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => "pass --results DIR or fix its permissions",
        Some(libc::EROFS) => {
            "it is on a read-only filesystem: pass --results DIR on a writable one"
        }
        Some(libc::ENOTDIR | libc::EEXIST) => {
            "part of the path is a file, not a directory: pass --results DIR"
        }
        Some(libc::ENOSPC | libc::EDQUOT) => "free some space or pass --results DIR elsewhere",
        _ => "pass --results DIR",
    }
}

fn sanitize_label(label: &str) -> String {
    let s: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if s.is_empty() {
        "run".to_string()
    } else {
        s
    }
}

/// `YYYYmmdd-HHMMSS` in UTC: sortable, and the same on every host whatever its time zone.
fn utc_stamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = crate::sys::clock::civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unique scratch folder under the system temp dir, removed on drop even if a test fails.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Scratch {
            static N: AtomicU64 = AtomicU64::new(0);
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let dir = std::env::temp_dir().join(format!(
                "probe-results-test-{}-{nanos}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn stamps_are_utc_civil_dates() {
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_stamp(951_782_400), "20000229-000000");
        assert_eq!(utc_stamp(1_709_210_096), "20240229-123456");
        assert_eq!(utc_stamp(4_102_444_799), "20991231-235959");
    }

    #[test]
    fn labels_become_one_safe_component() {
        assert_eq!(sanitize_label("startup"), "startup");
        assert_eq!(sanitize_label("a/b c"), "a-b-c");
        assert_eq!(sanitize_label(""), "run");
    }

    #[test]
    fn run_dirs_in_the_same_second_are_unique() {
        let s = Scratch::new();
        let base = s.0.join("nested/results");
        let a = RunDir::create_stamped(&base, "startup", "20240229-123456").unwrap();
        let b = RunDir::create_stamped(&base, "startup", "20240229-123456").unwrap();
        let c = RunDir::create_stamped(&base, "startup", "20240229-123456").unwrap();
        assert_eq!(a.path(), base.join("20240229-123456-startup"));
        assert_eq!(b.path(), base.join("20240229-123456-startup-2"));
        assert_eq!(c.path(), base.join("20240229-123456-startup-3"));
        let d = RunDir::create(&base, "startup").unwrap();
        let e = RunDir::create(&base, "startup").unwrap();
        assert_ne!(d.path(), e.path());
        assert!(d.path().is_dir() && e.path().is_dir());
    }

    #[test]
    fn write_atomic_writes_and_never_overwrites() {
        let s = Scratch::new();
        let run = RunDir::create(&s.0, "io").unwrap();
        let p = run
            .write_atomic("io.csv", b"runtime,metric,value\n")
            .unwrap();
        assert_eq!(p, run.path().join("io.csv"));
        assert_eq!(fs::read(&p).unwrap(), b"runtime,metric,value\n");

        let err = run
            .write_atomic("io.csv", b"other")
            .unwrap_err()
            .to_string();
        assert!(err.contains("already exists"), "{err}");
        assert_eq!(fs::read(&p).unwrap(), b"runtime,metric,value\n");

        std::os::unix::fs::symlink("/nonexistent", run.path().join("dangling")).unwrap();
        assert!(run.write_atomic("dangling", b"x").is_err());

        for bad in ["", ".hidden", "../escape", "a/b"] {
            assert!(run.write_atomic(bad, b"x").is_err(), "{bad:?} accepted");
        }
        assert_eq!(names(run.path()), ["dangling", "io.csv"]);
    }

    #[test]
    fn no_replace_rename_refuses_an_existing_target() {
        let s = Scratch::new();
        let (from, to) = (s.0.join("from"), s.0.join("to"));
        fs::write(&from, b"new").unwrap();
        fs::write(&to, b"old").unwrap();
        assert!(rename_noreplace(&from, &to).is_err());
        assert_eq!(fs::read(&to).unwrap(), b"old");
        fs::remove_file(&to).unwrap();
        rename_noreplace(&from, &to).unwrap();
        assert_eq!(fs::read(&to).unwrap(), b"new");
        assert!(!from.exists());
    }

    #[test]
    fn latest_points_at_the_newest_run() {
        let s = Scratch::new();
        let first = RunDir::create_stamped(&s.0, "cpu", "20240101-000000").unwrap();
        let second = RunDir::create_stamped(&s.0, "cpu", "20240101-000001").unwrap();
        first.mark_latest().unwrap();
        second.mark_latest().unwrap();
        let link = s.0.join("latest");
        assert_eq!(
            fs::read_link(&link).unwrap(),
            Path::new("20240101-000001-cpu")
        );
        assert_eq!(
            fs::canonicalize(&link).unwrap(),
            fs::canonicalize(second.path()).unwrap()
        );
        assert_eq!(
            names(&s.0),
            ["20240101-000000-cpu", "20240101-000001-cpu", "latest"]
        );
    }

    #[test]
    fn latest_never_replaces_a_real_directory() {
        let s = Scratch::new();
        fs::create_dir(s.0.join("latest")).unwrap();
        let run = RunDir::create(&s.0, "x").unwrap();
        let err = run.mark_latest().unwrap_err().to_string();
        assert!(err.contains("not a symlink"), "{err}");
        assert!(s.0.join("latest").is_dir());
        assert_eq!(names(&s.0).len(), 2);
    }

    #[test]
    fn a_symlinked_results_dir_is_refused() {
        let t = Scratch::new();
        let real = t.0.join("real");
        fs::create_dir(&real).unwrap();
        let link = t.0.join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = check_writable(&link).unwrap_err().to_string();
        assert!(err.contains("is a symlink"), "{err}");
        assert!(RunDir::create(&link, "x").is_err());
        assert_eq!(fs::read_dir(&real).unwrap().count(), 0, "nothing written through the link");
    }

    #[test]
    fn check_writable_creates_base_and_leaves_nothing() {
        let s = Scratch::new();
        let base = s.0.join("a/b");
        check_writable(&base).unwrap();
        assert!(base.is_dir());
        assert!(names(&base).is_empty());
    }

    #[test]
    fn unusable_results_dir_fails_with_path_errno_and_fix() {
        let s = Scratch::new();
        fs::write(s.0.join("file"), b"").unwrap();
        let base = s.0.join("file/sub");
        for err in [
            check_writable(&base).unwrap_err().to_string(),
            RunDir::create(&base, "x").err().unwrap().to_string(),
        ] {
            assert!(err.contains(&*base.to_string_lossy()), "{err}");
            assert!(err.contains("Not a directory, os error 20"), "{err}");
            assert!(err.contains("--results DIR"), "{err}");
        }
    }

    #[test]
    fn read_only_results_dir_fails_with_permission_hint() {
        use caps::{CapSet, Capability::CAP_DAC_OVERRIDE};
        use std::os::unix::fs::PermissionsExt;
        let s = Scratch::new();
        let base = s.0.join("ro");
        fs::create_dir(&base).unwrap();
        fs::set_permissions(&base, fs::Permissions::from_mode(0o555)).unwrap();
        // Root bypasses mode bits through CAP_DAC_OVERRIDE. Capabilities are per thread:
        // this test's thread drops it for the check, so the test means the same as root.
        let had = caps::has_cap(None, CapSet::Effective, CAP_DAC_OVERRIDE).unwrap();
        if had {
            caps::drop(None, CapSet::Effective, CAP_DAC_OVERRIDE).unwrap();
        }
        let err = check_writable(&base).unwrap_err().to_string();
        if had {
            caps::raise(None, CapSet::Effective, CAP_DAC_OVERRIDE).unwrap();
        }
        fs::set_permissions(&base, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(err.contains(&*base.to_string_lossy()), "{err}");
        assert!(err.contains("Permission denied, os error 13"), "{err}");
        assert!(
            err.contains("pass --results DIR or fix its permissions"),
            "{err}"
        );
    }
}

//! `probe image build`: one rootfs from host binaries — busybox-static plus the probe binary
//! and the shared libraries it needs, so probe can act as the in-container worker — kept as a
//! directory for native/OCI runtimes and imported into every engine under one tag. The same
//! tar stream (sorted, mtime 0, owner 0) goes to every engine, so each holds the same bytes.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use serde::Serialize;

use crate::runtimes::cli_engine::{last_line, CliEngine};
use crate::ground::{RuntimeKind, IMAGE_TAG};

/// Label carrying the content digest on engine images, to skip re-imports of the same bytes.
pub const DIGEST_LABEL: &str = "io.github.probe.digest";
/// Bumped when the rootfs layout below changes, so old images are rebuilt.
const LAYOUT_VERSION: &str = "1";
const BUSYBOX: &str = "/bin/busybox";

#[derive(Serialize, Debug)]
pub struct EngineImport {
    pub runtime: RuntimeKind,
    /// "imported", "up to date", or why it was skipped.
    pub outcome: String,
}

#[derive(Serialize, Debug)]
pub struct BuildReport {
    pub digest: String,
    pub rootfs: PathBuf,
    pub rootfs_rebuilt: bool,
    pub engines: Vec<EngineImport>,
}

/// FNV-1a 64: change detection only, not a security boundary.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn update(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= *b as u64;
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Host files that go into the image: (path in image, path on host).
fn sources() -> anyhow::Result<Vec<(PathBuf, PathBuf)>> {
    if !Path::new(BUSYBOX).exists() {
        bail!("{BUSYBOX} not found: install busybox-static (`sudo apt-get install busybox-static`, or scripts/setup-engines.sh)");
    }
    if !shared_libs(Path::new(BUSYBOX))?.is_empty() {
        bail!("{BUSYBOX} is dynamically linked: install busybox-static instead of busybox");
    }
    let exe = std::env::current_exe().context("locating the probe binary")?;
    let mut files = vec![
        (PathBuf::from(BUSYBOX), PathBuf::from(BUSYBOX)),
        (PathBuf::from("/usr/local/bin/probe"), exe.clone()),
    ];
    for lib in shared_libs(&exe)? {
        files.push((lib.clone(), lib));
    }
    Ok(files)
}

/// The shared libraries (and dynamic loader) of an ELF binary, as ldd resolves them.
fn shared_libs(bin: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(bin)
        .output()
        .context("running ldd (package libc-bin)")?;
    Ok(parse_ldd(&String::from_utf8_lossy(&out.stdout)))
}

pub(crate) fn parse_ldd(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, rhs)) => rhs.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

fn digest(files: &[(PathBuf, PathBuf)]) -> anyhow::Result<String> {
    let mut h = Fnv::new();
    h.update(LAYOUT_VERSION.as_bytes());
    for (dst, src) in files {
        h.update(dst.as_os_str().as_encoded_bytes());
        h.update(&fs::read(src).with_context(|| format!("reading {}", src.display()))?);
    }
    Ok(format!("{:016x}", h.0))
}

fn applets() -> anyhow::Result<Vec<String>> {
    let out = Command::new(BUSYBOX).arg("--list").output().context("busybox --list")?;
    Ok(String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect())
}

fn populate(root: &Path, files: &[(PathBuf, PathBuf)]) -> anyhow::Result<()> {
    let mkdir = |rel: &str, mode: u32| -> anyhow::Result<()> {
        let p = root.join(rel);
        fs::DirBuilder::new().recursive(true).mode(mode).create(&p).with_context(|| format!("mkdir {}", p.display()))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(mode))?;
        Ok(())
    };
    for d in ["bin", "usr/local/bin", "etc", "proc", "sys", "dev", "run", "root", "var"] {
        mkdir(d, 0o755)?;
    }
    mkdir("tmp", 0o1777)?;
    mkdir("var/tmp", 0o1777)?;
    for (dst, src) in files {
        let target = root.join(dst.strip_prefix("/")?);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::copy(src, &target).with_context(|| format!("copying {} into the image", src.display()))?;
        fs::set_permissions(&target, fs::Permissions::from_mode(0o755))?;
    }
    for applet in applets()? {
        let link = root.join("bin").join(&applet);
        if applet != "busybox" && !link.exists() {
            symlink("busybox", &link)?;
        }
    }
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")?;
    fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    fs::write(root.join("etc/hostname"), "probe\n")?;
    Ok(())
}

/// Builds the rootfs next to the current one and swaps it in with renames, so a half-built
/// image is never where runtimes look.
fn build_rootfs(dir: &Path, files: &[(PathBuf, PathBuf)], digest: &str) -> anyhow::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o755).create(dir).with_context(|| format!("creating {}", dir.display()))?;
    let staging = dir.join(format!(".rootfs.new-{}", std::process::id()));
    let old = dir.join(format!(".rootfs.old-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir(&staging).with_context(|| format!("creating {}", staging.display()))?;
    let result = populate(&staging, files);
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }
    let rootfs = dir.join("rootfs");
    if rootfs.exists() {
        fs::rename(&rootfs, &old)?;
    }
    fs::rename(&staging, &rootfs)?;
    let _ = fs::remove_dir_all(&old);
    fs::write(dir.join("digest"), digest)?;
    Ok(())
}

fn engine_digest(engine: &CliEngine) -> Option<String> {
    let fmt = format!("{{{{index .Config.Labels \"{DIGEST_LABEL}\"}}}}");
    engine.query(&["image", "inspect", "--format", &fmt, IMAGE_TAG]).ok()
}

/// `tar | ENGINE import` of the rootfs, with the digest as a label.
fn import(engine: &CliEngine, rootfs: &Path, digest: &str) -> anyhow::Result<()> {
    let mut tar = Command::new("tar")
        .args(["--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "-C"])
        .arg(rootfs)
        .args(["-cf", "-", "."])
        .stdout(Stdio::piped())
        .spawn()
        .context("running tar")?;
    let label = format!("LABEL {DIGEST_LABEL}={digest}");
    let out = engine
        .command(["import", "--change", &label, "--change", "CMD [\"/bin/sh\"]", "-", IMAGE_TAG])
        .stdin(tar.stdout.take().expect("piped"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("{} import", engine.kind()))?;
    let tar_status = tar.wait()?;
    if !tar_status.success() {
        bail!("tar of {} failed ({tar_status})", rootfs.display());
    }
    if !out.status.success() {
        bail!("{} import failed: {}", engine.kind(), last_line(&String::from_utf8_lossy(&out.stderr)));
    }
    Ok(())
}

pub fn build(force: bool, mut progress: impl FnMut(&str)) -> anyhow::Result<BuildReport> {
    if !nix::unistd::Uid::effective().is_root() {
        bail!("building the image needs root (it writes {} and imports into the engines): run `sudo probe image build`",
            crate::ground::rootfs_dir().display());
    }
    let files = sources()?;
    let digest = digest(&files)?;
    let rootfs = crate::ground::rootfs_dir();
    let dir = rootfs.parent().expect("rootfs has a parent").to_path_buf();
    let current = fs::read_to_string(dir.join("digest")).unwrap_or_default();
    let rootfs_rebuilt = force || current.trim() != digest || !rootfs.join("bin/busybox").exists();
    if rootfs_rebuilt {
        progress(&format!("building rootfs {}", rootfs.display()));
        build_rootfs(&dir, &files, &digest)?;
    }
    let mut engines = Vec::new();
    for kind in [RuntimeKind::Docker, RuntimeKind::Podman, RuntimeKind::PodmanRootless] {
        let outcome = match CliEngine::locate(kind) {
            Err(e) => format!("skipped: {e}"),
            Ok(engine) => match engine_digest(&engine) {
                Some(d) if d == digest && !force => "up to date".into(),
                _ => {
                    progress(&format!("importing into {kind}"));
                    let previous = engine.query(&["image", "inspect", "--format", "{{.Id}}", IMAGE_TAG]).ok();
                    match import(&engine, &rootfs, &digest) {
                        Ok(()) => {
                            // The old image lost its tag to the new one: remove it rather than
                            // leave an untagged copy per rebuild (kept if a container uses it).
                            if let Some(old) = previous {
                                let _ = engine.query(&["rmi", &old]);
                            }
                            "imported".into()
                        }
                        Err(e) => format!("failed: {e:#}"),
                    }
                }
            },
        };
        engines.push(EngineImport { runtime: kind, outcome });
    }
    Ok(BuildReport {
        digest,
        rootfs,
        rootfs_rebuilt,
        engines,
    })
}

/// Writes to stderr so stdout stays clean for --json.
pub fn log(msg: &str) {
    let _ = writeln!(std::io::stderr(), "probe image: {msg}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_parses() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        assert_eq!(
            parse_ldd(text),
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
        assert!(parse_ldd("\tnot a dynamic executable\n").is_empty());
    }

    #[test]
    fn fnv_known_value() {
        let mut h = Fnv::new();
        h.update(b"a");
        assert_eq!(h.0, 0xaf63_dc4c_8601_ec8c);
    }
}

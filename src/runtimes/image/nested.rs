//! `probe image build --nested`: probe-nested:latest, a Debian rootfs holding Docker Engine and
//! Podman from the distribution's packages, for the nesting experiments (5 and 9).
//!
//! No registry is reachable, so the image is made the way a distribution would make it:
//! `debootstrap --variant=minbase` from the host's own apt mirror, `apt-get install` of the
//! engines inside a chroot, the settings this kind of host needs baked in as files, then
//! `tar | docker import` and `tar | podman import` with a digest label. The digest covers
//! every input (suite, mirror, package list, config files), so an unchanged rebuild only asks
//! each engine for its label. The suite is the host's own, so the host's probe binary (bind
//! mounted in at run time) finds the same C library inside.
//!
//! The test image and the probe binary are not baked in: they change with every build of
//! probe, and baking them would turn each recompile into a rebuild and a re-import of
//! several hundred megabytes. The experiment mounts them read-only instead.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde::Serialize;

use crate::runtimes::image::build::{EngineImport, DIGEST_LABEL};
use crate::runtimes::cli_engine::{last_line, which, CliEngine};
use crate::ground::RuntimeKind;

pub const NESTED_TAG: &str = "probe-nested:latest";
/// Bumped when the build steps below change in a way the spec does not capture.
const LAYOUT_VERSION: &str = "1";
/// The engines and what they need at run time; --no-install-recommends keeps the rest out.
const PACKAGES: &[&str] = &[
    "docker.io",
    "containerd",
    "runc",
    "podman",
    "conmon",
    "catatonit",
    "golang-github-containers-common",
    "containernetworking-plugins",
    "fuse-overlayfs",
    "iptables",
    "uidmap",
    "tar",
];
/// Where the inner engines keep images and containers. Declared as volumes, as the upstream
/// docker:dind and quay.io/podman/stable images do: overlayfs cannot use an overlayfs as its
/// upper layer, so the inner storage must live on the host's filesystem, in an anonymous
/// volume that `run --rm` removes with the container.
pub const VOLUMES: &[&str] = &["/var/lib/docker", "/var/lib/containers"];
/// Mount points the experiment binds the host's probe binary and test image onto.
pub const PROBE_IN_IMAGE: &str = "/usr/local/bin/probe";
pub const TEST_ROOTFS_IN_IMAGE: &str = "/opt/probe/test-rootfs";

#[derive(Serialize, Debug)]
pub struct NestedBuildReport {
    pub tag: &'static str,
    pub digest: String,
    pub rootfs: PathBuf,
    pub rootfs_rebuilt: bool,
    pub rootfs_seconds: f64,
    pub engines: Vec<EngineImport>,
}

/// Everything the image is made from; its digest decides whether anything is rebuilt.
#[derive(Serialize, Debug)]
struct Spec {
    layout: &'static str,
    suite: String,
    mirror: String,
    packages: &'static [&'static str],
    /// (path in the image, contents).
    configs: Vec<(String, String)>,
}

pub fn nested_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("PROBE_NESTED_DIR").unwrap_or_else(|| "/var/lib/probe/nested".into()))
}

impl Spec {
    fn detect() -> anyhow::Result<Spec> {
        let suite = host_codename()?;
        let mirror = match std::env::var("PROBE_DEBIAN_MIRROR") {
            Ok(m) if !m.is_empty() => m,
            _ => apt_mirror(&suite)?,
        };
        Ok(Spec {
            layout: LAYOUT_VERSION,
            suite,
            mirror,
            packages: PACKAGES,
            configs: configs(),
        })
    }

    /// sha256 of the spec as JSON, by coreutils' sha256sum: a real content hash, and
    /// the spec is small enough that one process spawn is the whole cost.
    fn digest(&self) -> anyhow::Result<String> {
        let json = serde_json::to_vec(self)?;
        let mut child = Command::new("sha256sum")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("running sha256sum (coreutils)")?;
        child.stdin.take().expect("piped").write_all(&json)?;
        let out = child.wait_with_output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let hex = text.split_whitespace().next().unwrap_or_default();
        anyhow::ensure!(out.status.success() && hex.len() == 64, "sha256sum failed: {text}");
        Ok(hex[..16].to_string())
    }
}

fn debootstrap_missing(spec: &Spec) -> Option<String> {
    which("debootstrap").is_none().then(|| {
        format!(
            "debootstrap is not installed: `apt-get install debootstrap` (the build then downloads Debian {}'s packages from {})",
            spec.suite, spec.mirror
        )
    })
}

/// Why `build` could not even start on this host, in one line with the fix; None when it can
/// (the mirror's reachability is only known by trying).
pub fn cannot_build() -> Option<String> {
    match Spec::detect() {
        Err(e) => Some(format!("{e:#}")),
        Ok(spec) => debootstrap_missing(&spec),
    }
}

/// The host's Debian codename (VERSION_CODENAME in /etc/os-release).
fn host_codename() -> anyhow::Result<String> {
    let text = fs::read_to_string("/etc/os-release").context("reading /etc/os-release")?;
    text.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
        .context("/etc/os-release has no VERSION_CODENAME: the nested image needs a Debian host (or set PROBE_DEBIAN_MIRROR and build on Debian)")
}

/// The mirror the host's apt uses for `suite`: the only place packages may come from.
fn apt_mirror(suite: &str) -> anyhow::Result<String> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        more.sort();
        files.extend(more);
    }
    files
        .iter()
        .filter_map(|f| fs::read_to_string(f).ok())
        .find_map(|text| mirror_for_suite(&text, suite))
        .with_context(|| format!("no apt source for suite {suite} in /etc/apt/sources.list*: set PROBE_DEBIAN_MIRROR"))
}

/// First URI serving `suite`, from either the one-line (`deb URI SUITE ...`) or the deb822
/// (`URIs:` / `Suites:` stanzas) format.
fn mirror_for_suite(text: &str, suite: &str) -> Option<String> {
    for line in text.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("deb ") else { continue };
        // Options sit in brackets between `deb` and the URI: `[arch=amd64 signed-by=...]`.
        let rest = match rest.trim_start().strip_prefix('[') {
            Some(opts) => opts.split_once(']').map(|(_, r)| r).unwrap_or(""),
            None => rest,
        };
        let mut w = rest.split_whitespace();
        if let (Some(uri), Some(s)) = (w.next(), w.next()) {
            if s == suite {
                return Some(uri.to_string());
            }
        }
    }
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza.lines().find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
        };
        let is_deb = field("Types:").is_some_and(|t| t.split_whitespace().any(|t| t == "deb"));
        let serves = field("Suites:").is_some_and(|s| s.split_whitespace().any(|s| s == suite));
        if is_deb && serves {
            if let Some(uri) = field("URIs:").and_then(|u| u.split_whitespace().next().map(str::to_string)) {
                return Some(uri);
            }
        }
    }
    None
}

/// The rlimits the inner engines may ask for: what this process may have (the outer engines
/// were configured the same way by setup-engines.sh), capped as that script caps them.
fn ulimits() -> (u64, u64) {
    use nix::sys::resource::{getrlimit, Resource};
    let hard = |r| getrlimit(r).map(|(_, h)| h).unwrap_or(u64::MAX);
    (hard(Resource::RLIMIT_NOFILE).min(1_048_576), hard(Resource::RLIMIT_NPROC).min(32_768))
}

/// The settings the inner engines need on this kind of host, as files in the image.
fn configs() -> Vec<(String, String)> {
    let (nofile, nproc) = ulimits();
    let daemon = serde_json::json!({
        // No network for any inner container: no bridge, no private address, no firewall rules.
        "bridge": "none",
        "iptables": false,
        "ip6tables": false,
        // Without CAP_SYS_RESOURCE nobody can raise a hard rlimit, and dockerd asks for more.
        "default-ulimits": {
            "nofile": {"Name": "nofile", "Hard": nofile, "Soft": nofile},
            "nproc": {"Name": "nproc", "Hard": nproc, "Soft": nproc},
        },
    });
    // runc: crun refuses v1/hybrid cgroups. cgroupfs and a file event log: no systemd inside.
    let containers = format!(
        "[containers]\ndefault_ulimits = [\"nofile={nofile}:{nofile}\", \"nproc={nproc}:{nproc}\"]\n\n\
         [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n"
    );
    // As quay.io/podman/stable (the chapter's image): overlay through fuse-overlayfs, which is
    // what makes `--device /dev/fuse` matter.
    let storage = "[storage]\ndriver = \"overlay\"\nrunroot = \"/run/containers/storage\"\n\
                   graphroot = \"/var/lib/containers/storage\"\n\n\
                   [storage.options.overlay]\nmount_program = \"/usr/bin/fuse-overlayfs\"\n";
    vec![
        ("etc/docker/daemon.json".into(), format!("{}\n", serde_json::to_string_pretty(&daemon).expect("json"))),
        ("etc/containers/containers.conf".into(), containers),
        ("etc/containers/storage.conf".into(), storage.into()),
    ]
}

/// Detaches every mount at or below `root`, deepest first. Must run before any removal of a
/// chroot: debootstrap and apt leave /proc, /sys or bind mounts there on failure, and
/// deleting through a bind mount deletes the host's files.
fn unmount_under(root: &Path) -> anyhow::Result<()> {
    let mounts = crate::sys::mountinfo::read(Path::new("/proc/self/mountinfo"))
        .context("reading /proc/self/mountinfo")?;
    for p in &points_under(mounts, root) {
        umount2(p.as_str(), MntFlags::MNT_DETACH).with_context(|| format!("unmounting {p}"))?;
    }
    Ok(())
}

/// The mount points at or below `root`, deepest first; a sibling sharing the prefix
/// (`root-old`) is not below it.
fn points_under(mounts: Vec<crate::sys::mountinfo::Mount>, root: &Path) -> Vec<String> {
    let prefix = root.to_string_lossy().to_string();
    let mut points: Vec<String> = mounts
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| *p == prefix || p.starts_with(&format!("{prefix}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    points
}

/// Removes a half-built tree safely: unmount first, and refuse if anything is still mounted.
fn remove_tree(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    unmount_under(dir)?;
    fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))
}

/// Runs a build step with its output appended to the build log; on failure the error names
/// the step, the log, and the log's last line.
fn step(log: &Path, what: &str, cmd: &mut Command) -> anyhow::Result<()> {
    let file = fs::OpenOptions::new().create(true).append(true).open(log)?;
    writeln!(&file, "==== {what}")?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .status()
        .with_context(|| format!("{what}: could not start {:?}", cmd.get_program()))?;
    if !status.success() {
        let tail = last_line(&fs::read_to_string(log).unwrap_or_default());
        bail!("{what} failed ({status}): {tail} (full log: {})", log.display());
    }
    Ok(())
}

/// The engines' installation inside the chroot, with /proc mounted (maintainer scripts read
/// it) and the package cache bound in so a rebuild downloads nothing. Mounts are undone
/// whatever happens.
fn install_packages(root: &Path, cache: &Path, log: &Path) -> anyhow::Result<()> {
    let policy = root.join("usr/sbin/policy-rc.d");
    // Maintainer scripts must not start dockerd/containerd in the chroot.
    fs::write(&policy, "#!/bin/sh\nexit 101\n")?;
    fs::set_permissions(&policy, fs::Permissions::from_mode(0o755))?;
    fs::copy("/etc/resolv.conf", root.join("etc/resolv.conf")).context("copying /etc/resolv.conf into the chroot")?;
    let archives = root.join("var/cache/apt/archives");
    fs::create_dir_all(&archives)?;
    let result = (|| -> anyhow::Result<()> {
        mount(Some("proc"), &root.join("proc"), Some("proc"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC, None::<&str>)
            .context("mounting /proc in the chroot")?;
        mount(Some(cache), &archives, None::<&str>, MsFlags::MS_BIND, None::<&str>).context("binding the package cache into the chroot")?;
        let apt = |args: &[&str]| {
            let mut c = Command::new("chroot");
            c.arg(root)
                .args(["apt-get", "-y", "-q", "-o", "APT::Sandbox::User=root"])
                .args(args)
                .env_clear()
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .env("LC_ALL", "C");
            c
        };
        step(log, "apt-get update (in the chroot)", &mut apt(&["update"]))?;
        let mut install = apt(&["install", "--no-install-recommends"]);
        install.args(PACKAGES);
        step(log, "apt-get install of the engines (in the chroot)", &mut install)
    })();
    let unmounted = unmount_under(&root.join("proc")).and_then(|()| unmount_under(&archives));
    result?;
    unmounted?;
    fs::remove_file(&policy)?;
    // Lists and the resolver are the build host's business, not the image's.
    let _ = fs::remove_file(root.join("etc/resolv.conf"));
    let lists = root.join("var/lib/apt/lists");
    for e in fs::read_dir(&lists)?.flatten() {
        if e.file_type().map(|t| t.is_file()).unwrap_or(false) {
            fs::remove_file(e.path())?;
        }
    }
    Ok(())
}

fn write_configs(root: &Path, spec: &Spec) -> anyhow::Result<()> {
    for (rel, text) in &spec.configs {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().expect("config paths have a parent"))?;
        fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
    }
    for dir in VOLUMES.iter().chain([&TEST_ROOTFS_IN_IMAGE]) {
        fs::create_dir_all(root.join(dir.trim_start_matches('/')))?;
    }
    Ok(())
}

/// debootstrap + apt into a staging tree, swapped in by rename so engines never import a
/// half-built tree.
fn build_rootfs(dir: &Path, spec: &Spec, digest: &str, progress: &mut dyn FnMut(&str)) -> anyhow::Result<()> {
    // Checked before anything is made: without it the build cannot start, and the fix is one command.
    if let Some(why) = debootstrap_missing(spec) {
        bail!("building {NESTED_TAG}: {why}");
    }
    let cache = dir.join("cache");
    let (deb_cache, apt_cache) = (cache.join("debootstrap"), cache.join("apt"));
    for d in [&deb_cache, &apt_cache] {
        fs::DirBuilder::new().recursive(true).mode(0o755).create(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let log = dir.join("build.log");
    let _ = fs::remove_file(&log);
    let staging = dir.join(format!(".rootfs.new-{}", std::process::id()));
    remove_tree(&staging)?;
    let result = (|| -> anyhow::Result<()> {
        progress(&format!("debootstrap --variant=minbase {} from {} (log: {})", spec.suite, spec.mirror, log.display()));
        step(
            &log,
            "debootstrap",
            Command::new("debootstrap")
                .arg("--variant=minbase")
                .arg(format!("--cache-dir={}", deb_cache.display()))
                .arg(&spec.suite)
                .arg(&staging)
                .arg(&spec.mirror),
        )?;
        progress(&format!("apt-get install {}", PACKAGES.join(" ")));
        install_packages(&staging, &apt_cache, &log)?;
        write_configs(&staging, spec)
    })();
    if let Err(e) = result {
        remove_tree(&staging).context("cleaning up the failed build")?;
        return Err(e);
    }
    let rootfs = dir.join("rootfs");
    let old = dir.join(format!(".rootfs.old-{}", std::process::id()));
    if rootfs.exists() {
        fs::rename(&rootfs, &old)?;
    }
    fs::rename(&staging, &rootfs)?;
    remove_tree(&old)?;
    fs::write(dir.join("digest"), digest)?;
    Ok(())
}

fn image_field(engine: &CliEngine, format: &str) -> Option<String> {
    engine.query(&["image", "inspect", "--format", format, NESTED_TAG]).ok()
}

/// `tar | ENGINE import` with the digest label, the volumes and a PATH; the image it replaces
/// is removed so no dangling copy stays behind.
fn import(engine: &CliEngine, rootfs: &Path, digest: &str) -> anyhow::Result<()> {
    let previous = image_field(engine, "{{.Id}}");
    let mut tar = Command::new("tar")
        .args(["--numeric-owner", "--xattrs", "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*", "-C"])
        .arg(rootfs)
        .args(["-cf", "-", "."])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running tar")?;
    let volumes = format!("VOLUME {}", serde_json::to_string(VOLUMES)?);
    let label = format!("LABEL {DIGEST_LABEL}={digest}");
    let out = engine
        .command([
            "import",
            "--change",
            &label,
            "--change",
            &volumes,
            "--change",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--change",
            "CMD [\"/bin/bash\"]",
            "-",
            NESTED_TAG,
        ])
        .stdin(tar.stdout.take().expect("piped"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("{} import", engine.kind()))?;
    let tar_out = tar.wait_with_output()?;
    if !tar_out.status.success() {
        bail!("tar of {} failed: {}", rootfs.display(), last_line(&String::from_utf8_lossy(&tar_out.stderr)));
    }
    if !out.status.success() {
        bail!("{} import failed: {}", engine.kind(), last_line(&String::from_utf8_lossy(&out.stderr)));
    }
    if let (Some(old), Some(new)) = (previous, image_field(engine, "{{.Id}}")) {
        if old != new {
            engine.query(&["rmi", &old]).map_err(|e| anyhow::anyhow!("removing the replaced image {old}: {e}"))?;
        }
    }
    Ok(())
}

pub fn build(force: bool, mut progress: impl FnMut(&str)) -> anyhow::Result<NestedBuildReport> {
    if !nix::unistd::Uid::effective().is_root() {
        bail!("building the nested image needs root (debootstrap, chroot, import): run `sudo probe image build --nested`");
    }
    let spec = Spec::detect()?;
    let digest = spec.digest()?;
    let dir = nested_dir();
    let rootfs = dir.join("rootfs");
    let current = fs::read_to_string(dir.join("digest")).unwrap_or_default();
    let rootfs_rebuilt = force || current.trim() != digest || !rootfs.join("usr/sbin/dockerd").exists();
    let started = Instant::now();
    if rootfs_rebuilt {
        build_rootfs(&dir, &spec, &digest, &mut progress)?;
    }
    let rootfs_seconds = started.elapsed().as_secs_f64();
    let label_format = format!("{{{{index .Config.Labels \"{DIGEST_LABEL}\"}}}}");
    let mut engines = Vec::new();
    // Root podman only: every podman approach of the chapter runs as root.
    for kind in [RuntimeKind::Docker, RuntimeKind::Podman] {
        let outcome = match CliEngine::locate(kind) {
            Err(e) => format!("skipped: {e}"),
            Ok(engine) => match image_field(&engine, &label_format) {
                Some(d) if d == digest && !force => "up to date".into(),
                _ => {
                    let t = Instant::now();
                    progress(&format!("importing {NESTED_TAG} into {kind}"));
                    match import(&engine, &rootfs, &digest) {
                        Ok(()) => format!("imported in {:.1}s", t.elapsed().as_secs_f64()),
                        Err(e) => format!("failed: {e:#}"),
                    }
                }
            },
        };
        engines.push(EngineImport { runtime: kind, outcome });
    }
    Ok(NestedBuildReport {
        tag: NESTED_TAG,
        digest,
        rootfs,
        rootfs_rebuilt,
        rootfs_seconds,
        engines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_mirror_in_both_source_formats() {
        let deb822 = "Types: deb\n# comment\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n\
                      Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n";
        assert_eq!(mirror_for_suite(deb822, "bookworm").as_deref(), Some("http://deb.debian.org/debian"));
        assert_eq!(mirror_for_suite(deb822, "trixie"), None);
        let oneline = "deb https://packages.example.com/apt cloud-sdk-bookworm main\n\
                       deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main\n";
        assert_eq!(mirror_for_suite(oneline, "bookworm").as_deref(), Some("http://mirror.example/debian"));
    }

    #[test]
    fn mounts_under_a_chroot_deepest_first_with_escapes_decoded() {
        let text = "1 0 8:1 / /var/lib/b rw - ext4 /dev/vda rw\n\
                    2 1 0:5 / /var/lib/b/proc rw - proc proc rw\n\
                    3 1 0:6 / /var/lib/b/my\\040dir/sys rw - sysfs sysfs rw\n\
                    4 1 0:7 / /var/lib/b-old/proc rw - proc proc rw\n";
        let points = points_under(crate::sys::mountinfo::parse(text), Path::new("/var/lib/b"));
        assert_eq!(points, ["/var/lib/b/my dir/sys", "/var/lib/b/proc", "/var/lib/b"]);
    }

    #[test]
    fn configs_carry_the_host_quirks() {
        let c = configs();
        let daemon = &c.iter().find(|(p, _)| p == "etc/docker/daemon.json").unwrap().1;
        let v: serde_json::Value = serde_json::from_str(daemon).unwrap();
        assert_eq!(v["bridge"], "none");
        assert_eq!(v["iptables"], false);
        let conf = &c.iter().find(|(p, _)| p == "etc/containers/containers.conf").unwrap().1;
        assert!(conf.contains("runtime = \"runc\"") && conf.contains("default_ulimits"));
    }
}

//! runc and crun as runtimes of their own: an OCI bundle made from the test image's rootfs,
//! run with `runc run`, so tables read layer by layer: bare → native → OCI runtime → engine.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context;

use crate::runtimes::cli_engine::{container_name, last_line, which, StderrSink};
use crate::runtimes::EngineError;
use crate::measure::Runtime;
use crate::ground::RuntimeKind;
use crate::measure::Sample;

pub struct OciRuntime {
    kind: RuntimeKind,
    program: PathBuf,
    bundle: BundleDir,
    stderr: StderrSink,
}

/// The bundle directory (config.json only: root.path points at the image rootfs, read-only),
/// removed when the runtime is dropped.
struct BundleDir(PathBuf);

impl Drop for BundleDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl OciRuntime {
    pub fn open(kind: RuntimeKind) -> Result<Self, EngineError> {
        let unusable = |what: String, fix: &str| EngineError::Unusable {
            runtime: kind,
            what,
            fix: fix.into(),
        };
        let program = which(kind.name()).ok_or_else(|| {
            unusable(
                format!("`{kind}` is not installed"),
                "install it with `sudo bash scripts/setup-engines.sh`, or leave it out of --runtimes",
            )
        })?;
        if !nix::unistd::Uid::effective().is_root() {
            return Err(unusable("needs root".into(), "run probe with sudo"));
        }
        // crun 1.x refuses v1 and hybrid hosts ("cgroups in hybrid mode not supported"): say
        // so up front rather than fail on the first rep.
        if kind == RuntimeKind::Crun {
            let layout = crate::sys::cgroup::detect().map(|l| l.kind);
            if !matches!(layout, Ok(crate::sys::cgroup::LayoutKind::V2)) {
                let what = match layout {
                    Ok(k) => format!("{k:?}").to_lowercase(),
                    Err(e) => e.to_string(),
                };
                return Err(unusable(
                    format!("crun needs a cgroup v2-only host; this one is {what}"),
                    "use runc here (podman's runtime is set to runc for the same reason)",
                ));
            }
        }
        let rootfs = crate::ground::rootfs_dir();
        if !rootfs.join("bin/busybox").exists() {
            return Err(unusable(
                format!("test image rootfs missing at {}", rootfs.display()),
                "build it with `sudo probe image build`",
            ));
        }
        let dir = PathBuf::from(format!("/run/probe/{}", container_name(&format!("{kind}-bundle"))));
        std::fs::create_dir_all(&dir)
            .map_err(|e| unusable(format!("cannot create bundle dir {}: {e}", dir.display()), "check that /run is writable"))?;
        let bundle = BundleDir(dir);
        let config = bundle_config(&program, &bundle.0, &rootfs)
            .map_err(|e| unusable(format!("cannot write OCI bundle: {e:#}"), "check the runtime installation"))?;
        std::fs::write(bundle.0.join("config.json"), config)
            .map_err(|e| unusable(format!("cannot write config.json: {e}"), "check that /run is writable"))?;
        let stderr = StderrSink::new().map_err(|e| unusable(format!("memfd_create: {e}"), "needs a kernel with memfd (3.17+)"))?;
        Ok(OciRuntime {
            kind,
            program,
            bundle,
            stderr,
        })
    }
}

/// `runc spec` writes the runtime's own default config (namespaces pid, net, ipc, uts, mnt;
/// a read-only root); probe only points it at the image and blanks args, so the bundle is
/// what the runtime's authors consider a default container.
fn bundle_config(program: &PathBuf, dir: &PathBuf, rootfs: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let out = Command::new(program)
        .arg("spec")
        .current_dir(dir)
        .output()
        .with_context(|| format!("{} spec", program.display()))?;
    anyhow::ensure!(out.status.success(), "{} spec: {}", program.display(), last_line(&String::from_utf8_lossy(&out.stderr)));
    let path = dir.join("config.json");
    let mut spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    std::fs::remove_file(&path)?;
    spec["root"]["path"] = rootfs.display().to_string().into();
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!([]);
    Ok(serde_json::to_vec_pretty(&spec)?)
}

impl Runtime for OciRuntime {
    fn kind(&self) -> RuntimeKind {
        self.kind
    }

    fn run(&mut self, argv: &[String]) -> anyhow::Result<Sample> {
        // The command lives in config.json: rewrite args (outside the timed region).
        let path = self.bundle.0.join("config.json");
        let mut spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
        spec["process"]["args"] = serde_json::json!(argv);
        std::fs::write(&path, serde_json::to_vec_pretty(&spec)?)?;
        let mut cmd = Command::new(&self.program);
        cmd.arg("run")
            .arg("--bundle")
            .arg(&self.bundle.0)
            .arg(container_name(self.kind.name()));
        Ok(self.stderr.time_rep(self.kind, &mut cmd)?)
    }
}

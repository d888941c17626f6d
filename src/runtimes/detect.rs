//! Which runtimes this host can run, with versions and storage drivers, for `probe doctor`
//! and for the host metadata every run records.

use serde::{Deserialize, Serialize};

use crate::runtimes::cli_engine::{which, CliEngine};
use crate::runtimes::EngineError;
use crate::ground::RuntimeKind;

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct RuntimeStatus {
    pub runtime: RuntimeKind,
    pub usable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    /// Whether probe-test:latest is present for this runtime (None: not applicable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl RuntimeStatus {
    fn new(runtime: RuntimeKind) -> Self {
        RuntimeStatus {
            runtime,
            usable: false,
            version: None,
            storage: None,
            image: None,
            problem: None,
            fix: None,
        }
    }

    fn unusable(mut self, err: EngineError) -> Self {
        self.usable = false;
        if let EngineError::Unusable { what, fix, .. } = err {
            self.problem = Some(what);
            self.fix = Some(fix);
        } else {
            self.problem = Some(err.to_string());
        }
        self
    }
}

fn first_line(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(which(program)?).args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(|l| l.trim().to_string())
}

pub fn status(kind: RuntimeKind) -> RuntimeStatus {
    let mut st = RuntimeStatus::new(kind);
    match kind {
        RuntimeKind::Bare => {
            st.usable = true;
            st.storage = Some("host filesystem".into());
        }
        RuntimeKind::Native => {
            st.version = Some(env!("CARGO_PKG_VERSION").into());
            st.storage = Some("overlay (kernel)".into());
            st.image = Some(crate::ground::rootfs_dir().join("bin/busybox").exists());
            match crate::runtimes::open(kind) {
                Ok(_) => st.usable = true,
                Err(e) => return st.unusable(e),
            }
        }
        RuntimeKind::Runc | RuntimeKind::Crun => {
            st.version = first_line(kind.name(), &["--version"]);
            st.image = Some(crate::ground::rootfs_dir().join("bin/busybox").exists());
            st.storage = Some("image rootfs, read-only".into());
            if let Err(e) = crate::runtimes::oci::OciRuntime::open(kind) {
                return st.unusable(e);
            }
            st.usable = true;
        }
        RuntimeKind::Docker | RuntimeKind::Podman | RuntimeKind::PodmanRootless => {
            let engine = match CliEngine::locate(kind) {
                Ok(e) => e,
                Err(e) => return st.unusable(e),
            };
            let (version_q, storage_q) = if kind == RuntimeKind::Docker {
                ("{{.Server.Version}}", "{{.Driver}}")
            } else {
                ("{{.Version}}", "{{.Store.GraphDriverName}}")
            };
            st.version = engine.query(&["version", "--format", version_q]).ok();
            match engine.query(&["info", "--format", storage_q]) {
                Ok(s) => st.storage = Some(s),
                Err(e) => {
                    return st.unusable(EngineError::Unusable {
                        runtime: kind,
                        what: format!("engine does not answer: {e}"),
                        fix: if kind == RuntimeKind::Docker {
                            "start dockerd (`sudo bash scripts/setup-engines.sh` starts it)".into()
                        } else {
                            "run `sudo bash scripts/setup-engines.sh`".into()
                        },
                    })
                }
            }
            let has = engine.has_image();
            st.image = Some(has);
            if has {
                st.usable = true;
            } else {
                st.problem = Some(format!("test image {} missing", crate::ground::IMAGE_TAG));
                st.fix = Some("run `sudo probe image build`".into());
            }
        }
    }
    st
}

pub fn status_all() -> Vec<RuntimeStatus> {
    RuntimeKind::ALL.into_iter().map(status).collect()
}

//! `native`: probe's own engine-less container (src/runtime), every phase timed in-process.

use anyhow::Context;

use crate::runtimes::EngineError;
use crate::measure::Runtime;
use crate::ground::RuntimeKind;
use crate::sys::clock::monotonic_ns;
use crate::measure::Sample;
use crate::native::{self, ContainerSpec, StdioMode};

pub struct Native {
    base: ContainerSpec,
}

impl Native {
    /// Checks that a container can be made here: the test image rootfs exists, and either we
    /// are root or unprivileged user namespaces are allowed (rootless mode).
    pub fn open() -> Result<Self, EngineError> {
        let unusable = |what: String, fix: &str| EngineError::Unusable {
            runtime: RuntimeKind::Native,
            what,
            fix: fix.into(),
        };
        let mut base = ContainerSpec::default_for(Vec::new());
        if !base.rootfs.join("bin").is_dir() {
            return Err(unusable(
                format!("test image rootfs missing at {}", base.rootfs.display()),
                "run `sudo probe image build`",
            ));
        }
        if base.rootless && !native::rootless_possible() {
            return Err(unusable(
                "not root, and unprivileged user namespaces are disabled on this host".into(),
                "run as root, or allow them (sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces>0)",
            ));
        }
        base.stdio = StdioMode::Null;
        base.timing = true;
        Ok(Native { base })
    }
}

impl Runtime for Native {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Native
    }

    fn run(&mut self, argv: &[String]) -> anyhow::Result<Sample> {
        let spec = ContainerSpec {
            argv: argv.to_vec(),
            ..self.base.clone()
        };
        let start_mono_ns = monotonic_ns();
        let outcome = native::run(&spec).context("native run")?;
        let wall_ns = monotonic_ns() - start_mono_ns;
        if outcome.exit_code != 0 {
            return Err(EngineError::RepFailed {
                runtime: RuntimeKind::Native,
                code: outcome.exit_code,
                stderr: format!(
                    "`{}` failed in the native container (its output goes to /dev/null)",
                    argv.join(" ")
                ),
            })
            .context("native run");
        }
        Ok(Sample {
            start_mono_ns,
            pid: std::process::id(),
            wall_ns,
            user_ns: outcome.user_ns,
            sys_ns: outcome.sys_ns,
            exit_code: 0,
            phases: outcome.phases,
        })
    }
}

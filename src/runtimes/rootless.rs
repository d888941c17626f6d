//! The unprivileged user that `podman-rootless` runs as. setup-engines.sh records it in
//! /etc/probe/rootless-user; when probe itself runs unprivileged, that user is simply us.

use std::os::unix::fs::{chown, DirBuilderExt};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use nix::unistd::{Uid, User};

pub const RECORD_FILE: &str = "/etc/probe/rootless-user";
pub const DEFAULT_USER: &str = "probe-rootless";

#[derive(Clone, Debug)]
pub struct RootlessUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

impl RootlessUser {
    /// PROBE_ROOTLESS_USER, then the recorded user, then $SUDO_USER, then probe-rootless.
    pub fn find() -> anyhow::Result<Self> {
        if !Uid::effective().is_root() {
            let me = User::from_uid(Uid::effective())?
                .ok_or_else(|| anyhow::anyhow!("current uid has no passwd entry"))?;
            return Ok(Self::from_user(me));
        }
        let candidates = [
            std::env::var("PROBE_ROOTLESS_USER").ok(),
            std::fs::read_to_string(RECORD_FILE).ok().map(|s| s.trim().to_string()),
            std::env::var("SUDO_USER").ok().filter(|u| u != "root"),
            Some(DEFAULT_USER.to_string()),
        ];
        for name in candidates.into_iter().flatten().filter(|n| !n.is_empty()) {
            if let Some(u) = User::from_name(&name)? {
                if !u.uid.is_root() {
                    return Ok(Self::from_user(u));
                }
            }
        }
        anyhow::bail!("no rootless user found (looked at PROBE_ROOTLESS_USER, {RECORD_FILE}, SUDO_USER, {DEFAULT_USER})")
    }

    fn from_user(u: User) -> Self {
        RootlessUser {
            name: u.name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            home: u.dir,
        }
    }

    /// Without systemd-logind nobody creates /run/user/UID, and rootless podman keeps its
    /// runtime state there.
    pub fn runtime_dir(&self) -> PathBuf {
        let dir = PathBuf::from(format!("/run/user/{}", self.uid));
        if !dir.exists() && Uid::effective().is_root() {
            let _ = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir);
            let _ = chown(&dir, Some(self.uid), Some(self.gid));
        }
        dir
    }

    /// Makes `cmd` run as this user with a login-like environment (as `sudo -iu` would),
    /// from `/` since probe's own cwd may be unreadable for them.
    pub fn apply(&self, cmd: &mut Command) {
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        cmd.env_clear()
            .env("HOME", &self.home)
            .env("USER", &self.name)
            .env("LOGNAME", &self.name)
            .env("PATH", path)
            .env("XDG_RUNTIME_DIR", self.runtime_dir())
            .current_dir("/");
        if Uid::effective().as_raw() != self.uid {
            cmd.uid(self.uid).gid(self.gid);
        }
    }
}

//! /proc/<pid>/mountinfo, every field (proc(5)): how the kernel itself sees a mount — its
//! type, its device, and every option, including the ones engines never print (an overlay's
//! `volatile`, a FUSE mount's `user_id`). `probe io` reports the container root's entry from
//! inside the container, and follows it to the block device that really stores the data.

use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub mount_id: u32,
    pub parent_id: u32,
    /// `major:minor` of the filesystem (st_dev of every file on it).
    pub major: u32,
    pub minor: u32,
    /// Path inside the filesystem that is mounted here (`/` unless a bind of a subtree).
    pub root: String,
    pub mount_point: String,
    /// Per-mount options (`rw,nosuid,relatime`).
    pub mount_options: String,
    /// Propagation tags (`shared:1`, `master:3`).
    pub optional: Vec<String>,
    pub fstype: String,
    pub source: String,
    /// Per-superblock options: where overlay's upperdir and `volatile` appear.
    pub super_options: String,
}

impl Mount {
    /// The value of `key=value` in the superblock options, or None.
    pub fn super_option(&self, key: &str) -> Option<&str> {
        option_value(&self.super_options, key)
    }

    /// True if the flag `name` is among the mount or superblock options.
    pub fn has_option(&self, name: &str) -> bool {
        [&self.mount_options, &self.super_options]
            .iter()
            .any(|o| o.split(',').any(|x| x == name))
    }

    /// Mount and superblock options, deduplicated, in the order the kernel printed them.
    pub fn all_options(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for o in self.mount_options.split(',').chain(self.super_options.split(',')) {
            if !o.is_empty() && !out.contains(&o) {
                out.push(o);
            }
        }
        out
    }
}

/// `key=value` out of a comma-separated option string. Overlay paths cannot contain commas
/// (the kernel would split them too), so a plain split is exact.
pub fn option_value<'a>(options: &'a str, key: &str) -> Option<&'a str> {
    options
        .split(',')
        .find_map(|o| o.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// Parses one line: `id parent maj:min root mount-point opts [optional...] - fstype source
/// super-opts`. The optional fields vary in number, hence the split at " - ".
// Hand-written: procfs-core's MountInfo keeps options in HashMaps (the kernel's order, which probe io prints and records, is lost) and leaves \ooo escapes in paths.
pub fn parse_line(line: &str) -> Option<Mount> {
    let (pre, post) = line.split_once(" - ")?;
    let mut pre = pre.split(' ');
    let mount_id = pre.next()?.parse().ok()?;
    let parent_id = pre.next()?.parse().ok()?;
    let (major, minor) = pre.next()?.split_once(':')?;
    let root = unescape_octal(pre.next()?);
    let mount_point = unescape_octal(pre.next()?);
    let mount_options = pre.next()?.to_string();
    let optional = pre.filter(|s| !s.is_empty()).map(str::to_string).collect();
    let mut post = post.splitn(3, ' ');
    Some(Mount {
        mount_id,
        parent_id,
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
        root,
        mount_point,
        mount_options,
        optional,
        fstype: post.next()?.to_string(),
        source: unescape_octal(post.next()?),
        super_options: post.next().unwrap_or("").trim_end().to_string(),
    })
}

/// Every parseable line of a mountinfo file.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

pub fn read(path: &Path) -> std::io::Result<Vec<Mount>> {
    Ok(parse(&std::fs::read_to_string(path)?))
}

/// The mount a path lives on: the last-mounted entry whose mount point is the longest
/// prefix of `path` (later entries stack on top of earlier ones at the same point).
/// `path` must be absolute and canonical (no `..`, no symlinks).
pub fn mount_of<'a>(mounts: &'a [Mount], path: &str) -> Option<&'a Mount> {
    let covers = |mp: &str| {
        mp == "/" || path == mp || path.strip_prefix(mp).is_some_and(|rest| rest.starts_with('/'))
    };
    mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| covers(&m.mount_point))
        .max_by_key(|(i, m)| (m.mount_point.len(), *i))
        .map(|(_, m)| m)
}

/// mountinfo escapes space, tab, newline and backslash as \ooo octal.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match oct {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Container roots as this machine's engines mount them (captured from inside each).
    const DOCKER_ROOT: &str = "172 121 0:62 / / rw,relatime master:3 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/SQCR:/var/lib/docker/overlay2/l/FSIQ,upperdir=/var/lib/docker/overlay2/26fe/diff,workdir=/var/lib/docker/overlay2/26fe/work";
    const PODMAN_ROOT: &str = "173 121 0:63 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/containers/storage/overlay/l/TMPW,upperdir=/var/lib/containers/storage/overlay/4003/diff,workdir=/var/lib/containers/storage/overlay/4003/work,uuid=on,fsync=volatile";
    const ROOTLESS_ROOT: &str = "167 120 0:63 / / rw,nodev,noatime - fuse.fuse-overlayfs fuse-overlayfs rw,user_id=0,group_id=0,default_permissions,allow_other";
    const VOLUME: &str = "180 172 254:0 /var/tmp/probe-io-1/vol /mnt rw,relatime - ext4 /dev/vda rw,discard";

    #[test]
    fn parses_every_field() {
        let m = parse_line(DOCKER_ROOT).unwrap();
        assert_eq!((m.mount_id, m.parent_id, m.major, m.minor), (172, 121, 0, 62));
        assert_eq!((m.root.as_str(), m.mount_point.as_str()), ("/", "/"));
        assert_eq!(m.mount_options, "rw,relatime");
        assert_eq!(m.optional, vec!["master:3"]);
        assert_eq!((m.fstype.as_str(), m.source.as_str()), ("overlay", "overlay"));
        assert_eq!(m.super_option("upperdir"), Some("/var/lib/docker/overlay2/26fe/diff"));
        assert_eq!(m.super_option("volatile"), None);
        let v = parse_line(VOLUME).unwrap();
        assert_eq!((v.major, v.minor, v.root.as_str()), (254, 0, "/var/tmp/probe-io-1/vol"));
        assert!(v.optional.is_empty());
    }

    #[test]
    fn options_are_found_as_flags_and_values() {
        let p = parse_line(PODMAN_ROOT).unwrap();
        assert_eq!(p.super_option("fsync"), Some("volatile"));
        assert!(p.has_option("relatime") && p.has_option("uuid=on") && !p.has_option("volatile"));
        let r = parse_line(ROOTLESS_ROOT).unwrap();
        assert_eq!(r.fstype, "fuse.fuse-overlayfs");
        assert_eq!(r.all_options(), vec!["rw", "nodev", "noatime", "user_id=0", "group_id=0", "default_permissions", "allow_other"]);
    }

    #[test]
    fn escapes_and_garbage() {
        let m = parse_line("36 35 98:0 /mnt1 /mnt\\040two rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue").unwrap();
        assert_eq!(m.mount_point, "/mnt two");
        assert_eq!(m.optional.len(), 2);
        assert!(parse_line("garbage").is_none());
        assert!(parse_line("1 2 x:y / / rw - ext4 /dev/sda rw").is_none());
    }

    #[test]
    fn longest_prefix_and_last_stacked_mount_wins() {
        let text = format!("{DOCKER_ROOT}\n{VOLUME}\n181 172 0:70 / /mntx rw - tmpfs tmpfs rw\n");
        let mounts = parse(&text);
        assert_eq!(mount_of(&mounts, "/mnt/testfile").unwrap().mount_id, 180);
        assert_eq!(mount_of(&mounts, "/mnt").unwrap().mount_id, 180);
        assert_eq!(mount_of(&mounts, "/mntx/f").unwrap().mount_id, 181);
        assert_eq!(mount_of(&mounts, "/tmp/testfile").unwrap().mount_id, 172);
        let stacked = format!("{text}190 180 0:80 / /mnt rw - tmpfs tmpfs rw\n");
        assert_eq!(mount_of(&parse(&stacked), "/mnt/f").unwrap().mount_id, 190);
    }

    #[test]
    fn reads_this_process() {
        let mounts = read(Path::new("/proc/self/mountinfo")).unwrap();
        assert!(mount_of(&mounts, "/").is_some());
    }
}

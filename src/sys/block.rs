//! The block stack under a filesystem, from sysfs: which device the filesystem sits on, and
//! every device below it down to the hardware. Bytes written are counted where the
//! filesystem sits; cache flushes only on whole disks (the kernel never counts a flush on a
//! partition: blk_account_io_flush adds to part0), and a write cache is a property of the
//! bottom disk. So a partition leads to its disk, device-mapper (LVM, dm-crypt, linear) and
//! md to their slaves, and a loop device to its backing file's filesystem and its stack.
//!
//! Read from `<sys>/block`, which lists whole disks with their partitions as subdirectories,
//! so that unit tests run on plain fixture trees (tests/fixtures/sysblock/).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::mountinfo::{self, Mount};

pub const SYS: &str = "/sys";

/// Filesystems that keep their data in memory only: no device below them.
pub const MEMORY_FS: &[&str] = &["tmpfs", "ramfs", "devtmpfs", "hugetlbfs"];

/// Stacks deeper than this are a loop of loop devices (or a sysfs we misread).
const MAX_DEPTH: usize = 16;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Kind {
    /// A whole disk: the bottom of a stack.
    Disk {
        /// queue/write_cache is "write back": written data may sit in a volatile cache
        /// until a flush. None when the kernel does not say.
        volatile_cache: Option<bool>,
    },
    Partition,
    /// device-mapper: `target` from dm/uuid's prefix (LVM, CRYPT, ...) or "dm" without one.
    DeviceMapper { target: String, dm_name: String },
    /// md RAID, with its level (raid1, raid0, ...).
    Md { level: String },
    /// A loop device and the file it serves, on a filesystem of its own.
    Loop { backing_file: String, fstype: String, direct_io: Option<bool> },
}

/// One device of the stack and everything below it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Kernel name, which is also its /proc/diskstats name.
    pub name: String,
    pub major: u32,
    pub minor: u32,
    pub kind: Kind,
    pub below: Vec<Node>,
}

/// A filesystem and its stack.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    pub fstype: String,
    /// The device the filesystem sits on: where its bytes are counted.
    pub top: Node,
}

impl Node {
    fn leaves<'a>(&'a self, out: &mut Vec<&'a Node>) {
        if self.below.is_empty() {
            if !out.iter().any(|n| n.name == self.name) {
                out.push(self);
            }
        } else {
            for b in &self.below {
                b.leaves(out);
            }
        }
    }

    fn label(&self) -> String {
        match &self.kind {
            Kind::DeviceMapper { target, .. } => format!("{} ({target})", self.name),
            Kind::Md { level } => format!("{} ({level})", self.name),
            Kind::Loop { backing_file, fstype, .. } => format!("{} (file {backing_file} on {fstype})", self.name),
            Kind::Disk { .. } | Kind::Partition => self.name.clone(),
        }
    }

    fn render(&self) -> String {
        match self.below.as_slice() {
            [] => self.label(),
            [one] => format!("{} → {}", self.label(), one.render()),
            many => format!("{} → [{}]", self.label(), many.iter().map(Node::render).collect::<Vec<_>>().join(" + ")),
        }
    }
}

impl Chain {
    /// The whole disks at the bottom, where flushes are counted.
    pub fn bottoms(&self) -> Vec<&Node> {
        let mut out = Vec::new();
        self.top.leaves(&mut out);
        out
    }

    /// True when any bottom disk has a volatile write cache, None when none says.
    pub fn volatile_cache(&self) -> Option<bool> {
        let known: Vec<bool> = self
            .bottoms()
            .iter()
            .filter_map(|n| match n.kind {
                Kind::Disk { volatile_cache } => volatile_cache,
                _ => None,
            })
            .collect();
        (!known.is_empty()).then(|| known.iter().any(|v| *v))
    }

    /// `ext4 on dm-0 (LVM) → nvme0n1p3 → nvme0n1, write cache volatile`.
    pub fn describe(&self) -> String {
        let cache = match self.volatile_cache() {
            Some(true) => "volatile",
            Some(false) => "write through",
            None => "unknown",
        };
        format!("{} on {}, write cache {cache}", self.fstype, self.top.render())
    }
}

/// Where a filesystem's data lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    Device(Chain),
    /// A memory filesystem: no disk at all.
    Memory { fstype: String },
}

/// What the resolver reads: a sysfs root and the host's mount table (to follow a loop
/// device's backing file to its filesystem).
pub struct Stack<'a> {
    sys: PathBuf,
    mounts: &'a [Mount],
    /// Every block device by major:minor, with its disk when it is a partition.
    index: BTreeMap<(u32, u32), Entry>,
}

#[derive(Clone, Debug)]
struct Entry {
    name: String,
    /// The disk's directory under <sys>/block for a partition, its own for a disk.
    dir: PathBuf,
    disk: Option<String>,
}

fn read_trim(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok().map(|s| s.trim().to_string())
}

fn parse_dev(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.trim().split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

impl<'a> Stack<'a> {
    pub fn new(sys: &Path, mounts: &'a [Mount]) -> std::io::Result<Stack<'a>> {
        let mut index = BTreeMap::new();
        let block = sys.join("block");
        for disk in std::fs::read_dir(&block)? {
            let disk = disk?;
            let name = disk.file_name().to_string_lossy().into_owned();
            let dir = block.join(&name);
            let Some(dev) = read_trim(&dir.join("dev")).as_deref().and_then(parse_dev) else { continue };
            index.insert(dev, Entry { name: name.clone(), dir: dir.clone(), disk: None });
            // Partitions are the subdirectories holding a `partition` file.
            for sub in std::fs::read_dir(&dir)?.filter_map(Result::ok) {
                let p = sub.path();
                if !p.join("partition").exists() {
                    continue;
                }
                if let Some(pdev) = read_trim(&p.join("dev")).as_deref().and_then(parse_dev) {
                    let pname = sub.file_name().to_string_lossy().into_owned();
                    index.insert(pdev, Entry { name: pname, dir: p, disk: Some(name.clone()) });
                }
            }
        }
        Ok(Stack { sys: sys.to_path_buf(), mounts, index })
    }

    /// The stack under the host's filesystem of this mount entry (as any mount namespace
    /// shows it: major:minor, fstype and source are the same everywhere).
    pub fn of_mount(&self, m: &Mount) -> Result<Resolved, String> {
        self.of_mount_depth(m, 0)
    }

    /// The stack under the filesystem holding `path`, a host path.
    pub fn of_path(&self, path: &Path) -> Result<Resolved, String> {
        let m = self.mount_of(path)?;
        self.of_mount(m)
    }

    fn mount_of(&self, path: &Path) -> Result<&Mount, String> {
        let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        mountinfo::mount_of(self.mounts, &canon.to_string_lossy())
            .ok_or_else(|| format!("no mount holds {} in the host's mount table", canon.display()))
    }

    fn of_mount_depth(&self, m: &Mount, depth: usize) -> Result<Resolved, String> {
        if MEMORY_FS.contains(&m.fstype.as_str()) {
            return Ok(Resolved::Memory { fstype: m.fstype.clone() });
        }
        let dev = self.device_of_mount(m)?;
        let top = self.node(dev, depth)?;
        Ok(Resolved::Device(Chain { fstype: m.fstype.clone(), top }))
    }

    /// The filesystem's block device: its major:minor when that is a block device; else the
    /// mount's source (btrfs gives every filesystem an anonymous 0:N device): a kernel name
    /// (`/dev/loop0p2`), or a device-mapper name (`/dev/mapper/vg-home`: dm/name in sysfs).
    fn device_of_mount(&self, m: &Mount) -> Result<(u32, u32), String> {
        if self.index.contains_key(&(m.major, m.minor)) {
            return Ok((m.major, m.minor));
        }
        let by_source = m.source.strip_prefix("/dev/").and_then(|n| {
            let last = n.rsplit('/').next().unwrap_or(n);
            let mapper = n.strip_prefix("mapper/");
            self.index
                .iter()
                .find(|(_, e)| e.name == last || mapper.is_some_and(|d| read_trim(&e.dir.join("dm/name")).as_deref() == Some(d)))
                .map(|(d, _)| *d)
        });
        by_source.ok_or_else(|| {
            format!(
                "{} {} on {}: device {}:{} is no block device in {}/block, and neither is its source",
                m.fstype,
                m.source,
                m.mount_point,
                m.major,
                m.minor,
                self.sys.display()
            )
        })
    }

    fn node(&self, dev: (u32, u32), depth: usize) -> Result<Node, String> {
        if depth > MAX_DEPTH {
            return Err(format!("block stack deeper than {MAX_DEPTH} at {}:{}", dev.0, dev.1));
        }
        let e = self
            .index
            .get(&dev)
            .ok_or_else(|| format!("no block device {}:{} in {}/block", dev.0, dev.1, self.sys.display()))?;
        let (major, minor) = dev;
        if let Some(disk) = &e.disk {
            let disk_dev = self
                .index
                .iter()
                .find(|(_, d)| &d.name == disk && d.disk.is_none())
                .map(|(d, _)| *d)
                .ok_or_else(|| format!("partition {} without its disk {disk}", e.name))?;
            let below = vec![self.node(disk_dev, depth + 1)?];
            return Ok(Node { name: e.name.clone(), major, minor, kind: Kind::Partition, below });
        }
        let dir = &e.dir;
        let (kind, below) = if dir.join("dm").is_dir() {
            let uuid = read_trim(&dir.join("dm/uuid")).unwrap_or_default();
            // dm/uuid starts with the target's owner: "LVM-", "CRYPT-LUKS2-", "mpath-".
            let target = match uuid.split_once('-') {
                Some((prefix, _)) if !prefix.is_empty() => prefix.to_string(),
                _ => "dm".to_string(),
            };
            let dm_name = read_trim(&dir.join("dm/name")).unwrap_or_default();
            (Kind::DeviceMapper { target, dm_name }, self.slaves(dir, depth)?)
        } else if dir.join("md").is_dir() {
            let level = read_trim(&dir.join("md/level")).unwrap_or_else(|| "md".into());
            (Kind::Md { level }, self.slaves(dir, depth)?)
        } else if let Some(file) = read_trim(&dir.join("loop/backing_file")) {
            let direct_io = read_trim(&dir.join("loop/dio")).map(|s| s == "1");
            // The kernel appends " (deleted)" when the file was unlinked; it still holds data
            // on the same filesystem.
            let path = file.strip_suffix(" (deleted)").unwrap_or(&file);
            let host = self.mount_of(Path::new(path)).map_err(|err| format!("{} backing file: {err}", e.name))?;
            match self.of_mount_depth(host, depth + 1).map_err(|err| format!("{} backing file {file}: {err}", e.name))? {
                Resolved::Device(c) => {
                    (Kind::Loop { backing_file: file.clone(), fstype: c.fstype, direct_io }, vec![c.top])
                }
                Resolved::Memory { fstype } => {
                    return Err(format!("{}: backing file {file} is on {fstype} (memory)", e.name));
                }
            }
        } else {
            let volatile_cache = read_trim(&dir.join("queue/write_cache")).map(|s| s == "write back");
            (Kind::Disk { volatile_cache }, Vec::new())
        };
        Ok(Node { name: e.name.clone(), major, minor, kind, below })
    }

    /// dm and md name their members in slaves/ (a partition or a disk each).
    fn slaves(&self, dir: &Path, depth: usize) -> Result<Vec<Node>, String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.join("slaves"))
            .map_err(|e| format!("{}/slaves: {e}", dir.display()))?
            .filter_map(|s| Some(s.ok()?.file_name().to_string_lossy().into_owned()))
            .collect();
        names.sort();
        if names.is_empty() {
            return Err(format!("{} has no slaves", dir.display()));
        }
        names
            .iter()
            .map(|n| {
                let dev = self.index.iter().find(|(_, e)| &e.name == n).map(|(d, _)| *d);
                dev.ok_or_else(|| format!("slave {n} of {} is not in {}/block", dir.display(), self.sys.display()))
                    .and_then(|d| self.node(d, depth + 1))
            })
            .collect()
    }
}

/// The stack under the host filesystem of `m`, read from this host's /sys and PID 1's mounts.
pub fn resolve_mount(m: &Mount) -> Result<Resolved, String> {
    let mounts = host_mounts()?;
    Stack::new(Path::new(SYS), &mounts).map_err(|e| format!("reading {SYS}/block: {e}"))?.of_mount(m)
}

/// The host's mount table: PID 1's, which loop backing files and overlay upper directories
/// are named in.
pub fn host_mounts() -> Result<Vec<Mount>, String> {
    mountinfo::read(Path::new("/proc/1/mountinfo")).map_err(|e| format!("reading /proc/1/mountinfo: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sysblock").join(name)
    }

    fn mount(line: &str) -> Mount {
        mountinfo::parse_line(line).unwrap()
    }

    fn chain(r: Resolved) -> Chain {
        match r {
            Resolved::Device(c) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nvme_partition_leads_to_its_namespace() {
        let m = mount("29 1 259:2 / / rw,relatime - ext4 /dev/nvme0n1p2 rw");
        let sys = fixture("nvme");
        let mounts = [m.clone()];
        let c = chain(Stack::new(&sys, &mounts).unwrap().of_mount(&m).unwrap());
        assert_eq!(c.top.name, "nvme0n1p2");
        assert_eq!(c.bottoms().iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["nvme0n1"]);
        assert_eq!(c.describe(), "ext4 on nvme0n1p2 → nvme0n1, write cache volatile");
    }

    #[test]
    fn lvm_and_crypt_lead_through_dm_slaves() {
        let sys = fixture("dm");
        // dm-1 (CRYPT) on dm-0 (LVM) on nvme0n1p3.
        let m = mount("30 1 253:1 / / rw - ext4 /dev/mapper/home rw");
        let lvm = mount("31 1 253:0 / /data rw - xfs /dev/mapper/vg-data rw");
        let mounts = [m.clone(), lvm.clone()];
        let s = Stack::new(&sys, &mounts).unwrap();
        assert_eq!(
            chain(s.of_mount(&m).unwrap()).describe(),
            "ext4 on dm-1 (CRYPT) → dm-0 (LVM) → nvme0n1p3 → nvme0n1, write cache volatile"
        );
        let c = chain(s.of_mount(&lvm).unwrap());
        assert_eq!(c.describe(), "xfs on dm-0 (LVM) → nvme0n1p3 → nvme0n1, write cache volatile");
        assert!(matches!(&c.top.kind, Kind::DeviceMapper { dm_name, .. } if dm_name == "vg-data"));
        // btrfs on LVM: an anonymous device, found by its /dev/mapper source's dm name.
        let btrfs = mount("32 1 0:48 / /srv rw - btrfs /dev/mapper/vg-data rw");
        assert_eq!(chain(s.of_mount(&btrfs).unwrap()).top.name, "dm-0");
    }

    #[test]
    fn md_members_are_all_bottoms_and_any_volatile_cache_counts() {
        let sys = fixture("md");
        let m = mount("30 1 9:0 / / rw - ext4 /dev/md0 rw");
        let mounts = [m.clone()];
        let c = chain(Stack::new(&sys, &mounts).unwrap().of_mount(&m).unwrap());
        let names: Vec<_> = c.bottoms().iter().map(|n| n.name.clone()).collect();
        assert_eq!(names, ["sda", "sdb"]);
        assert_eq!(c.volatile_cache(), Some(true), "sdb writes back, sda writes through");
        assert_eq!(c.describe(), "ext4 on md0 (raid1) → [sda1 → sda + sdb1 → sdb], write cache volatile");
    }

    #[test]
    fn loop_leads_to_its_backing_files_filesystem() {
        let sys = fixture("loop");
        // ext4 on loop1p1, whose file lives on an xfs on loop0p2, whose file is on vda.
        let top = mount("40 1 259:3 / /mnt/inner rw - ext4 /dev/loop1p1 rw");
        let mid = mount("39 1 259:1 / /mnt/outer rw - xfs /dev/loop0p2 rw");
        let root = mount("20 1 254:0 / / rw - ext4 /dev/vda rw");
        let mounts = [root, mid, top.clone()];
        let c = chain(Stack::new(&sys, &mounts).unwrap().of_mount(&top).unwrap());
        assert_eq!(
            c.describe(),
            "ext4 on loop1p1 → loop1 (file /mnt/outer/inner.img (deleted) on xfs) → loop0p2 → loop0 (file /var/tmp/outer.img on ext4) → vda, write cache volatile"
        );
        assert_eq!(c.bottoms()[0].name, "vda");
    }

    #[test]
    fn btrfs_anonymous_device_is_found_by_source_and_memory_and_unknown_are_distinct() {
        let sys = fixture("loop");
        let btrfs = mount("41 1 0:55 / /mnt/b rw - btrfs /dev/loop0p2 rw");
        let tmp = mount("42 1 0:30 / /dev/shm rw - tmpfs tmpfs rw");
        let gone = mount("43 1 0:60 / /mnt/x rw - overlay overlay rw");
        let mounts = [mount("20 1 254:0 / / rw - ext4 /dev/vda rw"), btrfs.clone()];
        let s = Stack::new(&sys, &mounts).unwrap();
        assert_eq!(chain(s.of_mount(&btrfs).unwrap()).top.name, "loop0p2");
        assert_eq!(s.of_mount(&tmp).unwrap(), Resolved::Memory { fstype: "tmpfs".into() });
        let e = s.of_mount(&gone).unwrap_err();
        assert!(e.contains("0:60 is no block device"), "{e}");
    }

    #[test]
    fn this_hosts_root_resolves_to_a_disk() {
        let mounts = host_mounts().unwrap();
        let root = mountinfo::mount_of(&mounts, "/").unwrap();
        match resolve_mount(root) {
            Ok(Resolved::Device(c)) => assert!(!c.bottoms().is_empty()),
            // A container root (overlay) has no device: then the error names it.
            Ok(other) => panic!("{other:?}"),
            Err(e) => assert!(e.contains("no block device"), "{e}"),
        }
    }
}

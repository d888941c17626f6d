//! Durable when the sync returned, or not — decided from what the disk received, never from
//! how fast the container said it wrote; and, when not, the mechanism the evidence points to.

use serde::{Deserialize, Serialize};

use super::backing::Store;
use super::protocol::SyncMode;

/// Share of the written bytes that must be on the device before the sync returns. Not 100%:
/// the background write rate is subtracted as an estimate, and a busy disk makes that estimate
/// err; 5% is the allowance for it, far from anything that drops a sync (those leave ~0%).
pub const DURABLE_SHARE: f64 = 0.95;

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Durable,
    NotDurable,
    /// The evidence cannot decide (the backing device is unknown).
    Undecided,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Durable => "durable",
            Outcome::NotDurable => "NOT durable",
            Outcome::Undecided => "undecided",
        }
    }

    /// The CSV's `_durable` value: 1 or 0 when decided, the word when not, so an undecided
    /// rep never reads as NOT durable.
    pub fn csv_value(self) -> &'static str {
        match self {
            Outcome::Durable => "1",
            Outcome::NotDurable => "0",
            Outcome::Undecided => "undecided",
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Verdict {
    pub outcome: Outcome,
    /// The numbers that decided it.
    pub decided_by: String,
    /// For "not durable": the layer and behaviour the evidence points to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mechanism: Option<String>,
}

/// What the FUSE layer showed, when the target is on FUSE.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FuseFacts {
    pub daemon: String,
    /// Daemon options known to turn fsync off (`volatile`, `fsync=0`).
    pub no_sync_options: Vec<String>,
    /// FSYNC requests that reached the daemon during the sync call (None: not traced).
    pub fsync_requests: Option<u64>,
    /// Errors the daemon answered FSYNC with ("FSYNC: -38").
    pub fsync_errors: Vec<String>,
    /// Filesystem sync calls made by the daemon itself (None: not traced).
    pub daemon_fs_syncs: Option<u64>,
}

pub struct Facts<'a> {
    pub size: u64,
    pub sync: SyncMode,
    pub store: &'a Store,
    /// Bytes the device received from `ready` to `synced`, background subtracted.
    pub device_bytes: u64,
    /// Cache flushes the bottom disks received from `ready` to `synced` (None: not counted).
    pub flushes: Option<u64>,
    /// The target's overlay mount has `volatile` (printed as `fsync=volatile` since 6.x).
    pub overlay_volatile: bool,
    pub fuse: Option<FuseFacts>,
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
}

pub fn decide(f: &Facts) -> Verdict {
    let dev = match f.store {
        Store::Memory { fstype } => {
            return Verdict {
                outcome: Outcome::NotDurable,
                decided_by: format!("no disk behind the file: it is on {fstype}, a memory filesystem"),
                mechanism: Some(format!("{fstype} keeps data only in RAM: there is no disk to reach")),
            }
        }
        Store::Unknown { why } => {
            return Verdict {
                outcome: Outcome::Undecided,
                decided_by: format!("the block stack under the file could not be resolved, so the disk counters cannot say: {why}"),
                mechanism: None,
            }
        }
        Store::Device(d) => d,
    };
    let share = f.device_bytes as f64 / f.size as f64;
    let bottoms: Vec<&str> = dev.bottoms().iter().map(|n| n.name.as_str()).collect();
    let flushes = f.flushes.map(|n| format!(", {n} cache flush(es) at {}", bottoms.join("+"))).unwrap_or_default();
    let amount = format!("{} of {} ({:.0}%) reached {}{flushes}", mib(f.device_bytes), mib(f.size), share * 100.0, dev.name);
    let when = if f.sync.calls_sync() { format!("before {} returned", f.sync.name()) } else { "before the last write returned".into() };
    if share >= DURABLE_SHARE {
        if f.flushes == Some(0) && dev.volatile_cache() == Some(true) {
            return Verdict {
                outcome: Outcome::NotDurable,
                decided_by: format!("{amount} {when}, but the disk has a volatile write cache"),
                mechanism: Some(no_flush_mechanism(f.sync)),
            };
        }
        return Verdict { outcome: Outcome::Durable, decided_by: format!("{amount} {when}"), mechanism: None };
    }
    Verdict { outcome: Outcome::NotDurable, decided_by: format!("only {amount} {when}"), mechanism: Some(mechanism(f)) }
}

/// The data reached the device but no flush followed: worded for how the file was written.
fn no_flush_mechanism(sync: SyncMode) -> String {
    let tail = "the data may still sit in the disk's volatile write cache";
    match sync {
        SyncMode::Direct => format!(
            "no cache flush (FLUSH/FUA) was issued: {tail}; O_DIRECT bypasses the page cache, not the disk's cache"
        ),
        SyncMode::None => format!("no sync call, so no cache flush (FLUSH/FUA) was asked for: {tail}"),
        SyncMode::Fsync | SyncMode::Fdatasync => format!(
            "{} returned without a cache flush (FLUSH/FUA) reaching the disk: {tail} (a layer of the stack, or a \
             filesystem mounted nobarrier, dropped the flush)",
            sync.name()
        ),
    }
}

/// Why the data was still in memory when the sync returned, most specific evidence first.
fn mechanism(f: &Facts) -> String {
    match f.sync {
        SyncMode::None => {
            return "no sync call: the data waits in the page cache until background writeback (vm.dirty_expire_centisecs)".into()
        }
        SyncMode::Direct if f.fuse.is_none() && !f.overlay_volatile => {
            return "O_DIRECT writes were served from the page cache by a layer of this storage stack".into()
        }
        _ => {}
    }
    if f.overlay_volatile {
        return "overlayfs is mounted `volatile` (mountinfo shows fsync=volatile): overlay turns fsync/fdatasync on \
                its upper layer into no-ops, so the call returns at once and the data stays in the page cache"
            .into();
    }
    if let Some(fuse) = &f.fuse {
        let d = &fuse.daemon;
        if let Some(err) = fuse.fsync_errors.iter().find(|e| e.starts_with("FSYNC")) {
            return format!(
                "the FUSE daemon {d} answered the FSYNC request with an error ({err}; -38 is ENOSYS): the kernel \
                 returns success to the caller and stops sending FSYNC on that mount"
            );
        }
        match (fuse.fsync_requests, fuse.daemon_fs_syncs) {
            (Some(0), _) => {
                return format!(
                    "the sync never reached the FUSE daemon {d} (0 FSYNC requests): the kernel answered it itself \
                     (FUSE stops sending FSYNC once a daemon has said it does not implement it)"
                )
            }
            (Some(n), Some(0)) => {
                return format!(
                    "the FUSE daemon {d} received {n} FSYNC request(s) and acknowledged without syncing its upper file \
                     (no filesystem sync call from it){}",
                    if fuse.no_sync_options.is_empty() { String::new() } else { format!("; it runs with {}", fuse.no_sync_options.join(",")) }
                )
            }
            _ => {}
        }
        if !fuse.no_sync_options.is_empty() {
            return format!("the FUSE daemon {d} runs with {}: it acknowledges fsync without syncing", fuse.no_sync_options.join(","));
        }
        return format!(
            "the sync returned while the data was still in memory: the FUSE daemon {d} did not pass it down to the disk \
             (run with --fsync-trace to see which FUSE requests reached it)"
        );
    }
    "the sync returned before the data reached the device: a layer between the container and the disk absorbed it".into()
}

/// One verdict for a mode from its reps: theirs when they agree, else "mixed".
pub fn combine(verdicts: &[&Verdict]) -> (Option<Outcome>, String) {
    let Some(first) = verdicts.first() else { return (None, "no reps".into()) };
    if verdicts.iter().all(|v| v.outcome == first.outcome) {
        (Some(first.outcome), first.outcome.label().into())
    } else {
        let durable = verdicts.iter().filter(|v| v.outcome == Outcome::Durable).count();
        (None, format!("mixed ({durable} of {} reps durable)", verdicts.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::io::backing::Device;
    use crate::sys::block::{Chain, Kind, Node};

    const MIB: u64 = 1 << 20;

    fn vda(volatile_cache: bool) -> Store {
        let top = Node { name: "vda".into(), major: 254, minor: 0, kind: Kind::Disk { volatile_cache: Some(volatile_cache) }, below: vec![] };
        let chain = Chain { fstype: "ext4".into(), top };
        Store::Device(Device { name: "vda".into(), major: 254, minor: 0, chain, via: "test".into() })
    }

    fn facts(store: &Store, sync: SyncMode, device_bytes: u64, flushes: Option<u64>) -> Facts<'_> {
        Facts { size: 100 * MIB, sync, store, device_bytes, flushes, overlay_volatile: false, fuse: None }
    }

    #[test]
    fn all_bytes_and_a_flush_is_durable() {
        let s = vda(true);
        let v = decide(&facts(&s, SyncMode::Fdatasync, 101 * MIB, Some(2)));
        assert_eq!(v.outcome, Outcome::Durable);
        assert!(v.decided_by.contains("101.0 MiB of 100.0 MiB (101%) reached vda, 2 cache flush(es) at vda before fdatasync returned"), "{}", v.decided_by);
        assert!(v.mechanism.is_none());
        // 95% is the bar; just under it is not durable.
        assert_eq!(decide(&facts(&s, SyncMode::Fsync, 95 * MIB, Some(1))).outcome, Outcome::Durable);
        assert_eq!(decide(&facts(&s, SyncMode::Fsync, 94 * MIB, Some(1))).outcome, Outcome::NotDurable);
    }

    #[test]
    fn direct_without_flush_on_a_volatile_cache_is_not_durable() {
        let s = vda(true);
        let v = decide(&facts(&s, SyncMode::Direct, 100 * MIB, Some(0)));
        assert_eq!(v.outcome, Outcome::NotDurable);
        assert!(v.mechanism.unwrap().contains("O_DIRECT bypasses"));
        // The same evidence after fdatasync names the flush, not O_DIRECT.
        let m = decide(&facts(&s, SyncMode::Fdatasync, 100 * MIB, Some(0))).mechanism.unwrap();
        assert!(m.contains("fdatasync returned without a cache flush") && !m.contains("O_DIRECT"), "{m}");
        let wt = vda(false);
        assert_eq!(decide(&facts(&wt, SyncMode::Direct, 100 * MIB, Some(0))).outcome, Outcome::Durable);
    }

    #[test]
    fn volatile_overlay_is_named() {
        let s = vda(true);
        let mut f = facts(&s, SyncMode::Fdatasync, MIB / 2, Some(0));
        f.overlay_volatile = true;
        let v = decide(&f);
        assert_eq!(v.outcome, Outcome::NotDurable);
        assert!(v.decided_by.starts_with("only 0.5 MiB of 100.0 MiB (0%)"), "{}", v.decided_by);
        assert!(v.mechanism.unwrap().contains("fsync=volatile"));
    }

    #[test]
    fn fuse_mechanisms_follow_the_trace() {
        let s = vda(true);
        let with = |fuse: FuseFacts| {
            let mut f = facts(&s, SyncMode::Fdatasync, 0, Some(0));
            f.fuse = Some(fuse);
            decide(&f).mechanism.unwrap()
        };
        let base = FuseFacts { daemon: "fuse-overlayfs".into(), ..Default::default() };
        assert!(with(FuseFacts { fsync_requests: Some(0), ..base.clone() }).contains("never reached the FUSE daemon"));
        assert!(with(FuseFacts { fsync_requests: Some(1), daemon_fs_syncs: Some(0), ..base.clone() }).contains("acknowledged without syncing"));
        assert!(with(FuseFacts { fsync_requests: Some(1), fsync_errors: vec!["FSYNC: -38".into()], ..base.clone() }).contains("ENOSYS"));
        assert!(with(FuseFacts { no_sync_options: vec!["fsync=0".into()], ..base.clone() }).contains("runs with fsync=0"));
        assert!(with(base).contains("--fsync-trace"));
    }

    #[test]
    fn memory_unknown_and_no_sync() {
        let mem = Store::Memory { fstype: "tmpfs".into() };
        let v = decide(&facts(&mem, SyncMode::Fdatasync, 0, None));
        assert_eq!(v.outcome, Outcome::NotDurable);
        assert!(v.mechanism.unwrap().contains("RAM"));
        assert!(decide(&facts(&mem, SyncMode::Fdatasync, 0, None)).decided_by.starts_with("no disk behind the file"));
        let unk = Store::Unknown { why: "x".into() };
        let u = decide(&facts(&unk, SyncMode::Fdatasync, 0, None));
        assert_eq!(u.outcome, Outcome::Undecided);
        assert!(u.decided_by.contains("could not be resolved") && !u.decided_by.contains("no disk"), "{}", u.decided_by);
        let s = vda(true);
        assert!(decide(&facts(&s, SyncMode::None, 0, Some(0))).mechanism.unwrap().contains("page cache"));
    }

    #[test]
    fn reps_combine_only_when_they_agree() {
        let d = Verdict { outcome: Outcome::Durable, decided_by: String::new(), mechanism: None };
        let n = Verdict { outcome: Outcome::NotDurable, ..d.clone() };
        assert_eq!(combine(&[&d, &d]), (Some(Outcome::Durable), "durable".into()));
        assert_eq!(combine(&[&d, &n, &d]), (None, "mixed (2 of 3 reps durable)".into()));
    }
}

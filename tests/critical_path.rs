//! The critical path names the cause of a slow rep: delays injected by the test into one rep
//! of a real `docker run` (a stopped containerd, CPU hogs, a disk flood with fsync) must show
//! in that rep's critical path and outlier line, and in no other rep; a normal docker or
//! podman run is explained (its path's task and state known) for ≥ 95% of its time.
//!
//! Built to hold on a 2-CPU machine shared with builds: each injection lasts only while the
//! rep it aims at runs (so it cannot spill into the next one), the stop starts when the run
//! is known to need containerd for the rest of the rep (runc deleting the exited container),
//! and each delay is sized from the reps timed before it (see `delay_for`), so the rep it
//! hits stands out of this machine's noise as an outlier: its outlier line is always read.
//! A run whose delay missed every rep (timing), or whose hit rep the noise still hid, is run
//! again (up to ATTEMPTS times); a scenario whose hit rep never stood out fails the test.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

const WARMUP: usize = 1;
/// Enough that the median and MAD the outliers are judged by do not hang on one noisy rep.
const REPS: usize = 8;
/// The delay is injected once this many `docker run`s of probe's have started (which rep it
/// hit is then found by time, from the reps' recorded windows).
/// The measured reps before it are timed to size the delay.
const NTH_CLI: usize = WARMUP + 4;
/// Runs of a scenario for its delay to fall inside a rep and make it an outlier.
const ATTEMPTS: usize = 4;
/// How long before its rep's end a delay must begin to count as hitting it.
const MIN_OVERLAP: u64 = 50_000_000;
/// The share of a rep without an injection its critical path must explain.
const EXPLAINED: f64 = 0.95;

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// What a run with one injected delay left: probe's stdout, per measured rep the waits of
/// its critical path and its explained share (from startup.json), and the 1-based rep the
/// delay fell in.
struct Run {
    out: String,
    waits: Vec<Vec<Value>>,
    explained: Vec<f64>,
    hit: usize,
}

impl Run {
    /// The outlier line of `rep`, unwrapped (the terminal output wraps it, continuation
    /// lines indented deeper).
    fn line(&self, rep: usize) -> Option<String> {
        let head = format!("docker rep {rep} (");
        let mut lines = self.out.lines().skip_while(|l| !l.trim_start().starts_with(&head));
        let first = lines.next()?.trim().to_string();
        let rest = lines.take_while(|l| l.starts_with("    ")).map(str::trim);
        Some(std::iter::once(first).chain(rest.map(str::to_string)).collect::<Vec<_>>().join(" "))
    }

    /// Reps other than the hit one, 1-based, with their waits.
    fn others(&self) -> impl Iterator<Item = (usize, &Vec<Value>)> {
        self.waits.iter().enumerate().map(|(i, w)| (i + 1, w)).filter(move |(r, _)| *r != self.hit)
    }

    /// Reps without an injection are explained as a normal one is: their median ≥ 95%. Not
    /// each one: a rare rep loses more where a waker's own state was not seen (a thread of
    /// docker's hook `exe` once, 7.5% of one rep in ~40; on this VM's kernel no record comes
    /// from CPU 1's idle context), which issue 15 still has open.
    fn others_explained(&self) {
        let mut shares: Vec<f64> = self.others().map(|(rep, _)| self.explained[rep - 1]).collect();
        shares.sort_by(f64::total_cmp);
        let median = shares[shares.len() / 2];
        assert!(median >= EXPLAINED, "reps without an injection explained only {:.1}% (median): {shares:?}", median * 100.0);
    }

    /// ... and its outlier line (if it is one) names none of the injected cause.
    fn others_are_clean(&self, cause: &str) {
        self.others_explained();
        for (rep, _) in self.others() {
            if let Some(l) = self.line(rep) {
                assert!(!l.contains(cause), "rep {rep} had no injection, yet its line says {cause:?}: {l}");
            }
        }
    }
}

fn stat_field(pid: u32, n: usize) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": fields counted after the comm.
    let (_, rest) = stat.rsplit_once(") ")?;
    rest.split(' ').nth(n).map(str::to_string)
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string()
}

fn argv(pid: u32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    raw.split(|&b| b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

fn pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()).collect()
}

fn alive(pid: u32) -> bool {
    // A zombie has exited: its rep is over.
    stat_field(pid, 0).is_some_and(|s| s != "Z")
}

/// Runs `probe startup --breakdown --runtimes docker` and calls `inject` once the NTH_CLI-th
/// `docker run` of probe's has started, with that CLI's pid; `inject` returns when
/// (CLOCK_MONOTONIC) the delay began.
/// None when the delay missed every rep: it began between two reps, or so near a rep's end
/// (less than MIN_OVERLAP before it) that the rep no longer waited on what was delayed. On a
/// quiet machine a rep can end before the injection lands.
fn startup_with(inject: Inject) -> Option<Run> {
    let probe = Command::new(common::probe_bin())
        .args(["startup", "--breakdown", "--runtimes", "docker", "--reps", &REPS.to_string(), "--warmup", &WARMUP.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn probe startup");
    let probe_pid = probe.id();
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut seen: Vec<u32> = Vec::new();
            // (CLI pid, first seen, seen gone): the reps' wall times, to size the delay.
            let mut lives: Vec<(u32, Instant, Option<Instant>)> = Vec::new();
            while !done.load(Ordering::Relaxed) {
                for l in lives.iter_mut().filter(|l| l.2.is_none()) {
                    if !alive(l.0) {
                        l.2 = Some(Instant::now());
                    }
                }
                // Probe also runs the CLI for itself (queries, cleanup): only `docker run` is a rep.
                let runs = pids().into_iter().filter(|&pid| {
                    stat_field(pid, 1).and_then(|p| p.parse::<u32>().ok()) == Some(probe_pid)
                        && comm(pid) == "docker"
                        && argv(pid).iter().any(|a| a == "run")
                });
                for pid in runs {
                    if !seen.contains(&pid) {
                        seen.push(pid);
                        lives.push((pid, Instant::now(), None));
                    }
                }
                if seen.len() == NTH_CLI {
                    let walls: Vec<Duration> = lives[WARMUP..NTH_CLI - 1].iter().filter_map(|l| Some(l.2? - l.1)).collect();
                    return Some(inject(seen[NTH_CLI - 1], delay_for(walls)));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            None
        })
    };
    let out = probe.wait_with_output().expect("probe startup output");
    done.store(true, Ordering::Relaxed);
    let at = watcher.join().unwrap().expect("never saw enough docker CLIs to inject into");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "probe startup failed: {stderr}");
    let dir = stderr.lines().find_map(|l| l.strip_prefix("results: ")).expect("results folder named on stderr");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(format!("{dir}/startup.json")).expect("startup.json")).expect("startup.json parses");
    let reps = json["breakdown"][0]["rep_waits"].as_array().expect("rep_waits in the breakdown");
    assert_eq!(reps.len(), REPS, "every rep traced");
    let samples = json["report"]["results"][0]["samples"].as_array().expect("samples");
    let hit = 1 + samples.iter().position(|s| {
        let (start, wall) = (s["start_mono_ns"].as_u64().unwrap(), s["wall_ns"].as_u64().unwrap());
        start <= at && at + MIN_OVERLAP < start + wall
    })?;
    for (i, r) in reps.iter().enumerate() {
        let lost = &r["lost"];
        assert_eq!(lost, 0, "the kernel dropped {lost} trace records in rep {}: its critical path is incomplete", i + 1);
    }
    let waits = reps
        .iter()
        .map(|r| r["phases"].as_array().unwrap().iter().flat_map(|p| p["waits"].as_array().unwrap().clone()).collect())
        .collect();
    let explained = reps.iter().map(|r| r["explained"].as_f64().expect("explained share")).collect();
    Some(Run { out: String::from_utf8_lossy(&out.stdout).into_owned(), waits, explained, hit })
}

/// Called with the CLI of the rep to delay and how long to delay it; returns when
/// (CLOCK_MONOTONIC) the delay began.
type Inject = Box<dyn FnOnce(u32, Duration) -> u64 + Send>;

/// How long to delay a rep, from the wall times of the reps before it: an outlier needs a
/// modified z-score over 3.5, a move of 5.2 MADs, and on this loaded 2-CPU machine docker's
/// reps were seen spread by a MAD of up to a third of their median (1278 ms, MAD ~400 ms,
/// while a VM and builds ran): three medians clear that. At least 2 s, at most 6 s (a
/// daemon stopped or CPUs held longer would disturb the others sharing the machine).
fn delay_for(mut walls: Vec<Duration>) -> Duration {
    walls.sort();
    let median = walls.get(walls.len() / 2).copied().unwrap_or_default();
    (median * 3).clamp(Duration::from_secs(2), Duration::from_secs(6))
}

/// Runs the scenario `make` builds until its delay falls inside a rep and makes it an
/// outlier (up to ATTEMPTS times), checking each run that was hit with `check` (what the
/// critical path says, outlier or not); returns that run and the hit rep's outlier line.
/// `check` returns Err only for a miss the tool is known to make (named in its message; each
/// is open in issue 15): that run is another attempt, and ATTEMPTS such misses fail the test.
fn hit_outlier(make: impl Fn() -> Inject, check: impl Fn(&Run) -> Result<(), String>) -> (Run, String) {
    for attempt in 1..=ATTEMPTS {
        let Some(run) = startup_with(make()) else {
            println!("attempt {attempt}: the delay missed every rep (it began between reps, or as one ended); again");
            continue;
        };
        println!("attempt {attempt}, injection in rep {}:\n{}", run.hit, run.out);
        if let Err(known) = check(&run) {
            println!("attempt {attempt}: {known}; again");
            continue;
        }
        match run.line(run.hit) {
            Some(line) => return (run, line),
            None => println!("attempt {attempt}: rep {} had the delay, yet the machine's noise hid it (no outlier); again", run.hit),
        }
    }
    panic!("in {ATTEMPTS} runs the delay never made the rep it fell in an outlier with its cause on the path: its outlier line was never checked");
}

fn pid_of(name: &str) -> u32 {
    let out = Command::new("pidof").args(["-s", name]).output().expect("pidof");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or_else(|_| panic!("no {name} running"))
}

fn kill(sig: &str, pid: u32) -> u32 {
    let mut c = Command::new("kill").args([sig, &pid.to_string()]).spawn().expect("spawn kill");
    let id = c.id();
    c.wait().expect("kill");
    id
}

/// Waits (up to 5 s, or until `cli` exits) for runc to be asked to delete the container:
/// the container has exited, and from then to the end of the rep the run waits on
/// containerd (the delete's reply, the removal). (From `runc start` on, the container's own
/// start and run, slow on a loaded machine, came first: up to half the stop was off the path.)
fn await_runc_delete(cli: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut known: Vec<u32> = pids();
    while Instant::now() < deadline && alive(cli) {
        for pid in pids() {
            if known.contains(&pid) {
                continue;
            }
            known.push(pid);
            let parent = stat_field(pid, 1).and_then(|p| p.parse::<u32>().ok()).unwrap_or(0);
            let a = argv(pid);
            if a.first().is_some_and(|x| x.ends_with("runc")) && comm(parent).starts_with("containerd-shim") && a.iter().any(|x| x == "delete") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Stopped-wait time on the path per (process, sender, signal), summed over the rep's phases.
fn stopped(waits: &[Value]) -> Vec<(u64, u64, String, i64, u64)> {
    let mut out: Vec<(u64, u64, String, i64, u64)> = Vec::new();
    for w in waits.iter().filter(|w| w["kind"] == "stopped") {
        let key = (w["task"]["pid"].as_u64().unwrap_or(0), w["by"]["pid"].as_u64().unwrap_or(0), w["by"]["comm"].as_str().unwrap_or("").to_string(), w["signal"].as_i64().unwrap_or(0));
        let ns = w["ns"].as_u64().unwrap();
        match out.iter_mut().find(|o| (o.0, o.1, &o.2, o.3) == (key.0, key.1, &key.2, key.3)) {
            Some(o) => o.4 += ns,
            None => out.push((key.0, key.1, key.2, key.3, ns)),
        }
    }
    out
}

#[test]
fn a_stopped_daemon_is_named_with_its_sender() {
    if !common::require_engine("docker") {
        return;
    }
    let containerd = pid_of("containerd");
    let sender = Arc::new(Mutex::new(0u32));
    let stop_for = Arc::new(Mutex::new(Duration::ZERO));
    let make = || -> Inject {
        let (s, d) = (sender.clone(), stop_for.clone());
        Box::new(move |cli, delay| {
            // Continued on drop, so containerd never stays stopped, also when this panics.
            struct Cont(u32);
            impl Drop for Cont {
                fn drop(&mut self) {
                    kill("-CONT", self.0);
                }
            }
            await_runc_delete(cli);
            let _cont = Cont(containerd);
            let at = monotonic_ns();
            *s.lock().unwrap() = kill("-STOP", containerd);
            *d.lock().unwrap() = delay;
            std::thread::sleep(delay);
            at
        })
    };
    let check = |run: &Run| {
        let sender = *sender.lock().unwrap();
        let hit = stopped(&run.waits[run.hit - 1]);
        let stop = hit.iter().max_by_key(|s| s.4).unwrap_or_else(|| panic!("rep {}'s critical path has no stop: {:#?}", run.hit, run.waits[run.hit - 1]));
        assert_eq!((stop.0, stop.1, stop.2.as_str(), stop.3), (containerd as u64, sender as u64, "kill", 19), "containerd, stopped by SIGSTOP from kill: {hit:?}");
        let of = *stop_for.lock().unwrap();
        for (rep, w) in run.others() {
            assert!(stopped(w).is_empty(), "rep {rep} had no injection: {w:?}");
        }
        run.others_are_clean("stopped by");
        if (stop.4 as u128) < of.as_nanos() / 2 {
            // Seen 3 runs in 16: a dockerd thread asleep across the stop until a timer (the
            // Go runtime polls for containerd's reply), so no recorded waking leads back to
            // containerd and the stop is only partly on the path.
            let timer: u64 = run.waits[run.hit - 1].iter().filter(|w| w["kind"] == "interrupt").map(|w| w["ns"].as_u64().unwrap()).sum();
            assert!(timer as u128 >= of.as_nanos() / 4, "most of the {of:?} stop is on the path: {hit:?}; all waits of rep {}: {:#?}", run.hit, run.waits[run.hit - 1]);
            return Err(format!("only {} ms of the {of:?} stop on the path, {} ms asleep until a timer: a waker reached by a timer poll is not followed (known gap)", stop.4 / 1_000_000, timer / 1_000_000));
        }
        Ok(())
    };
    let (_, line) = hit_outlier(make, check);
    let sender = *sender.lock().unwrap();
    assert!(line.contains(&format!("containerd (pid {containerd})")), "{line}");
    assert!(line.contains(&format!("stopped by SIGSTOP from pid {sender} (kill)")), "{line}");
}

/// Ends the children on drop: nothing of an injection outlives the test. SIGTERM, which
/// `timeout` passes on to the command it runs.
struct Reaped(Vec<Child>);

impl Drop for Reaped {
    fn drop(&mut self) {
        for c in &mut self.0 {
            // SAFETY: kill(2) on a child not yet waited for.
            unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
            let _ = c.wait();
        }
    }
}

#[test]
fn cpu_hogs_make_the_run_runnable_and_are_named() {
    if !common::require_engine("docker") {
        return;
    }
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let hogs = Arc::new(Mutex::new(Vec::<u32>::new()));
    let make = || -> Inject {
        let h = hogs.clone();
        Box::new(move |cli, delay| {
            // One busy loop per CPU, real-time (SCHED_FIFO): a nice level only ranks tasks
            // of one autogroup (one session), and the build in another session would get the
            // CPUs as often. For `delay`, or until the rep's CLI exits (the next rep must not
            // meet them): the run gets the CPUs only as the fair server's 5% allows, so the
            // rep is about that late; `timeout`, at a higher real-time priority so it can
            // preempt them, kills them 2 s later whatever happens to this test.
            let at = monotonic_ns();
            let kill_after = (delay.as_secs() + 2).to_string();
            let kids = Reaped(
                (0..cpus)
                    .map(|_| {
                        Command::new("chrt")
                            .args(["-f", "2", "timeout", "-s", "KILL", &kill_after, "chrt", "-f", "1", "sh", "-c", "while :; do :; done"])
                            .spawn()
                            .expect("spawn busy loop")
                    })
                    .collect(),
            );
            std::thread::sleep(Duration::from_millis(20));
            for k in &kids.0 {
                let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", k.id())).unwrap_or_default();
                h.lock().unwrap().extend(children.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
            }
            let until = Instant::now() + delay;
            while Instant::now() < until && alive(cli) {
                std::thread::sleep(Duration::from_millis(5));
            }
            drop(kids);
            at
        })
    };
    // Time the run's runnable waits spent behind the hogs.
    let behind_hogs = |w: &Vec<Value>| -> u64 {
        let hogs = hogs.lock().unwrap();
        w.iter()
            .filter(|w| w["kind"] == "runnable")
            .flat_map(|w| w["holders"].as_array().unwrap().iter())
            .filter(|h| hogs.contains(&(h[0]["pid"].as_u64().unwrap() as u32)))
            .map(|h| h[1].as_u64().unwrap())
            .sum()
    };
    let check = |run: &Run| {
        let hit = behind_hogs(&run.waits[run.hit - 1]);
        assert!(hit >= 50_000_000, "rep {} was runnable only {} ms behind the hogs {:?}: {:#?}", run.hit, hit / 1_000_000, hogs.lock().unwrap(), run.waits[run.hit - 1]);
        for (rep, w) in run.others() {
            assert_eq!(behind_hogs(w), 0, "rep {rep} had no injection");
        }
        // Other reps may wait for CPUs too on a shared machine, but never behind these.
        run.others_explained();
        Ok(())
    };
    let (run, line) = hit_outlier(make, check);
    let hogs = hogs.lock().unwrap();
    assert!(line.contains("runnable"), "{line}");
    assert!(hogs.iter().any(|h| line.contains(&format!("pid {h} (sh, not part of the run"))), "a hog {hogs:?} is named: {line}");
    for (rep, _) in run.others() {
        if let Some(l) = run.line(rep) {
            assert!(!hogs.iter().any(|h| l.contains(&format!("pid {h} "))), "rep {rep} had no injection: {l}");
        }
    }
}

/// `major:minor` of the device holding `path`, as the block tracepoints name it.
fn device_of(path: &str) -> String {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}")).dev();
    format!("{}:{}", libc::major(dev), libc::minor(dev))
}

/// D-state time on the path with disk requests in flight on `dev`.
fn blocked_on(waits: &[Value], dev: &str) -> u64 {
    waits
        .iter()
        .filter(|w| w["kind"] == "blocked" && w["requests"].as_u64().unwrap_or(0) > 0)
        .filter(|w| w["devices"].as_array().is_some_and(|d| d.iter().any(|d| d == dev)))
        .map(|w| w["ns"].as_u64().unwrap())
        .sum()
}

#[test]
fn a_disk_flood_shows_as_d_state_waits_on_the_disk() {
    if !common::require_engine("docker") {
        return;
    }
    // The flood goes to the disk docker and containerd keep their state on.
    let root = "/var/lib/docker";
    let dev = device_of(root);
    let dir = tempdir_on(root);
    let file = dir.join("flood");
    let make = || -> Inject {
        let file = file.clone();
        Box::new(move |cli, delay| {
            // WRITERS threads write 8 MiB with O_DIRECT (straight to the disk: no page-cache
            // copy to cost CPU) and fsync, over and over, until the rep's CLI exits (at most
            // `delay`): the disk queue stays deep, and nothing is left dirty to slow the next
            // rep.
            const WRITERS: usize = 4;
            let at = monotonic_ns();
            let stop = Arc::new(AtomicBool::new(false));
            let writers: Vec<_> = (0..WRITERS)
                .map(|i| {
                    let (stop, file) = (stop.clone(), file.with_extension(i.to_string()));
                    std::thread::spawn(move || flood(&file, &stop))
                })
                .collect();
            let until = Instant::now() + delay;
            while Instant::now() < until && alive(cli) {
                std::thread::sleep(Duration::from_millis(2));
            }
            stop.store(true, Ordering::Relaxed);
            for w in writers {
                w.join().expect("flood writer");
            }
            at
        })
    };
    let check = |run: &Run| {
        let hit = blocked_on(&run.waits[run.hit - 1], &dev);
        assert!(hit >= 20_000_000, "rep {}'s path was only {} ms in D state on {dev}: {:#?}", run.hit, hit / 1_000_000, run.waits[run.hit - 1]);
        // Other reps fsync too (containerd's and dockerd's databases), but briefly.
        for (rep, w) in run.others() {
            let other = blocked_on(w, &dev);
            assert!(other * 4 <= hit, "rep {rep} had no injection, yet {} ms of D state on {dev} (the flooded rep {} ms)", other / 1_000_000, hit / 1_000_000);
        }
        run.others_are_clean("blocked in D state");
        Ok(())
    };
    let (_, line) = hit_outlier(make, check);
    assert!(line.contains("blocked in D state") && line.contains(&format!("in flight on {dev}")), "{line}");
}

/// Writes `file` with O_DIRECT and fsyncs it, 8 MiB at a time, until `stop`; removes it.
fn flood(file: &std::path::Path, stop: &AtomicBool) {
    use std::io::{Seek, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let layout = std::alloc::Layout::from_size_align(8 << 20, 4096).unwrap();
    // SAFETY: a non-zero size; freed below with the same layout.
    let buf = unsafe { std::alloc::alloc_zeroed(layout) };
    assert!(!buf.is_null(), "no memory for the flood buffer");
    // SAFETY: buf holds layout.size() initialised bytes until dealloc below.
    let chunk = unsafe { std::slice::from_raw_parts(buf, layout.size()) };
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).custom_flags(libc::O_DIRECT).open(file).expect("create the flood file");
    let mut written = 0u64;
    while !stop.load(Ordering::Relaxed) {
        f.write_all(chunk).expect("write the flood");
        f.sync_all().expect("fsync the flood");
        written += chunk.len() as u64;
        if written >= 128 << 20 {
            f.rewind().expect("rewind the flood");
            written = 0;
        }
    }
    drop(f);
    // SAFETY: allocated above with this layout, no longer borrowed.
    unsafe { std::alloc::dealloc(buf, layout) };
    let _ = std::fs::remove_file(file);
}

/// A scratch folder on the filesystem of `path`, removed on drop.
fn tempdir_on(path: &str) -> Scratch {
    let dir = std::path::Path::new(path).join(format!("probe-critical-path-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch folder");
    Scratch(dir)
}

struct Scratch(std::path::PathBuf);

impl std::ops::Deref for Scratch {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `probe trace --critical-path` of one normal run: lost nothing, explains ≥ 95%, and goes
/// through the engine's own process (the daemon, or podman's conmon).
fn explained_run(engine: &str, through: &str) {
    let out = Command::new(common::probe_bin())
        .args(["trace", "--json", "--critical-path", "--", engine, "run", "--rm", "--network", "none", "probe-test:latest", "true"])
        .output()
        .expect("spawn probe trace");
    assert!(out.status.success(), "probe trace failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["lost"], 0, "trace records lost: the path cannot be complete");
    let explained = v["explained"].as_f64().expect("explained share");
    assert!(explained >= EXPLAINED, "only {:.1}% of the {engine} run explained", explained * 100.0);
    let steps = v["critical_path"]["steps"].as_array().unwrap();
    assert!(steps.iter().any(|s| s["task"]["comm"] == through), "the path goes through {through}");
}

#[test]
fn a_normal_docker_run_is_explained() {
    if !common::require_engine("docker") {
        return;
    }
    explained_run("docker", "dockerd");
}

#[test]
fn a_normal_podman_run_is_explained() {
    if !common::require_engine("podman") {
        return;
    }
    explained_run("podman", "conmon");
}

/// The fill of each critical-path state on the timeline (output/timeline.rs), by the state's
/// name in the JSON; None for the states drawn white (unexplained), which the background shares.
fn lane_fill(step: &Value) -> Option<&'static str> {
    match step["state"]["state"].as_str()? {
        "running" => Some("#006D2C"),
        "runnable" => Some("#FF7F00"),
        "blocked" => Some("#6A3D9A"),
        "sleeping" if !step["state"]["woken_by"].is_null() => Some("#1F78B4"),
        "stopped" => Some("#C51B7D"),
        "interrupt" => Some("#BF812D"),
        "exited" => Some("#999999"),
        _ => None,
    }
}

/// `probe trace --critical-path --timeline` draws the path as a lane under the phases: every
/// state the path has (from the same run's JSON) is drawn on the lane as well as in the
/// legend, the sleeping task is named on it, and the legend names every state, in English
/// and in Spanish.
#[test]
fn the_timeline_draws_the_critical_path() {
    if !common::require_root() {
        return;
    }
    let dir = common::TempDir::new("critical-timeline");
    let english = ["critical path", "running (on CPU)", "runnable, waiting for a CPU", "blocked in D state (I/O)", "asleep until woken by a task", "stopped (signal)", "asleep until a timer/interrupt", "unexplained"];
    let spanish = ["camino crítico", "en ejecución (en CPU)", "lista, esperando una CPU", "bloqueada en estado D (E/S)", "dormida hasta que otra tarea la despierta", "detenida (señal)", "dormida hasta un temporizador/interrupción", "sin explicar"];
    for (lang, words) in [("en", english), ("es", spanish)] {
        let (svg, json) = (dir.0.join(format!("t-{lang}.svg")), dir.0.join(format!("t-{lang}.json")));
        let out = common::probe(&[
            "trace", "--critical-path", "--output", json.to_str().unwrap(), "--timeline", svg.to_str().unwrap(), "--lang", lang, "--", "sh", "-c", "sleep 0.05",
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let body = std::fs::read_to_string(&svg).expect("timeline written");
        assert!(body.starts_with("<svg"), "{}", &body[..body.len().min(200)]);
        for w in words {
            assert!(body.contains(w), "{lang}: no {w:?} in the timeline");
        }
        // The lane's label of the sleep, "sleep TID" (its process row is "sleep [PID]").
        let on_lane = body.lines().map(str::trim).any(|l| l.strip_prefix("sleep ").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())));
        assert!(on_lane, "{lang}: the sleep task is not named on the lane");
        let trace: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        let steps = trace["critical_path"]["steps"].as_array().expect("critical path in the JSON");
        let fills: std::collections::BTreeSet<&str> = steps.iter().filter_map(lane_fill).collect();
        assert!(fills.contains("#006D2C"), "{lang}: the path never ran: {steps:?}");
        for fill in fills {
            let n = body.matches(&format!("fill=\"{fill}\"")).count();
            assert!(n >= 2, "{lang}: a state of the path ({fill}) is only in the legend, not on the lane");
        }
    }
}

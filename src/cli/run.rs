//! `probe run`: run any command in a native container, interactively or not, with its exit
//! status passed through — a tool of its own, like unshare(1) with a whole container around it.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::sys::clock::monotonic_ns;
use crate::native::{self, ContainerSpec, Limits, NsSet, Storage, Volume};
use crate::output::terminal;

/// Run a command in a native container (namespaces, cgroup, overlay, pivot_root), like
/// `unshare` with a full container around it. Exit status is passed through.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    sudo probe run -- /bin/sh                  interactive shell in the test image\n  \
    sudo probe run --phases -- /bin/true       where the start-up time goes\n  \
    sudo probe run --memory 64M --pids 20 --cpus 0.5 -- sh -c 'echo limited'\n\n\
The first Ctrl-C goes to the command (a container's init ignores it unless it handles it);\n\
a second Ctrl-C, or SIGTERM, kills the container. Everything is removed either way.")]
pub struct RunArgs {
    /// How the root filesystem is built: `overlay` (kernel overlayfs over the image, fresh
    /// upper/work in /run/probe on a private tmpfs: writes stay in memory), `overlay-disk`
    /// (the same with upper/work on disk under /var/lib/probe/containers, like Docker's
    /// overlay2: use it when the command's disk I/O matters), `overlay-disk-volatile` (the
    /// same mounted `volatile`, as podman mounts `run --rm` containers: fsync inside is a
    /// no-op), `fuse-overlayfs` (overlay in user space, upper on disk), `bind` (the image
    /// itself, read-only) or `tmpfs` (a full copy of the image in memory, no overlay).
    #[arg(long, default_value = STORAGE_DEFAULT, value_name = "MODE")]
    pub storage: Storage,

    /// Where overlay-disk, overlay-disk-volatile and fuse-overlayfs make the container's
    /// upper and work directories (removed after) [default: /var/lib/probe/containers,
    /// rootless: $XDG_RUNTIME_DIR/probe-containers].
    #[arg(long, value_name = "DIR")]
    pub storage_dir: Option<PathBuf>,

    /// Namespaces to create, comma-separated, from user, pid, mnt, uts, ipc, net, cgroup (or
    /// `all`, which is all but user). mnt is required. Without net the container shares the
    /// host's network. `user` means rootless mode (your uid mapped to root, no cgroup); a
    /// non-root user always gets it.
    #[arg(long = "ns", default_value = NS_DEFAULT, value_name = "LIST")]
    pub namespaces: NsSet,

    /// Memory limit, in bytes or with a K, M or G suffix (powers of 1024), e.g. 256M.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub memory: Option<u64>,

    /// Maximum number of processes and threads in the container (pids.max).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub pids: Option<u64>,

    /// CPU bandwidth limit in CPUs, e.g. 0.5 for half a CPU (at least 0.01).
    #[arg(long, value_name = "F", value_parser = parse_cpus)]
    pub cpus: Option<f64>,

    /// Root filesystem to run instead of the test image (a directory with /bin etc.).
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,

    /// Where to create the container's cgroup, relative to the root of each cgroup
    /// hierarchy (default: at the root, like runc).
    #[arg(long, value_name = "PATH")]
    pub cgroup_parent: Option<PathBuf>,

    /// Bind-mount a host directory or file into the container, read-write unless `:ro`
    /// (like `docker -v`, but the host path must exist). Repeatable.
    #[arg(short = 'v', long = "volume", value_name = "HOST:CONTAINER[:ro]")]
    pub volumes: Vec<Volume>,

    /// Give the command what a container runtime inside needs (like `docker run
    /// --privileged`): every capability probe has, no no_new_privs, /sys read-write and the
    /// cgroup hierarchies mounted read-write at /sys/fs/cgroup, rooted at the container's own
    /// cgroup. For nesting: `probe run --privileged -- probe run --rootfs / --storage bind
    /// --privileged -- ...`.
    #[arg(long)]
    pub privileged: bool,

    /// Print the phase table (duration, share, perf counters, probe's own overhead) to
    /// stderr after the command exits.
    #[arg(long)]
    pub phases: bool,

    /// Command to run inside the container, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// The defaults of `--storage` and `--ns`, shared by clap and the plain form below.
const STORAGE_DEFAULT: &str = "overlay";
const NS_DEFAULT: &str = "all";

impl RunArgs {
    /// `probe run -- CMD...`: every option at its default.
    fn plain(command: Vec<String>) -> RunArgs {
        RunArgs {
            storage: STORAGE_DEFAULT.parse().expect("the default storage parses"),
            storage_dir: None,
            namespaces: NS_DEFAULT.parse().expect("the default namespace list parses"),
            memory: None,
            pids: None,
            cpus: None,
            rootfs: None,
            cgroup_parent: None,
            volumes: Vec::new(),
            privileged: false,
            phases: false,
            command,
        }
    }
}

/// The command of the plain form, `probe run -- CMD...` (the arguments after `run`): nothing
/// for clap to parse. None for anything else, which clap parses (or rejects, e.g. a
/// command that is not UTF-8) as always.
fn plain_command(args: &[OsString]) -> Option<Vec<String>> {
    match args {
        [dashes, command @ ..] if dashes == "--" && !command.is_empty() => command
            .iter()
            .map(|a| a.to_str().map(str::to_string))
            .collect(),
        _ => None,
    }
}

/// `probe` with `run` as its only subcommand. clap's derive builds every subcommand's
/// arguments before it parses anything, which a `probe run` paid on every start: 0.13 ms of
/// its ~3.6 ms (perf stat -r 400: `probe --version` 1.34 ms, `probe run --version` 1.20 ms).
#[derive(clap::Parser)]
#[command(name = "probe", version, propagate_version = true)]
struct RunOnly {
    #[command(subcommand)]
    command: RunOnlyCommand,
}

#[derive(clap::Subcommand)]
enum RunOnlyCommand {
    Run(RunArgs),
}

/// `probe run ...` parsed and run without building the rest of the CLI; None for any other
/// command line. Same arguments, help and errors as through `probe`'s full parser.
pub fn fast_path() -> Option<anyhow::Result<ExitCode>> {
    let mut args = std::env::args_os().skip(1);
    if args.next()? != "run" {
        return None;
    }
    // Even the run-only parser costs ~0.09 ms (building its arguments and their help, and
    // the page faults of clap's code; tracepoints, std's start-up to probe's first syscall:
    // 186 → 100 µs), a tenth of what `probe run -- /bin/true` adds to `unshare`
    // (bench/native_vs_unshare_runc.sh). The plain form needs none of it.
    if let Some(command) = plain_command(&args.collect::<Vec<_>>()) {
        return Some(run(RunArgs::plain(command)));
    }
    let RunOnlyCommand::Run(a) = <RunOnly as clap::Parser>::parse().command;
    Some(run(a))
}

/// Parses 1024, 64K, 256M, 2G (binary multiples, like docker --memory).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'B' => 1,
                _ => {
                    return Err(format!(
                        "bad size '{s}': use a number with an optional K, M or G suffix"
                    ))
                }
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| format!("bad size '{s}': use a number with an optional K, M or G suffix"))?;
    n.checked_mul(mult)
        .filter(|b| *b > 0)
        .ok_or_else(|| format!("bad size '{s}': must be between 1 byte and 16 EiB"))
}

fn parse_cpus(s: &str) -> Result<f64, String> {
    let f: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("bad CPU count '{s}': use a decimal number such as 0.5"))?;
    // cpu.cfs_quota_us / cpu.max refuse quotas under 1 ms per 100 ms period.
    if !(0.01..=1024.0).contains(&f) {
        return Err(format!(
            "bad CPU count '{s}': must be between 0.01 and 1024"
        ));
    }
    Ok(f)
}

pub fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let mut spec = ContainerSpec::default_for(a.command);
    spec.storage = a.storage;
    spec.storage_dir = a.storage_dir;
    spec.namespaces = a.namespaces;
    spec.limits = Limits {
        memory_bytes: a.memory,
        pids: a.pids,
        cpus: a.cpus,
    };
    spec.cgroup_parent = a.cgroup_parent.unwrap_or_default();
    spec.timing = a.phases;
    spec.volumes = a.volumes;
    spec.privileged = a.privileged;
    if let Some(dir) = a.rootfs {
        spec.rootfs = dir;
    } else if !spec.rootfs.join("bin").is_dir() {
        anyhow::bail!(
            "test image rootfs missing at {}: run `sudo probe image build`, or pass --rootfs DIR",
            spec.rootfs.display()
        );
    }
    let start = monotonic_ns();
    let outcome = match native::run(&spec) {
        Ok(o) => o,
        // Like a shell whose foreground job was interrupted: say so, exit 128+SIGINT.
        Err(e @ native::RuntimeError::Interrupted { .. }) => {
            eprintln!("probe: run: {e}");
            return Ok(ExitCode::from(130));
        }
        Err(e) => return Err(e).context("run"),
    };
    let wall_ns = monotonic_ns() - start;
    if a.phases {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(terminal::run::phase_table(&outcome.phases, wall_ns).as_bytes());
    }
    // Exit codes above 255 cannot happen (wait status); the clamp only satisfies the type.
    Ok(ExitCode::from(outcome.exit_code.clamp(0, 255) as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256M").unwrap(), 256 << 20);
        assert_eq!(parse_size("64k").unwrap(), 64 << 10);
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert!(parse_size("12X").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("99999999999G").is_err());
    }

    #[test]
    fn plain_form_is_what_clap_parses() {
        for command in [vec!["/bin/true"], vec!["sh", "-c", "echo --phases"], vec!["--"]] {
            let argv: Vec<OsString> = ["--"].iter().chain(&command).map(OsString::from).collect();
            let fast = plain_command(&argv).expect("the plain form");
            let full = ["probe", "run"].into_iter().map(OsString::from).chain(argv);
            let RunOnlyCommand::Run(parsed) = <RunOnly as clap::Parser>::try_parse_from(full).unwrap().command;
            assert_eq!(format!("{:?}", RunArgs::plain(fast)), format!("{parsed:?}"));
        }
        let not_plain = |args: &[&str]| plain_command(&args.iter().map(OsString::from).collect::<Vec<_>>());
        assert_eq!(not_plain(&["--"]), None, "no command: clap says what is missing");
        assert_eq!(not_plain(&["--phases", "--", "true"]), None);
        assert_eq!(not_plain(&["true"]), None);
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(vec![0xff]);
        assert_eq!(plain_command(&[OsString::from("--"), bad]), None, "not UTF-8: clap's error");
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_cpus("0.5").unwrap(), 0.5);
        assert!(parse_cpus("0.001").is_err());
        assert!(parse_cpus("lots").is_err());
    }
}

#!/bin/sh
# cargo's rustc wrapper (.cargo/config.toml): links the probe binary itself with glibc
# statically (+crt-static) at a fixed address (relocation-model=static), and passes every
# other rustc call through untouched.
#
# Why: `probe run` is timed as a whole process against `unshare` (bench/
# native_vs_unshare_runc.sh), and a dynamically linked probe spends part of each start in
# ld.so (loading libc, libm and libgcc_s, relocating) before main: an empty Rust binary here
# starts in 0.39 ms static against 0.81 ms dynamic (hyperfine -N medians).
# Why not position-independent: a static-pie relocates itself before main, ~8.5k relocations
# whose writes fault in and copy the pages they touch: 7% of `probe run -- /bin/true`'s CPU
# samples (perf record), 124 → 100 page faults for `probe --version`, and exec → first
# syscall 239 → 141 µs (tracepoint medians, 80 runs). The price is no ASLR for probe's own
# image, a tool run by hand, not a long-running service.
# Why a wrapper: +crt-static in [build] or [target] rustflags also reaches the proc-macro
# crates (serde_derive, clap_derive, thiserror), which must be dynamic libraries, and cargo
# then refuses to build them (rust-lang/rust#78210); `--target` would avoid that but moves
# the binary out of target/{debug,release}, where scripts and docs look for it.
# It needs glibc's static libraries (libc6-dev's libc.a); to link dynamically instead, build
# without the wrapper: `RUSTC_WRAPPER= cargo build`. Cargo does not see the flag: a probe built
# before this wrapper stays dynamic until its crate is recompiled (touch src/main.rs).
rustc=$1
shift
case " $* " in
*" --crate-name probe "*"--crate-type bin "*)
    case " $* " in
    # A build for another target keeps that target's own default.
    *" --target "*) ;;
    *) exec "$rustc" "$@" -C target-feature=+crt-static -C relocation-model=static ;;
    esac
    ;;
esac
exec "$rustc" "$@"

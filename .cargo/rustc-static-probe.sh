#!/bin/sh
# cargo's rustc wrapper (.cargo/config.toml): links the probe binary itself with glibc
# statically (+crt-static), and passes every other rustc call through untouched.
#
# Why: `probe run` is timed as a whole process against `unshare` (bench/
# native_vs_unshare_runc.sh), and a dynamically linked probe spends ~0.3-0.4 ms of each start
# in ld.so (loading libc and libgcc_s, relocating, resolving symbols) before main.
# Why a wrapper: +crt-static in [build] or [target] rustflags also reaches the proc-macro
# crates (serde_derive, clap_derive, thiserror), which must be dynamic libraries, and cargo
# then refuses to build them (rust-lang/rust#78210); `--target` would avoid that but moves
# the binary out of target/{debug,release}, where scripts and docs look for it.
# It needs glibc's static libraries (libc6-dev's libc.a); to link dynamically instead, build
# without the wrapper: `RUSTC_WRAPPER= cargo build`.
rustc=$1
shift
case " $* " in
*" --crate-name probe "*"--crate-type bin "*)
    case " $* " in
    # A build for another target keeps that target's own default.
    *" --target "*) ;;
    *) exec "$rustc" "$@" -C target-feature=+crt-static ;;
    esac
    ;;
esac
exec "$rustc" "$@"

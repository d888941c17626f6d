#!/usr/bin/env bash
# The whole test suite, as a new user runs it: install and start the engines, build the test
# image, then run every test as root (the integration tests drive the real kernel, Docker and
# Podman), then the second host: a Debian 13 guest under qemu, with the fleet test
# (scripts/second-host-ci.sh; its image is built once and cached). Under CI=true a test that
# would be skipped for want of root or an engine fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

source scripts/as_root.sh

as_root bash scripts/setup-engines.sh --no-verify
cargo build --locked
# The image holds this very binary (probe is the in-container worker): build it with the
# one the tests run, so they find it up to date.
as_root target/debug/probe image build
if [ "$(id -u)" -ne 0 ]; then
    # Test binaries run through sudo; cargo itself stays the user's.
    export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="sudo -E"
fi
# One test at a time: leak checks count mounts, cgroups and containers machine-wide.
# tests/fleet.rs is not among them (Cargo.toml: test = false): it needs the qemu guest, and
# scripts/second-host-ci.sh runs it in the same boot as the guest subset.
rc=0
cargo test --locked --no-fail-fast -- --test-threads=1 "$@" || rc=$?
# The whole suite includes the second host; arguments (a test name filter) run only the
# matching host tests. Both parts run even when the first fails: each names its own misses.
if [ $# -eq 0 ]; then
    echo "test.sh: the second host: guest subset and fleet test (scripts/second-host-ci.sh)"
    as_root bash scripts/second-host-ci.sh || rc=1
fi
exit "$rc"

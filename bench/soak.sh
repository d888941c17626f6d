#!/usr/bin/env bash
# The full soak of issue 9: 10,000 native starts and 500 engine starts in one run each, with
# probe's fds and RSS and the machine's mounts and cgroups sampled throughout (tests/soak.rs
# asserts they stay flat). CI runs the same test at reduced size.
set -euo pipefail
cd "$(dirname "$0")/.."
SOAK_NATIVE=${1:-10000} SOAK_ENGINE=${2:-500} cargo test --release --test soak -- --nocapture --test-threads=1

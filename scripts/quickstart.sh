#!/usr/bin/env bash
# The README's first command: install the engines, build probe, build the test image and run
# Experiment 1 with its breakdown. Works as root (no sudo needed, none may be installed) and
# for a user with sudo: only the steps that need root go through sudo, and cargo stays the
# user's. Extra arguments go to `probe startup` (e.g. --reps 5).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

source scripts/as_root.sh

as_root bash scripts/setup-engines.sh
cargo build --release
as_root target/release/probe image build
as_root target/release/probe startup --breakdown "$@"

#!/bin/bash
# bench_common.sh - lo comparten los bench_*.sh: encuentra probe, corre un experimento y
# copia los CSV del capítulo a scripts/results/. No se ejecuta solo: los otros lo cargan
# con `source`.
#
# Shared by the bench_*.sh scripts: finds the probe binary ($PROBE, else target/release/probe,
# else target/debug/probe, else `probe` on PATH), runs one experiment as root (sudo when not
# root), keeps its whole run folder (JSON included) under scripts/results/runs/ and copies the
# chapter's CSV files to scripts/results/, where the chapter's analyze.py looks for them.

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    echo "bench_common.sh is sourced by the bench_*.sh scripts; run one of them, e.g. bash bench_startup.sh 20" >&2
    exit 2
fi
set -euo pipefail

SCRIPTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$SCRIPTS_DIR")
# BENCH_RESULTS moves the output elsewhere (the tests use a temp dir).
OUT_DIR="${BENCH_RESULTS:-$SCRIPTS_DIR/results}"

find_probe() {
    if [ -n "${PROBE:-}" ]; then
        [ -x "$PROBE" ] || { echo "PROBE=$PROBE is not an executable file" >&2; return 1; }
        echo "$PROBE"
        return
    fi
    local p
    for p in "$REPO_DIR/target/release/probe" "$REPO_DIR/target/debug/probe"; do
        if [ -x "$p" ]; then
            echo "$p"
            return
        fi
    done
    command -v probe && return
    echo "probe not found: build it (cargo build --release), or set PROBE=/path/to/probe" >&2
    return 1
}

# The experiments need root (namespaces, cgroups, engines); the CSV copies stay the user's.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# probe_into_scratch PROBE ARGS...: runs `PROBE ARGS --results SCRATCH` into a fresh scratch
# folder, moves the run folder it made to scripts/results/runs/ and prints its name.
probe_into_scratch() {
    local probe=$1 run
    shift
    # Callers run this in $( ), a subshell: its EXIT trap removes the scratch folder when
    # that subshell ends, normally or by Ctrl-C (probe writes root-owned files in it).
    BENCH_SCRATCH=$(mktemp -d)
    trap 'as_root rm -rf "$BENCH_SCRATCH"' EXIT
    # stdout is the caller's run name: probe's own table goes to the terminal (stderr).
    as_root "$probe" "$@" --results "$BENCH_SCRATCH" >&2 || true
    run=$(readlink "$BENCH_SCRATCH/latest") || {
        echo "probe $* wrote no results (see its error above)" >&2
        return 1
    }
    mkdir -p "$OUT_DIR/runs"
    as_root mv "$BENCH_SCRATCH/$run" "$OUT_DIR/runs/$run"
    echo "$run"
}

# bench_run CSV[:NAME]... -- PROBE_ARGS...
# Runs `probe PROBE_ARGS` into a fresh results folder, moves its run folder to
# scripts/results/runs/ and copies each CSV there to scripts/results/NAME (default: CSV).
bench_run() {
    local csvs=()
    while [ "$1" != "--" ]; do
        csvs+=("$1")
        shift
    done
    shift
    local run
    run=$(probe_into_scratch "$(find_probe)" "$@")
    local spec src name
    for spec in "${csvs[@]}"; do
        src=${spec%%:*}
        name=${spec#*:}
        as_root cat "$OUT_DIR/runs/$run/$src" > "$OUT_DIR/$name"
        echo "Resultados en $OUT_DIR/$name"
    done
    echo "Corrida completa (JSON incluido) en $OUT_DIR/runs/$run"
}

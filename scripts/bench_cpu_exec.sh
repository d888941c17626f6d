#!/bin/bash
# bench_cpu_exec.sh - CPU sin startup: el loop vía exec en un contenedor ya corriendo
# (Experimento 7).
# Uso: bash bench_cpu_exec.sh [opciones de probe cpu...]
# Escribe results/cpu_exec.csv (runtime,metric,value).
source "$(dirname "$0")/bench_common.sh"
echo "=== CPU exec Benchmark ==="
bench_run cpu_exec.csv -- cpu --exec "$@"
